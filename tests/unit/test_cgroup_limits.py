"""memory_max, cpu_max, pids_max: the cgroup file writes, on a fake cgroup tree."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from supervisor import config as cfg
from supervisor.daemon import cgroup_limits

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def configured(**keys):
    return cfg.parse({"program": {"app": {"command": "x", **keys}, "plain": {"command": "y"}}}, None, {})


def tree(tmp_path, offered="cpu memory pids", procs="4242\n"):
    home, root = tmp_path / "home", tmp_path / "home" / "superd-1"
    root.mkdir(parents=True)
    (home / "cgroup.controllers").write_text(offered + "\n")
    (home / "cgroup.procs").write_text(procs)
    for folder in (home, root):
        (folder / "cgroup.subtree_control").write_text("")
    return SimpleNamespace(mode="cgroup", home=str(home), root=str(root), controllers=(), description="cgroup v2")


def test_apply_writes_the_limits(tmp_path):
    program = configured(memory_max="512MB", cpu_max=1.5, pids_max=200).program("app")
    cgroup_limits.apply(str(tmp_path), program)
    assert (tmp_path / "memory.max").read_text() == str(512 << 20)
    assert (tmp_path / "cpu.max").read_text() == "150000 100000"
    assert (tmp_path / "pids.max").read_text() == "200"


def test_nothing_is_written_without_limits(tmp_path):
    cgroup_limits.apply(str(tmp_path), configured().program("plain"))
    assert list(tmp_path.iterdir()) == []
    assert cgroup_limits.prepare(SimpleNamespace(mode="tree"), configured()) is None


def test_refused_without_cgroup_tracking():
    why = cgroup_limits.prepare(SimpleNamespace(mode="tree", description="process groups + subreaper"),
                                configured(pids_max=10))
    assert "program.app.pids_max" in why and "cgroup tracking" in why


def test_a_controller_not_offered_is_named_with_the_reason(tmp_path):
    tracker = tree(tmp_path, offered="hugetlb")
    why = cgroup_limits.prepare(tracker, configured(memory_max="1GB", cpu_max=2))
    assert "program.app.cpu_max: the cpu controller is not available to superd" in why
    assert "program.app.memory_max: the memory controller is not available" in why
    assert "offers hugetlb" in why and "Delegate=yes" in why


def test_controllers_are_enabled_moving_superd_into_a_leaf_when_needed(tmp_path, monkeypatch):
    tracker = tree(tmp_path)
    written = []
    real = cgroup_limits._enable

    def enable(cgroup, controller):
        leaf = tmp_path / "home" / "superd-1-daemon"
        if cgroup == tracker.home and not leaf.exists():
            raise OSError(errno.EBUSY, "Device or resource busy")  # processes in superd's cgroup
        written.append((cgroup, controller))
        real(cgroup, controller)

    monkeypatch.setattr(cgroup_limits, "_enable", enable)
    assert cgroup_limits.prepare(tracker, configured(memory_max="1GB", pids_max=5)) is None
    leaf = tmp_path / "home" / "superd-1-daemon"
    assert tracker.home == str(leaf)
    assert (leaf / "cgroup.procs").read_text() == "4242"
    assert written == [(str(tmp_path / "home"), "memory"), (tracker.root, "memory"),
                       (str(tmp_path / "home"), "pids"), (tracker.root, "pids")]
    assert set(tracker.controllers) == {"memory", "pids"}
