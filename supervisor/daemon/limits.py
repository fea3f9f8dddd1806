"""What a program's child sets up on itself before exec: ``rlimits``, ``nice``,
``oom_score_adj`` and, for a ``watchdog``, ``WATCHDOG_PID`` (its own pid,
known only after the fork).

These run in ``preexec_fn``, which Popen calls after its user switch; so for
a program with a ``user`` the switch is done here instead, after the limits
(raising a hard limit or lowering ``oom_score_adj`` needs superd's root).
Nothing here runs for a program that sets none of it.
"""

from __future__ import annotations

import os
import resource
from typing import Callable, Mapping, Optional

from ..config.resources import RLIMITS
from . import passing


def child_setup(program, env: Mapping[str, str], popen_env: Optional[dict], argv0: str, cwd: Optional[str],
                kwargs: dict) -> Optional[dict]:
    """Set Popen's ``kwargs`` up for what the program asks of its child;
    returns Popen's ``env`` (None: the child puts its own in place)."""
    limits = [(RLIMITS[name], soft, hard) for name, soft, hard in program.rlimits]
    nice, oom = program.nice, program.oom_score_adj
    watchdog = "WATCHDOG_USEC" in env
    if not (limits or nice is not None or oom is not None or watchdog):
        return popen_env
    then: Optional[Callable[[], None]] = kwargs.get("preexec_fn")
    user = None
    if limits or nice is not None or oom is not None:
        user = (kwargs.pop("user", None), kwargs.pop("group", None), kwargs.pop("extra_groups", None))
    items = None
    if watchdog and popen_env is not None:  # else passing's preexec_fn puts the environment in place
        items = list(popen_env.items())
        kwargs["executable"] = passing._executable(argv0, popen_env, cwd)
        popen_env = None

    def preexec() -> None:
        for which, soft, hard in limits:
            resource.setrlimit(which, (soft, hard))
        if nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        if oom is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(oom))
        if user is not None:
            uid, gid, groups = user
            if groups is not None:
                os.setgroups(groups)
            if gid is not None:
                os.setregid(gid, gid)
            if uid is not None:
                os.setreuid(uid, uid)
        if then is not None:
            then()
        if items is not None:
            os.environ.clear()
            os.environ.update(items)
        if watchdog:
            os.environ["WATCHDOG_PID"] = str(os.getpid())

    kwargs["preexec_fn"] = preexec
    return popen_env
