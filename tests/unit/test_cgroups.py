"""supervisor.daemon.cgroups without a cgroup: finding superd's cgroup v2 from
/proc, the names it gives instances' cgroups, the inotify watcher (on plain
files). The tracking itself, with real processes, is in
tests/system/test_process_tracking.py and tests/privileged/test_cgroup_tracking.py.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from supervisor.daemon import cgroups

pytestmark = pytest.mark.timeout(30)


HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


@pytest.mark.parametrize("cgroup_file, mounts, expected", [
    # a host with the hybrid layout: v2 next to the v1 controllers
    ("4:memory:/x\n0::/user.slice/a b\n", HYBRID_MOUNTS, "/sys/fs/cgroup/unified/user.slice/a b"),
    # pure v2, superd in the root (a container with its own cgroup namespace)
    ("0::/\n", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup"),
    # a bind mount of a subtree, with an escaped space in the mount point
    ("0::/system.slice/superd.service\n",
     "30 23 0:26 /system.slice /mnt/cg\\040x rw - cgroup2 cgroup2 rw\n", "/mnt/cg x/superd.service"),
])
def test_own_cgroup_is_found_from_proc(tmp_path, cgroup_file, mounts, expected):
    (tmp_path / "cgroup").write_text(cgroup_file)
    (tmp_path / "mountinfo").write_text(mounts)
    assert cgroups.own_cgroup(str(tmp_path / "cgroup"), str(tmp_path / "mountinfo")) == expected


@pytest.mark.parametrize("cgroup_file, mounts, reason", [
    ("4:memory:/x\n", HYBRID_MOUNTS, "cgroup v1 only"),
    ("0::/a\n", "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", "not mounted"),
    ("0::/../outside\n", HYBRID_MOUNTS, "outside its cgroup namespace"),
])
def test_no_usable_cgroup_v2_says_why(tmp_path, cgroup_file, mounts, reason):
    (tmp_path / "cgroup").write_text(cgroup_file)
    (tmp_path / "mountinfo").write_text(mounts)
    with pytest.raises(cgroups.Unusable, match=reason):
        cgroups.own_cgroup(str(tmp_path / "cgroup"), str(tmp_path / "mountinfo"))


def test_cgroup_names_never_look_like_interface_files():
    assert cgroups.name_for("web_0") == "web_0"
    assert cgroups.name_for("memory.max") == "prog-memory.max"


def test_watcher_reports_each_changed_cgroup_once_per_read(tmp_path):
    changed: list[str] = []
    watcher = cgroups.Watcher(changed.append)
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "cgroup.events").write_text("populated 1\n")
            watcher.add(str(tmp_path / name))
        watcher.read()
        assert changed == []
        for _ in range(3):
            (tmp_path / "b" / "cgroup.events").write_text("populated 0\n")
        watcher.read()
        assert changed == [str(tmp_path / "b")]
        watcher.discard(str(tmp_path / "b"))
        (tmp_path / "b" / "cgroup.events").write_text("populated 1\n")
        watcher.read()
        assert changed == [str(tmp_path / "b")]
    finally:
        watcher.close()


def test_closing_removes_the_cgroups_oldest_first_then_the_root(tmp_path, monkeypatch):
    """The kernel's cleanup of a removed cgroup walks a list of its siblings;
    removed in the order superd made them (not the order the directory lists
    them) 10,000 cgroups go in 0.4 s instead of 2.3 s. A plain directory
    stands in for superd's cgroup."""
    import os
    import random

    from supervisor.daemon import tracking

    tracker = tracking.CgroupTracker(str(tmp_path))
    names = [f"p{i:02d}" for i in range(40)]
    random.Random(7).shuffle(names)
    made = [tracker.cgroup(name) for name in names]
    removed = []
    real_rmdir = os.rmdir

    def rmdir(path, *args, **kwargs):
        real_rmdir(path, *args, **kwargs)
        removed.append(str(path))
    monkeypatch.setattr(os, "rmdir", rmdir)
    tracker.close()
    assert removed == made + [tracker.root]
    assert not os.path.exists(tracker.root)


def test_a_tree_left_behind_is_removed_oldest_first(tmp_path, monkeypatch):
    """What a killed superd left (swept by the next one) goes in the order it
    was made, by inode number, whatever order the directory lists it in. A
    plain directory tree stands in for the cgroups."""
    import os
    import random

    from supervisor.daemon import cgroups

    root = tmp_path / "superd-1"
    root.mkdir()
    for i in range(40):
        (root / f"p{i:02d}").mkdir()
    children = sorted((str(p) for p in root.iterdir()), key=lambda p: os.stat(p).st_ino)
    real_scandir, real_rmdir = os.scandir, os.rmdir

    def scandir(path):
        entries = list(real_scandir(path))
        random.Random(3).shuffle(entries)
        return iter(entries)

    removed = []

    def rmdir(path, *args, **kwargs):
        real_rmdir(path, *args, **kwargs)
        removed.append(str(path))
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "rmdir", rmdir)
    assert cgroups.remove(str(root))
    assert removed == children + [str(root)]


@pytest.fixture
def plain_tracker(tmp_path):
    """A cgroup tracker over plain directories, on an event loop of its own:
    each cgroup.events file is written by the test, as the kernel would.
    Yields (tracker, the names on_change heard, a function that runs the loop a moment)."""
    from supervisor.daemon.cgroup_tracking import CgroupTracker

    loop = asyncio.new_event_loop()
    tracker = CgroupTracker(str(tmp_path), loop)
    emptied: list[str] = []
    tracker.on_change = emptied.append
    try:
        yield tracker, emptied, lambda: loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        tracker.close()
        loop.close()


def _populated(run, flag: int) -> None:
    with open(os.path.join(run.cgroup, "cgroup.events"), "w") as f:
        f.write(f"populated {flag}\n")


def test_a_run_is_watched_from_the_first_wait_not_from_its_spawn(plain_tracker):
    tracker, emptied, settle = plain_tracker
    run = tracker.new_run("web")
    _populated(run, 1)
    assert run.cgroup not in tracker.watcher  # a spawn makes no watch
    assert tracker.watch(run) and run.cgroup in tracker.watcher
    assert tracker.watch(run)  # asked again at each wait: the same watch
    settle()
    assert emptied == []
    _populated(run, 0)
    settle()
    assert emptied == ["web"]


def test_a_run_that_emptied_before_its_watch_is_announced_all_the_same(plain_tracker):
    """No event will come for an emptying the watch did not see: watch() looks once."""
    tracker, emptied, settle = plain_tracker
    run = tracker.new_run("web")
    _populated(run, 0)
    assert tracker.watch(run)
    settle()
    assert emptied == ["web"]


def test_without_inotify_a_run_is_not_watched(tmp_path):
    from supervisor.daemon.cgroup_tracking import CgroupTracker

    tracker = CgroupTracker(str(tmp_path))  # no loop: no watcher, superd polls
    run = tracker.new_run("web")
    assert not tracker.watch(run)
    tracker.close()
