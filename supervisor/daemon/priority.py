"""superd's CPU priority while it starts its programs: above theirs, for as
long as the start-up lasts and no longer.

Each spawn is work of superd's (the run's cgroup, the fork, the bookkeeping)
while the programs it has just started do their own start-up (an exec, a
shell, a dynamic linker) on the same CPUs. At the same nice value the kernel
shares a CPU evenly between superd and each of them, so on a machine with few
CPUs superd spends much of a start-up waiting behind its own newborn programs
(a 1,000-program start-up on 2 CPUs: ~0.5 s of it runnable but not running,
most of it right after the cgroup move of each spawn). While it starts its
programs superd therefore runs at ``spawn_nice`` (-10 by default), and at
nice 0 again as soon as the last is spawned: never while it captures their
output (raised, it would read their pipes in smaller bites and slow the
writers) and never for a single restart.

Its children must not inherit that: with its raise superd sets
``SCHED_RESET_ON_FORK``, with which every process it forks is born at nice 0
(the kernel resets a negative nice in the child), and it clears the flag when it
lowers itself again (both are settings of superd's one thread). A program's
own ``nice`` is set in its child as before.

superd leaves its priority alone where it was started with another nice value
or scheduling policy (the operator chose those, and its programs inherit them),
where ``spawn_nice = 0``, and where it may not raise itself (no CAP_SYS_NICE and
no RLIMIT_NICE allowance): the first refusal turns this off for good.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator, Optional

log = logging.getLogger("superd")


class Scheduler:
    """The calling thread's nice value and scheduling policy (Linux); a fake one in tests."""

    def policy(self) -> int:
        return os.sched_getscheduler(0)

    def nice(self) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)

    def set_nice(self, value: int) -> None:
        os.setpriority(os.PRIO_PROCESS, 0, value)

    def reset_on_fork(self, on: bool) -> None:
        flag = os.SCHED_RESET_ON_FORK if on else 0
        os.sched_setscheduler(0, os.SCHED_OTHER | flag, os.sched_param(0))


def usable() -> bool:
    """Has this platform what a raise needs (Linux's SCHED_RESET_ON_FORK)?"""
    return all(hasattr(os, name) for name in ("SCHED_RESET_ON_FORK", "sched_setscheduler", "setpriority"))


class SpawnPriority:
    """``with priority.raised():`` around a start-up's spawns.

    ``wanted()`` gives the nice value (``spawn_nice``, read at the raise).
    """

    def __init__(self, wanted: Callable[[], int], scheduler: Optional[Scheduler] = None) -> None:
        self._wanted = wanted
        self._scheduler = scheduler
        self.raised_to = 0  # the nice value superd is at, while raised; 0 otherwise
        self.enabled = scheduler is not None and self._chosen_by_nobody()

    def _chosen_by_nobody(self) -> bool:
        """Is superd at the default nice value and policy (nothing an operator set)?"""
        assert self._scheduler is not None
        try:
            return self._scheduler.policy() == os.SCHED_OTHER and self._scheduler.nice() == 0
        except OSError:
            return False

    @contextlib.contextmanager
    def raised(self) -> Iterator[None]:
        self._raise()
        try:
            yield
        finally:
            self.lower()

    def _raise(self) -> None:
        if not self.enabled or self.raised_to:
            return
        nice = self._wanted()
        if nice >= 0:
            return
        assert self._scheduler is not None
        try:
            self._scheduler.set_nice(nice)
        except OSError as exc:  # unprivileged: the flag is never touched (clearing it would need privilege)
            self.enabled = False
            # Debug: a container without CAP_SYS_NICE is the usual case, nothing to act on.
            log.debug("superd cannot raise its priority while it spawns (%s): spawn_nice has no effect",
                      exc.strerror or exc)
            return
        try:
            # Before the next fork (both are this thread's own settings, and this
            # thread forks nothing in between): no child is born at superd's nice.
            self._scheduler.reset_on_fork(True)
        except OSError as exc:  # pragma: no cover - allowed to raise itself, refused the flag
            self.enabled = False
            self._scheduler.set_nice(0)
            log.debug("superd cannot set SCHED_RESET_ON_FORK (%s): spawn_nice has no effect", exc.strerror or exc)
            return
        self.raised_to = nice

    def lower(self) -> None:
        """Back to nice 0 (also when superd closes)."""
        if not self.raised_to:
            return
        assert self._scheduler is not None
        self.raised_to = 0
        try:
            self._scheduler.set_nice(0)  # lowering needs no privilege
        except OSError as exc:  # pragma: no cover - the kernel refused a lower priority
            log.warning("superd cannot lower its priority back to nice 0: %s", exc.strerror or exc)
        try:
            self._scheduler.reset_on_fork(False)
        except OSError:  # pragma: no cover - superd lost the privilege to clear it: harmless at nice 0
            pass
