"""superd's own priority (daemon/priority.py), with a fake scheduler."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from supervisor.daemon import priority
from supervisor.daemon.priority import OwnPriority

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


def make(wanted: int = -10, **scheduler) -> tuple[OwnPriority, Scheduler, list[int]]:
    sched, setting = Scheduler(**scheduler), [wanted]
    return OwnPriority(lambda: setting[0], sched), sched, setting


def test_superd_raises_itself_with_reset_on_fork_and_restores_at_its_end():
    prio, sched, _ = make()
    prio.apply()
    # raised before any fork, the flag set before the first child
    assert sched.calls == [("nice", -10), ("reset_on_fork", True)]
    assert (sched.nice(), sched.flag, prio.at) == (-10, True, -10)
    prio.apply()  # already there: nothing
    assert len(sched.calls) == 2
    prio.restore()
    # lowered first, then the flag cleared (no child is born at -10 meanwhile)
    assert sched.calls[2:] == [("nice", 0), ("reset_on_fork", False)]
    assert (sched.nice(), sched.flag, prio.at) == (0, False, 0)


def test_a_reload_moves_it_keeps_the_flag_and_nice_0_lowers_it():
    prio, sched, setting = make()
    prio.apply()
    setting[0] = -5  # the config read anew
    prio.apply()
    assert sched.calls[2:] == [("nice", -5)]  # the flag stays set
    assert (sched.nice(), sched.flag, prio.at) == (-5, True, -5)
    setting[0] = 0
    prio.apply()
    assert (sched.nice(), sched.flag, prio.at) == (0, False, 0)
    setting[0] = -3  # and raised again by a later reload
    prio.apply()
    assert (sched.nice(), sched.flag, prio.at) == (-3, True, -3)


def test_nice_0_leaves_superd_alone():
    prio, sched, setting = make(wanted=0)
    prio.apply()
    prio.restore()
    assert sched.calls == []


@pytest.mark.parametrize("kwargs", [{"nice": 5}, {"nice": -2}, {"policy": getattr(os, "SCHED_BATCH", 3)}])
def test_a_nice_value_or_policy_someone_chose_is_left_alone(kwargs):
    prio, sched, _ = make(**kwargs)
    assert not prio.enabled
    prio.apply()
    prio.restore()
    assert sched.calls == []


def test_a_renice_from_outside_wins_over_a_later_reload(caplog):
    prio, sched, setting = make()
    prio.apply()
    sched._nice = -15  # renice -n -15 -p SUPERD
    setting[0] = -5
    with caplog.at_level(logging.INFO, logger="superd"):
        prio.apply()
    assert sched.nice() == -15 and not prio.enabled
    assert sched.calls == [("nice", -10), ("reset_on_fork", True)]
    assert [r.getMessage() for r in caplog.records] == [
        "superd was reniced to -15 from outside: its [superd] nice setting no longer applies"]


def test_a_raise_refused_while_raised_stays_where_it_is_and_nice_0_still_lowers(caplog):
    # An RLIMIT_NICE allowance that reaches -10 and not -15.
    prio, sched, setting = make()
    prio.apply()
    sched.refuse = True
    setting[0] = -15
    with caplog.at_level(logging.INFO, logger="superd"):
        prio.apply()
    assert (sched.nice(), sched.flag, prio.at, prio.enabled) == (-10, True, -10, True)
    assert [r.getMessage() for r in caplog.records] == [
        "superd cannot raise itself to nice -15 (Permission denied): it stays at -10"]
    setting[0] = 0
    prio.apply()
    assert (sched.nice(), sched.flag, prio.at) == (0, False, 0)


def test_superd_ending_leaves_a_renice_from_outside_alone():
    prio, sched, _ = make()
    prio.apply()
    sched._nice = -5  # renice -n -5 -p SUPERD
    prio.restore()
    assert (sched.nice(), sched.flag) == (-5, True)  # the flag stays: no child is born at -5 either
    assert sched.calls == [("nice", -10), ("reset_on_fork", True)]


def test_without_the_privilege_it_is_off_for_good_and_said_once(caplog):
    prio, sched, setting = make(refuse=True)
    with caplog.at_level(logging.DEBUG, logger="superd"):
        prio.apply()
        setting[0] = -5
        prio.apply()
        prio.restore()
    assert sched.calls == [("nice", -10)]  # the flag is never touched: clearing it would need the privilege
    assert not prio.enabled and sched.nice() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "superd cannot raise its priority (Permission denied): its nice setting has no effect"]


def test_restoring_twice_is_harmless():
    prio, sched, _ = make()
    prio.apply()
    prio.restore()
    prio.restore()
    assert sched.calls.count(("nice", 0)) == 1


def test_no_scheduler_no_raise():
    prio = OwnPriority(lambda: -10, None)
    prio.apply()
    assert not prio.enabled and prio.at == 0


def test_the_real_scheduler_is_there_and_reads_the_policy_without_the_flag():
    assert priority.usable()  # superd is Linux-only: SCHED_RESET_ON_FORK is always there
    # The test runner is an ordinary process: whatever its flag, its policy reads SCHED_OTHER,
    # which is what superd compares with to tell whether someone chose its policy.
    assert priority.Scheduler().policy() == os.SCHED_OTHER
