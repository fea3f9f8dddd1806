"""The duties of an init: reaping every child, owning orphans, clean signal state.

* :class:`Reaper` is the only code in superd that collects exit statuses: one
  ``waitpid(-1, WNOHANG)`` loop run from the event loop on SIGCHLD. Statuses of
  pids nobody claims (orphans re-parented to superd) are simply collected.
* As an ordinary process superd becomes a *child subreaper*, so orphans of its
  programs are re-parented to it instead of to the host's init.
* As PID 1 the kernel drops every signal that has no handler; the daemon
  installs handlers for each signal it honours (see :mod:`supervisor.daemon`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Callable

log = logging.getLogger("superd")

PR_SET_CHILD_SUBREAPER = 36

#: Signals that make no sense to catch or forward: the kernel raises them for a
#: fault in superd itself, or they cannot be caught at all.
UNFORWARDABLE = frozenset(
    {
        signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD,
        signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
        signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS,
        signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE,
    }
)


def is_pid1() -> bool:
    return os.getpid() == 1


def become_subreaper() -> bool:
    """Ask the kernel to re-parent our descendants' orphans to us. True on success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library superd already has loaded
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            return True
        log.warning("cannot become a child subreaper: %s", os.strerror(ctypes.get_errno()))
    except OSError as exc:  # pragma: no cover - no libc?
        log.warning("cannot become a child subreaper: %s", exc)
    return False


def reset_signals() -> None:
    """Start from a clean slate: nothing blocked, nothing ignored.

    A process inherits its parent's signal mask and ignored signals, and so
    would superd's programs inherit superd's. Python already ignores SIGPIPE
    and SIGXFSZ, which ``restore_signals`` undoes in each child.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE, signal.SIGXFSZ):
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def forwardable_signals() -> list[signal.Signals]:
    """Every signal single-program mode passes on to its program."""
    result = []
    for sig in sorted(signal.valid_signals()):
        if sig in UNFORWARDABLE:
            continue
        result.append(sig)
    return result


class Reaper:
    """Collects every exit status and hands it to ``on_exit(pid, status)``."""

    def __init__(self, on_exit: Callable[[int, int], None]) -> None:
        self.on_exit = on_exit
        #: Set (single-program mode in a terminal): stopped children too, to ``on_stop(pid, status)``.
        self.on_stop: Callable[[int, int], None] | None = None

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | (os.WUNTRACED if self.on_stop else 0))
            except ChildProcessError:
                return
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if pid == 0:
                return
            if self.on_stop is not None and os.WIFSTOPPED(status):
                self.on_stop(pid, status)
                continue
            try:
                self.on_exit(pid, status)
            except Exception:  # a bug in handling one exit must not strand the others
                log.exception("handling the exit of pid %d failed", pid)
