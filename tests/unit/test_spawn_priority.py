"""superd's priority while it spawns (daemon/priority.py), with a fake clock and scheduler."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from supervisor.daemon import priority
from supervisor.daemon.priority import HOLD, SpawnPriority

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Clock:
    """The event loop's time and timers, advanced by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[list] = []  # [when, callback, cancelled]

    def time(self) -> float:
        return self.now

    def later(self, delay: float, callback):
        timer = Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= end), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = end

    def pending(self) -> int:
        return sum(1 for t in self.timers if not t.cancelled)


class Timer:
    def __init__(self, when: float, callback) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


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


def make(wanted: int = -10, **scheduler) -> tuple[SpawnPriority, Scheduler, Clock, list[int]]:
    clock, sched, setting = Clock(), Scheduler(**scheduler), [wanted]
    return SpawnPriority(lambda: setting[0], clock.time, clock.later, sched), sched, clock, setting


def test_the_first_spawn_raises_superd_and_sets_reset_on_fork_before_the_fork():
    prio, sched, clock, _ = make()
    prio.spawning()
    assert sched.calls == [("nice", -10), ("reset_on_fork", True)]
    assert (sched.nice(), sched.flag, prio.raised) == (-10, True, -10)


def test_superd_stays_raised_while_spawns_come_and_lowers_itself_after_the_hold():
    prio, sched, clock, _ = make()
    for _ in range(20):  # a start-up: a spawn every 10 ms for 200 ms
        prio.spawning()
        clock.advance(0.01)
    assert sched.calls == [("nice", -10), ("reset_on_fork", True)]
    assert sched.nice() == -10
    clock.advance(HOLD - 0.011)  # HOLD after the last spawn is not over yet
    assert sched.nice() == -10
    clock.advance(0.002)
    assert sched.calls[2:] == [("nice", 0), ("reset_on_fork", False)]  # lowered, then the flag cleared
    assert (sched.nice(), sched.flag, prio.raised) == (0, False, 0)
    assert clock.pending() == 0  # idle: no timer left behind


def test_one_timer_at_a_time_however_many_spawns():
    prio, sched, clock, _ = make()
    for _ in range(1000):
        prio.spawning()
    assert clock.pending() == 1


def test_a_later_burst_raises_superd_again_with_the_setting_of_that_time():
    prio, sched, clock, setting = make()
    prio.spawning()
    clock.advance(1)
    setting[0] = -5  # a reload changed spawn_nice
    prio.spawning()
    assert sched.calls == [("nice", -10), ("reset_on_fork", True), ("nice", 0), ("reset_on_fork", False),
                           ("nice", -5), ("reset_on_fork", True)]


def test_spawn_nice_0_leaves_superd_alone():
    prio, sched, clock, setting = make(wanted=0)
    prio.spawning()
    clock.advance(1)
    assert sched.calls == [] and clock.pending() == 0
    setting[0] = -3  # a reload turns it on
    prio.spawning()
    assert sched.nice() == -3


@pytest.mark.parametrize("kwargs", [{"nice": 5}, {"nice": -2}, {"policy": getattr(os, "SCHED_BATCH", 3)}])
def test_a_nice_value_or_policy_someone_chose_is_left_alone(kwargs):
    prio, sched, clock, _ = make(**kwargs)
    assert not prio.enabled
    prio.spawning()
    prio.close()
    assert sched.calls == []


def test_without_the_privilege_it_is_off_for_good_and_said_once(caplog):
    prio, sched, clock, _ = make(refuse=True)
    with caplog.at_level(logging.INFO, logger="superd"):
        prio.spawning()
        clock.advance(1)
        prio.spawning()
    assert sched.calls == [("nice", -10)]  # the flag is never touched: clearing it would need the privilege
    assert not prio.enabled and sched.nice() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "superd cannot raise its priority while it spawns (Permission denied): spawn_nice has no effect"]


def test_close_lowers_superd_and_cancels_its_timer():
    prio, sched, clock, _ = make()
    prio.spawning()
    prio.close()
    assert (sched.nice(), sched.flag, clock.pending()) == (0, False, 0)
    prio.close()  # twice is harmless
    assert sched.calls.count(("nice", 0)) == 1


def test_no_scheduler_no_raise():
    clock = Clock()
    prio = SpawnPriority(lambda: -10, clock.time, clock.later, None)
    prio.spawning()
    prio.close()
    assert not prio.enabled and clock.pending() == 0


@pytest.mark.skipif(not priority.usable(), reason="needs Linux's SCHED_RESET_ON_FORK")
def test_the_real_scheduler_reads_this_thread():
    real = priority.Scheduler()
    assert real.nice() == os.getpriority(os.PRIO_PROCESS, 0)
    assert real.policy() == os.sched_getscheduler(0)
