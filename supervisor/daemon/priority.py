"""superd's own CPU priority: above its programs' for as long as it runs, and
theirs untouched.

Everything superd does is on the path of its programs: a spawn, a reap and the
restart after it, the stop plan's timers, the reading of their output pipes,
an answer to ``superctl``. At the same nice value the kernel shares a CPU
evenly between superd and each of its programs, so on a busy machine superd
waits its turn behind them (measured on 2 CPUs: a 1,000-program start-up spent
~0.5 s runnable but not running, behind the programs it had just started; with
8 busy loops on the CPUs a crashed program was back after a median 14.0 ms
instead of 10.8 (a shell program: 21 instead of 9); 100 programs writing at
once lost ~6% of their throughput to superd waiting while their pipes
filled). superd therefore runs at ``nice`` (-10 by default) from its start to
its end. That is its main thread, where all of the above happens; a thread
it starts (a host name lookup) is born at nice 0, like its children.

Its children must not inherit that: with its raise superd sets
``SCHED_RESET_ON_FORK``, with which every process it forks (programs, hooks,
probes, event listeners) is born at nice 0 (the kernel resets a negative nice
in the child). A program's own ``nice`` is set in its child as before.

superd leaves its priority alone where it was started with another nice value
or scheduling policy (the operator chose those, and its programs inherit
them), where ``nice = 0``, where someone has since changed it from outside
(``renice``), and where it may not raise itself (no CAP_SYS_NICE and no
RLIMIT_NICE allowance, as in most containers): the first refusal turns this
off for good.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Optional

log = logging.getLogger("superd")


class Scheduler:
    """The calling thread's nice value and scheduling policy (Linux); a fake one in tests."""

    def policy(self) -> int:
        return os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)

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


class OwnPriority:
    """superd's nice value: :meth:`apply` at the start and after a reload that
    changed it, :meth:`restore` when superd ends.

    ``wanted()`` gives the nice value (``[superd] nice``, read at each apply).
    """

    def __init__(self, wanted: Callable[[], int], scheduler: Optional[Scheduler] = None) -> None:
        self._wanted = wanted
        self._scheduler = scheduler
        self.at = 0  # the nice value superd set itself to (0: none, or lowered again)
        self.enabled = scheduler is not None and self._chosen_by_nobody()

    def _chosen_by_nobody(self) -> bool:
        """Is superd at the default nice value and policy (nothing an operator set)?"""
        assert self._scheduler is not None
        try:
            return self._scheduler.policy() == os.SCHED_OTHER and self._scheduler.nice() == 0
        except OSError:
            return False

    def apply(self) -> None:
        """Be at the wanted nice value (a no-op when already there, or when off)."""
        if not self.enabled:
            return
        nice = min(self._wanted(), 0)
        if nice == self.at:
            return
        if not self._outside_left_alone():
            return
        assert self._scheduler is not None
        if nice == 0:
            self.restore()
            return
        try:
            self._scheduler.set_nice(nice)
        except OSError as exc:
            if self.at:  # raised already (an RLIMIT_NICE allowance short of the new value): stay there
                log.warning("superd cannot raise itself to nice %d (%s): it stays at %d", nice,
                            exc.strerror or exc, self.at)
                return
            # Unprivileged: off for good, and the flag never touched (clearing it would need privilege).
            self.enabled = False
            # Debug: a container without CAP_SYS_NICE is the usual case, nothing to act on.
            log.debug("superd cannot raise its priority (%s): its nice setting has no effect", exc.strerror or exc)
            return
        if self.at == 0:
            try:
                # Before the next fork (both are this thread's own settings, and this
                # thread forks nothing in between): no child is born at superd's nice.
                self._scheduler.reset_on_fork(True)
            except OSError as exc:  # pragma: no cover - allowed to raise itself, refused the flag
                self.enabled = False
                self._scheduler.set_nice(0)
                log.debug("superd cannot set SCHED_RESET_ON_FORK (%s): its nice setting has no effect",
                          exc.strerror or exc)
                return
        self.at = nice

    def _outside_left_alone(self) -> bool:
        """Is superd still at the nice value it set itself to? When someone has
        reniced it (``renice``), theirs wins: this turns off for good (said once)."""
        assert self._scheduler is not None
        try:
            now = self._scheduler.nice()
        except OSError:  # pragma: no cover - getpriority of oneself does not fail
            return True
        if now == self.at:
            return True
        self.enabled = False
        log.info("superd was reniced to %d from outside: its [superd] nice setting no longer applies", now)
        return False

    def restore(self) -> None:
        """Back to nice 0, the flag cleared (superd ends, or ``nice = 0`` came with a reload);
        a nice value someone else gave superd meanwhile is theirs, and stays."""
        if not self.at or not self._outside_left_alone():
            return
        assert self._scheduler is not None
        try:
            self._scheduler.set_nice(0)  # lowering needs no privilege; first, so no child is born raised
        except OSError as exc:  # pragma: no cover - the kernel refused a lower priority
            log.warning("superd cannot lower its priority back to nice 0: %s", exc.strerror or exc)
            return  # still raised: the flag stays, so no child is born at superd's nice
        self.at = 0
        try:
            self._scheduler.reset_on_fork(False)
        except OSError:  # pragma: no cover - superd lost the privilege to clear it: harmless at nice 0
            pass
