"""Nothing escapes: a program's double-forked setsid daemon is stopped with it.

Every test runs in both tracking modes: ``cgroup`` (a cgroup v2 per instance;
needs root and a writable cgroup v2, and under CI it must run) and
``fallback`` (``cgroups = "off"``: process groups, the subreaper and the run
id in each process's environment).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import PYTHON, pid_alive, require_root, script, skip_or_fail, wait_until
from supervisor.daemon import cgroups, tracking

pytestmark = pytest.mark.timeout(60)

#: The leader double-forks: a child that calls setsid and forks the daemon,
#: then exits. The daemon (stdio on /dev/null, like a real one) writes its pid
#: to argv[1]; with argv[2] == "deaf" it ignores SIGTERM. The leader stays,
#: unless argv[3] says how many seconds it lives before exiting with code 1.
FORKER = """
import os, signal, sys, time
pidfile = sys.argv[1]
deaf = len(sys.argv) > 2 and sys.argv[2] == "deaf"
lives = float(sys.argv[3]) if len(sys.argv) > 3 else None
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        log = pidfile + ".log"
        def on_term(*_):
            with open(log, "a") as f:
                f.write(f"end {os.getpid()}\\n")
            os._exit(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN if deaf else on_term)
        with open(log, "a") as f:
            f.write(f"start {os.getpid()}\\n")
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
if lives is not None:
    time.sleep(lives)
    sys.exit(1)
while True:
    time.sleep(1)
"""


def require_cgroup2() -> None:
    require_root()
    reason = cgroups.describe_unusable()
    if reason is not None:
        skip_or_fail(f"no usable cgroup v2: {reason}")


@pytest.fixture(params=["cgroup", "fallback"])
def mode(request) -> str:
    if request.param == "cgroup":
        require_cgroup2()
    return request.param


def setting(mode: str) -> str:
    return 'cgroups = "auto"\n' if mode == "cgroup" else 'cgroups = "off"\n'


def forker_program(tmp_path: Path, name: str = "forker", *args: str, extra: str = "") -> str:
    prog = script(tmp_path, "forker.py", FORKER)
    argv = ", ".join(f'"{a}"' for a in (prog, str(tmp_path / f"{name}.pid"), *args))
    return f"[program.{name}]\ncommand = [{argv}]\nstartsecs = 0\nstopwaitsecs = 5\n{extra}"


def daemon_pid(tmp_path: Path, name: str = "forker") -> int:
    pidfile = tmp_path / f"{name}.pid"
    wait_until(pidfile.exists, 10, what="the daemon's pid file")
    pid = int(pidfile.read_text())
    assert pid_alive(pid)
    return pid


def test_the_mode_is_logged_and_shown_by_check(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path), daemon=setting(mode))
    expected = "cgroup v2 at " if mode == "cgroup" else "process groups + subreaper"
    assert f"process tracking: {expected}" in d.log()
    check = subprocess.run([PYTHON, "-m", "supervisor", "--check", "-c", str(tmp_path / "superd.toml")],
                           capture_output=True, text=True, timeout=20)
    assert check.returncode == 0
    assert f"process tracking: {expected}" in check.stdout


def test_stop_ends_the_escaped_daemon(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path), daemon=setting(mode))
    leader = d.wait_state("forker", "running")["pid"]
    daemon = daemon_pid(tmp_path)
    assert os.getsid(daemon) != os.getsid(leader) and os.getpgid(daemon) != leader  # it escaped
    info = d.status("forker")["forker"]
    if mode == "cgroup":
        listed = {int(p) for p in Path(info["cgroup"], "cgroup.procs").read_text().split()}
        assert {leader, daemon} <= listed
        assert info["pids"] == len(listed) and info["memory"] > 0
        assert info["memory_source"] in ("memory.current", "rss")
        assert os.path.basename(os.path.dirname(info["cgroup"])) == f"superd-{d.pid}"
    else:
        assert (info["cgroup"], info["pids"], info["memory"]) == (None, None, None)
    (result,) = d.call("stop", names=["forker"])
    assert result["ok"] and result["state"] == "stopped"
    assert not pid_alive(leader)
    assert not pid_alive(daemon), "the daemon survived its program's stop"
    assert (tmp_path / "forker.pid.log").read_text().splitlines()[-1] == f"end {daemon}"  # TERM, not KILL
    if mode == "cgroup":
        assert Path(info["cgroup"], "cgroup.procs").read_text() == ""
        assert d.status("forker")["forker"]["pids"] == 0


def test_a_daemon_deaf_to_term_is_killed_at_stopwaitsecs(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path, "forker", "deaf").replace("stopwaitsecs = 5", "stopwaitsecs = 1"),
                       daemon=setting(mode))
    daemon = daemon_pid(tmp_path)
    began = time.monotonic()
    (result,) = d.call("stop", names=["forker"])
    took = time.monotonic() - began
    assert result["ok"]
    assert not pid_alive(daemon)
    assert 0.9 <= took < 4, f"the stop took {took:.2f}s with stopwaitsecs = 1"


def test_shutdown_ends_the_escaped_daemon_and_removes_the_cgroups(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path) + forker_program(tmp_path, "other"), daemon=setting(mode))
    daemons = [daemon_pid(tmp_path), daemon_pid(tmp_path, "other")]
    root = f"superd-{d.pid}"
    cgroup = d.status("forker")["forker"]["cgroup"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(20) == 0
    assert not any(pid_alive(p) for p in daemons), "a daemon survived superd's shutdown"
    if mode == "cgroup":
        assert os.path.basename(os.path.dirname(cgroup)) == root
        assert not os.path.exists(os.path.dirname(cgroup)), "superd's cgroup is still there"
    assert not (tmp_path / "run" / "superd.state").exists()


def test_what_an_exit_leaves_behind_is_gone_before_the_restart(superd_factory, tmp_path, mode):
    # The leader exits with code 1 after 1.2 s, its daemon still running; with
    # autorestart the next run must not start next to the old daemon.
    d = superd_factory(forker_program(tmp_path, "forker", "-", "1.2", extra="autorestart = true\n"),
                       daemon=setting(mode))
    log = tmp_path / "forker.pid.log"

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    wait_until(lambda: len([l for l in lines() if l.startswith("start")]) >= 2, 20, what="a second run")
    events = lines()
    first, second = [l.split()[1] for l in events if l.startswith("start")][:2]
    assert events.index(f"end {first}") < events.index(f"start {second}"), events
    assert "outlived its leader" in d.log()
    assert d.status("forker")["forker"]["restarts"] >= 1


def test_status_of_100_programs_stays_cheap(superd_factory, tmp_path, mode):
    config = "".join(f'[program.p{i}]\ncommand = "sleep 1000"\nstartsecs = 0\n' for i in range(100))
    d = superd_factory(config, daemon=setting(mode))
    wait_until(lambda: all(p["state"] == "running" for p in d.status().values()), 20)
    with d.client() as client:
        client.call("status")
        began = time.perf_counter()
        for _ in range(5):
            result = client.call("status")
        took = (time.perf_counter() - began) / 5
    assert len(result) == 100
    if mode == "cgroup":
        assert all(p["pids"] == 1 and p["memory"] > 0 for p in result)
    assert took < 0.25, f"status of 100 programs took {took * 1000:.0f} ms"


def test_run_id_is_in_every_process_environment(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path), daemon=setting(mode))
    leader = d.wait_state("forker", "running")["pid"]
    daemon = daemon_pid(tmp_path)
    token = tracking.run_token(leader)
    assert token is not None and token.startswith(f"{d.pid}.") and token.endswith(".forker")
    assert tracking.run_token(daemon) == token
    assert psutil.Process(daemon).environ()[tracking.RUN_ID] == token


# --------------------------------------------------------------------------
# Pure logic: finding the cgroup, names, the inotify watcher (no root needed)

HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


@pytest.mark.unit
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


@pytest.mark.unit
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


@pytest.mark.unit
def test_cgroup_names_never_look_like_interface_files():
    assert cgroups.name_for("web_0") == "web_0"
    assert cgroups.name_for("memory.max") == "prog-memory.max"


@pytest.mark.unit
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
