"""A spawn's start time from the clock around its fork (no read of /proc)."""

from __future__ import annotations

import os

from supervisor.daemon import procfs

TICK = 10**9 // os.sysconf("SC_CLK_TCK")


def test_within_one_tick_the_start_time_is_that_tick():
    assert procfs.start_between(5 * TICK, 5 * TICK) == 5
    assert procfs.start_between(5 * TICK + 1, 6 * TICK - 1) == 5


def test_across_a_tick_boundary_it_is_not_known():
    assert procfs.start_between(6 * TICK - 1, 6 * TICK) is None
    assert procfs.start_between(5 * TICK, 7 * TICK) is None


def test_it_counts_what_proc_counts():
    """This process's own start time, read from /proc, is at most the current
    tick of the clock start_between reads."""
    now = procfs.boot_ns()
    assert procfs.start_time(os.getpid()) <= procfs.start_between(now, now)
