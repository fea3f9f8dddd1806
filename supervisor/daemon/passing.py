"""Handing held sockets to a program, the way systemd's socket activation does.

The program gets its sockets as descriptors 3, 4, ... (``FIRST_FD`` on) in the
order of its ``sockets`` key, with ``LISTEN_FDS`` (how many),
``LISTEN_FDNAMES`` (their names, ":"-separated) and ``LISTEN_PID``: the
program's own pid, which programs check (systemd's ``sd_listen_fds``,
gunicorn) so that a child they start does not take the sockets for its own.

The pid is known only after the fork, and ``subprocess.Popen`` builds the
environment it passes to ``execve`` before forking. So for a program with
sockets, Popen is given no environment: the child, in its ``preexec_fn``,
puts the program's variables and its pid into its own (C) environment, which
``execv`` then passes on. Everything else stays Popen's: the descriptors are
put in place in ``preexec_fn`` and kept by ``pass_fds`` while every other
descriptor is closed, the exec and its error report, the signal reset, the
process group and the user switch (done before ``preexec_fn`` runs).

Nothing here runs for a program without sockets, and no other program (nor a
probe or stop command of this one) sees the sockets or the variables.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from typing import Callable, Iterator, Mapping, Optional, Sequence

from ..config.sockets import FIRST_FD


def listen_variables(names: Sequence[str]) -> dict[str, str]:
    """LISTEN_FDS and LISTEN_FDNAMES (LISTEN_PID is set in the child)."""
    return {"LISTEN_FDS": str(len(names)), "LISTEN_FDNAMES": ":".join(names)}


def hand_over(listen: Sequence[tuple[str, int]], env: Mapping[str, str], argv0: str, cwd: Optional[str],
              kwargs: dict) -> tuple[None, str]:
    """Set up Popen's ``kwargs`` to pass ``listen`` ((name, superd's fd) pairs).

    Returns Popen's ``env`` (None: the child makes its own) and
    ``executable`` (looked up on the program's PATH, since Popen would use
    superd's). Raises FileNotFoundError when the command is nowhere.
    """
    variables = dict(env)
    variables.update(listen_variables([name for name, _ in listen]))
    fds = [fd for _, fd in listen]
    kwargs["preexec_fn"] = _child_setup(fds, variables, kwargs.get("preexec_fn"))
    kwargs["pass_fds"] = tuple(range(FIRST_FD, FIRST_FD + len(fds)))
    return None, _executable(argv0, variables, cwd)


def _child_setup(fds: list[int], variables: dict[str, str],
                 then: Optional[Callable[[], None]]) -> Callable[[], None]:
    """The child's last steps before exec: descriptors in place, environment with its pid."""
    count = len(fds)
    items = list(variables.items())

    def preexec() -> None:
        if then is not None:
            then()
        # First out of the way of the targets (a socket may sit at 3 and be
        # wanted at 4), then into place: dup2 leaves the copy inheritable.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FIRST_FD + count) for fd in fds]
        for target, fd in enumerate(moved, FIRST_FD):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()  # unsetenv: the C environment execv passes on
        os.environ.update(items)
        os.environ["LISTEN_PID"] = str(os.getpid())

    return preexec


def _executable(argv0: str, variables: Mapping[str, str], cwd: Optional[str]) -> str:
    """Where exec finds ``argv0`` with the program's PATH (as execvpe would)."""
    if "/" in argv0:
        return argv0
    for folder in os.get_exec_path(variables):
        path = os.path.join(cwd or "", folder, argv0)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.join(folder, argv0)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)


@contextlib.contextmanager
def low_fds_taken(count: int) -> Iterator[None]:
    """Descriptors 3 .. 3 + count - 1 are open in superd while Popen runs.

    Popen's own pipe to the child (the exec error report) must not land where
    the child puts its sockets: it takes the lowest free numbers, so any gap
    below them is filled with /dev/null until the child is started.
    """
    fillers: list[int] = []
    try:
        while count:
            fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            if fd >= FIRST_FD + count:
                os.close(fd)
                break
            fillers.append(fd)
        yield
    finally:
        for fd in fillers:
            os.close(fd)
