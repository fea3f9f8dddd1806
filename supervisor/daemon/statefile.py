"""When superd writes its run directory's state (:mod:`.runstate`), and what.

A run that begins must be on disk before the event-loop turn that spawned it
ends: a superd killed right after would otherwise leave a process nobody
knows of. An ended run may linger (its pid and start time are checked by the
next superd), so ends write nothing.

At the end of a turn that began runs, their records are appended to the
journal; once the journal holds as many lines as there are processes (at
least :data:`COMPACT_AFTER`), a snapshot of the live runs replaces it. A
start-up of N programs in slices of 50 thus writes N journal lines and a
snapshot or two, where a snapshot per turn would write N²/50 records.
"""

from __future__ import annotations

from typing import Optional

from . import runstate

#: Journal lines before a snapshot, at the least.
COMPACT_AFTER = 64


class StateFile:
    """The state file of one supervisor (none in single-program mode)."""

    def __init__(self, sv: "Supervisor", rundir: Optional[runstate.RunDir]) -> None:
        self.sv = sv
        self.rundir = rundir
        self.recovered = False  # the previous superd's state has been dealt with
        self._begun: list[str] = []  # instances whose run began this turn
        self._scheduled = False
        self._journal_lines = 0

    def state(self) -> dict:
        tracker = self.sv.runtime.tracker
        where = tracker.state() if tracker is not None else {"mode": None, "cgroup_root": None}
        return {"version": runstate.VERSION, "superd": runstate.superd_record(), **where,
                "processes": self.sv.runtime.live_runs()}

    def start(self) -> None:
        """Recovery is over: the first snapshot (superd's identity, its cgroup root)."""
        self.recovered = True
        self.snapshot()

    def snapshot(self) -> None:
        if self.rundir is not None and self.recovered:
            self.rundir.write(self.state())
            self._journal_lines = 0

    def run_began(self, name: str) -> None:
        """``name`` was spawned: on disk before this loop turn ends."""
        if self.rundir is None or not self.recovered:
            return
        self._begun.append(name)
        if not self._scheduled and self.sv.loop is not None:
            self._scheduled = True
            self.sv.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        begun, self._begun = self._begun, []
        if self.rundir is None or not self.recovered or not begun:
            return
        if self._journal_lines + len(begun) > max(COMPACT_AFTER, len(self.sv.processes)):
            self.snapshot()
            return
        runs = self.sv.runtime.runs
        records = [runs[name].record() for name in dict.fromkeys(begun) if name in runs]
        self.rundir.append(records)
        self._journal_lines += len(records)

    def close(self, tracker) -> None:
        """superd is ending (its cgroups are gone): what could not be stopped
        stays on record for the next superd; with nothing left, the files go."""
        if self.rundir is None:
            return
        if self.recovered:
            state = self.state()
            if state["processes"] and tracker is not None and not tracker.empty():
                self.rundir.write(state)
            else:
                self.rundir.remove()
        self.rundir.unlock()
