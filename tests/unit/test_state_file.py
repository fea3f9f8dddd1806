"""The run directory's state: a snapshot plus a journal of the runs begun since
(daemon/runstate.py), and when superd writes which (daemon/statefile.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from supervisor.daemon import runstate
from supervisor.daemon.statefile import COMPACT_AFTER, StateFile

pytestmark = pytest.mark.unit


def entry(name: str, pid: int) -> dict:
    return {"name": name, "pid": pid, "start": 100 + pid, "pgid": pid, "cgroup": None, "token": f"1.{pid}.{name}"}


def snapshot(*entries: dict) -> dict:
    return {"version": runstate.VERSION, "superd": {"pid": 1, "start": 1, "boot": "b"}, "mode": "tree",
            "cgroup_root": None, "processes": list(entries)}


def test_reading_takes_the_snapshot_and_the_journal(tmp_path):
    rundir = runstate.RunDir(str(tmp_path))
    rundir.write(snapshot(entry("a", 10)))
    rundir.append([entry("b", 11), entry("c", 12)])
    rundir.append([entry("a", 10)])  # in both: counted once
    names = [e["name"] for e in rundir.read()["processes"]]
    assert names == ["a", "b", "c"]


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    rundir = runstate.RunDir(str(tmp_path))
    rundir.write(snapshot())
    rundir.append([entry("b", 11)])
    with open(rundir.journal_path, "ab") as f:
        f.write(json.dumps(entry("c", 12)).encode()[:20])
    assert [e["name"] for e in rundir.read()["processes"]] == ["b"]


def test_a_snapshot_empties_the_journal_and_remove_takes_both(tmp_path):
    rundir = runstate.RunDir(str(tmp_path))
    rundir.write(snapshot())
    rundir.append([entry("b", 11)])
    rundir.write(snapshot(entry("c", 12)))
    assert [e["name"] for e in rundir.read()["processes"]] == ["c"]
    rundir.append([entry("d", 13)])  # after the truncation, at the start of the file
    assert [e["name"] for e in rundir.read()["processes"]] == ["c", "d"]
    rundir.remove()
    assert list(tmp_path.iterdir()) == []


class CountingRunDir:
    def __init__(self) -> None:
        self.snapshots = 0
        self.records = 0  # every record written, in snapshots and journal lines

    def write(self, data: dict) -> None:
        self.snapshots += 1
        self.records += len(data["processes"])

    def append(self, records: list) -> None:
        self.records += len(records)


class Run:
    def __init__(self, name: str) -> None:
        self.name = name

    def record(self) -> dict:
        return {"name": self.name, "token": f"1.1.{self.name}"}


def supervisor(n: int):
    runs = {f"p{i}": Run(f"p{i}") for i in range(n)}
    runtime = SimpleNamespace(tracker=None, runs={}, live_runs=lambda: [r.record() for r in runtime.runs.values()])
    return SimpleNamespace(runtime=runtime, processes=runs, loop=None), runs


@pytest.mark.parametrize("n", [1000, 10000])
def test_a_start_up_in_slices_writes_each_run_about_twice_not_once_per_slice(n):
    sv, runs = supervisor(n)
    rundir = CountingRunDir()
    state = StateFile(sv, rundir)
    state.start()
    for first in range(0, n, 50):  # one loop turn per start-up slice
        for i in range(first, first + 50):
            sv.runtime.runs[f"p{i}"] = runs[f"p{i}"]
            state.run_began(f"p{i}")
        state.flush()
    # A snapshot per turn would have written n * n / 100 records.
    assert rundir.records <= 2 * n + COMPACT_AFTER
    assert rundir.snapshots <= 3


def test_every_run_begun_is_on_record_after_its_turn(tmp_path):
    sv, runs = supervisor(200)
    rundir = runstate.RunDir(str(tmp_path))
    state = StateFile(sv, rundir)
    state.start()
    for first in range(0, 200, 30):
        for i in range(first, min(first + 30, 200)):
            sv.runtime.runs[f"p{i}"] = runs[f"p{i}"]
            state.run_began(f"p{i}")
        state.flush()
        recorded = {e["name"] for e in rundir.read()["processes"]}
        assert recorded == set(sv.runtime.runs)
