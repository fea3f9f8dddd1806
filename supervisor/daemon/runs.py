"""A run (one spawn of an instance) and what a tracker offers the supervisor.

The two ways of telling a run's processes apart are in
:mod:`supervisor.daemon.tracking` (process groups and run tokens) and
:mod:`supervisor.daemon.cgroup_tracking` (one cgroup v2 per instance).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from .procfs import run_token, start_time


@dataclass(slots=True)
class Run:
    """One spawn of an instance."""

    name: str
    token: str
    cgroup: Optional[str] = None
    pid: Optional[int] = None
    pgid: Optional[int] = None
    start: Optional[int] = None   # the leader's start time, in clock ticks since boot
    reaped: bool = False          # the leader's exit status is collected: its pid means nothing now

    def record(self) -> dict:
        if self.start is None and self.pid is not None and not self.reaped:
            # Read for the state file, not at the spawn: /proc/PID/stat of a
            # child that is still exec'ing is slow to read.
            self.start = start_time(self.pid, zombie=True)
        return {"name": self.name, "pid": self.pid, "start": self.start, "pgid": self.pgid,
                "cgroup": self.cgroup, "token": self.token}


class Tracker:
    """What both modes offer the supervisor."""

    mode = ""

    def __init__(self) -> None:
        self._spawns = 0
        self.on_change: Callable[[str], None] = lambda name: None
        self.description = ""

    def new_run(self, name: str) -> Run:
        self._spawns += 1
        return Run(name, f"{os.getpid()}.{self._spawns}.{name}")

    def watch(self, run: Run) -> bool:
        """Will :attr:`on_change` be called as soon as ``run`` may have emptied?
        Asked each time superd waits for what is left of a run (else it polls);
        process groups give no such word."""
        return False

    @contextlib.contextmanager
    def spawning(self, run: Run) -> Iterator[None]:
        """Around the fork of the run's leader."""
        yield

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Around a run of spawns with nothing else in between (a start-up slice)."""
        yield

    def settle(self) -> None:
        """Before superd forks anything that is not a run's leader (a probe, a hook)."""

    def limited(self, run: Run) -> None:
        """The run's cgroup has limits (memory_max, cpu_max, pids_max)."""

    def started(self, run: Run, pid: int) -> None:
        run.pid = run.pgid = pid  # its start time: when the state file first records it

    def alive(self, run: Run) -> bool:
        raise NotImplementedError

    def retire(self, run: Run) -> bool:
        """Is nothing of the run left? Asked instead of :meth:`alive` once no
        other run of the instance will start (superd is shutting down): the
        cgroup tracker answers by removing the run's cgroup, which the kernel
        refuses while anything lives in it."""
        return not self.alive(run)

    def signal_rest(self, run: Run, sig: int, group_done: bool) -> None:
        raise NotImplementedError

    def kill(self, run: Run) -> None:
        raise NotImplementedError

    def kill_everything(self) -> None:
        pass

    def member(self, run: Run, pid: int) -> Optional[bool]:
        """Is ``pid`` part of the run? None when that cannot be told (it is gone).

        By its run token, which the run's processes inherit (also once orphaned)."""
        if pid == run.pid:
            return True
        if start_time(pid, zombie=True) is None:
            return None
        return run_token(pid) == run.token

    def usage(self, name: str) -> dict:
        return {"cgroup": None, "pids": None, "memory": None, "memory_source": None}

    def forget(self, name: str) -> None:
        """The instance is gone from the config (its runs are over)."""

    def empty(self) -> bool:
        """Nothing of any run is left (for the end of a shutdown)."""
        return True

    def close(self) -> None:
        pass

    def state(self) -> dict:
        return {"mode": self.mode, "cgroup_root": None}
