"""superd's priority while it starts its programs (daemon/priority.py), with a fake scheduler."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from supervisor.daemon import priority
from supervisor.daemon.priority import SpawnPriority

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Scheduler(priority.Scheduler):
    """The thread's nice value and reset-on-fork flag, and every call in order."""

    def __init__(self, nice: int = 0, policy: int = os.SCHED_OTHER, refuse: bool = False) -> None:
        self._nice, self._policy, self.refuse = nice, policy, refuse
        self.flag = False
        self.calls: list[tuple] = []

    def policy(self) -> int:
        return self._policy

    def nice(self) -> int:
        return self._nice

    def set_nice(self, value: int) -> None:
        self.calls.append(("nice", value))
        if value < self._nice and self.refuse:
            raise PermissionError(errno.EACCES, "Permission denied")
        self._nice = value

    def reset_on_fork(self, on: bool) -> None:
        self.calls.append(("reset_on_fork", on))
        self.flag = on


def make(wanted: int = -10, **scheduler) -> tuple[SpawnPriority, Scheduler, list[int]]:
    sched, setting = Scheduler(**scheduler), [wanted]
    return SpawnPriority(lambda: setting[0], sched), sched, setting


def test_superd_is_raised_for_the_start_up_with_reset_on_fork_and_lowered_after():
    prio, sched, _ = make()
    with prio.raised():
        # raised before any fork, the flag set before the first child
        assert sched.calls == [("nice", -10), ("reset_on_fork", True)]
        assert (sched.nice(), sched.flag, prio.raised_to) == (-10, True, -10)
    # lowered first, then the flag cleared (no child is born at -10 meanwhile)
    assert sched.calls[2:] == [("nice", 0), ("reset_on_fork", False)]
    assert (sched.nice(), sched.flag, prio.raised_to) == (0, False, 0)


def test_a_start_up_cut_short_by_an_error_lowers_superd_all_the_same():
    prio, sched, _ = make()
    with pytest.raises(RuntimeError):
        with prio.raised():
            raise RuntimeError("interrupted")
    assert (sched.nice(), sched.flag) == (0, False)


def test_each_start_up_reads_the_setting_of_its_time():
    prio, sched, setting = make()
    with prio.raised():
        pass
    setting[0] = -5  # the config read anew
    with prio.raised():
        assert sched.nice() == -5


def test_spawn_nice_0_leaves_superd_alone():
    prio, sched, setting = make(wanted=0)
    with prio.raised():
        pass
    assert sched.calls == []


@pytest.mark.parametrize("kwargs", [{"nice": 5}, {"nice": -2}, {"policy": getattr(os, "SCHED_BATCH", 3)}])
def test_a_nice_value_or_policy_someone_chose_is_left_alone(kwargs):
    prio, sched, _ = make(**kwargs)
    assert not prio.enabled
    with prio.raised():
        pass
    prio.lower()
    assert sched.calls == []


def test_without_the_privilege_it_is_off_for_good_and_said_once(caplog):
    prio, sched, _ = make(refuse=True)
    with caplog.at_level(logging.DEBUG, logger="superd"):
        with prio.raised():
            pass
        with prio.raised():
            pass
    assert sched.calls == [("nice", -10)]  # the flag is never touched: clearing it would need the privilege
    assert not prio.enabled and sched.nice() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "superd cannot raise its priority while it spawns (Permission denied): spawn_nice has no effect"]


def test_lowering_twice_is_harmless():
    prio, sched, _ = make()
    with prio.raised():
        prio.lower()  # superd closing in the middle of its start-up
    assert sched.calls.count(("nice", 0)) == 1


def test_no_scheduler_no_raise():
    prio = SpawnPriority(lambda: -10, None)
    with prio.raised():
        pass
    assert not prio.enabled


def test_the_real_scheduler_reads_this_thread():
    assert priority.usable()  # superd is Linux-only: SCHED_RESET_ON_FORK is always there
    real = priority.Scheduler()
    assert real.nice() == os.getpriority(os.PRIO_PROCESS, 0)
    assert real.policy() == os.sched_getscheduler(0)
