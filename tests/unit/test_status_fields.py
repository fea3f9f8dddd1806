"""``status`` with "fields": only the members asked for, and only the reads they need."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from supervisor.daemon import procfs
from supervisor.daemon.commands import PROCESS_FIELDS, USAGE_FIELDS, _stopped, process_info, process_infos

from .test_process import FakeRuntime, make

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]


class CountingRuntime(FakeRuntime):
    """A fake runtime that tracks resources, counting what status asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def usage(self, process) -> dict:
        self.asked.append("usage")
        return {"cgroup": "/sys/fs/cgroup/x", "pids": 2, "memory": 4096, "memory_source": "rss"}

    def dropped(self, process) -> dict:
        self.asked.append("dropped")
        return {"stdout": {"bytes": 1, "lines": 1}, "stderr": {"bytes": 0, "lines": 0}}


def running() -> tuple:
    p, rt = make(CountingRuntime(), startsecs=0)
    p.start()
    return p, rt


def test_without_fields_every_member_in_order() -> None:
    p, rt = running()
    info = process_info(p)
    assert tuple(info) == PROCESS_FIELDS
    assert rt.asked == ["usage", "dropped"]
    assert process_infos([p]) == [info]


def test_fields_are_a_projection_of_the_whole() -> None:
    p, rt = running()
    whole = process_info(p)
    wanted = ["status_text", "name", "memory", "state", "description"]
    (info,) = process_infos([p], wanted)
    assert list(info) == ["name", "state", "description", "status_text", "memory"]  # the usual order
    assert info == {k: whole[k] for k in wanted}


def test_only_the_reads_the_fields_need() -> None:
    p, rt = running()
    rt.asked.clear()
    process_infos([p], ["name", "state", "pid", "description"])
    assert rt.asked == []
    for field in USAGE_FIELDS:
        rt.asked.clear()
        assert set(process_infos([p], [field])[0]) == {field}
        assert rt.asked == ["usage"]
    rt.asked.clear()
    process_infos([p], ["dropped"])
    assert rt.asked == ["dropped"]


def test_unknown_and_untracked_fields_are_left_out() -> None:
    p, _ = make(startsecs=0)  # FakeRuntime: no usage, no dropped
    p.start()
    assert process_infos([p], ["name", "no_such_member", "memory", "dropped"]) == [{"name": "p"}]
    assert process_infos([p], []) == [{}]
    assert "memory" not in process_info(p) and "dropped" not in process_info(p)


def test_stopped_reads_what_procfs_reads() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert _stopped(child.pid) is False is procfs.stopped(child.pid)
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not procfs.stopped(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stopped(child.pid) is True is procfs.stopped(child.pid)
        os.kill(child.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while procfs.stopped(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stopped(child.pid) is False
    finally:
        child.kill()
        child.wait()
    assert _stopped(child.pid) is False  # gone
