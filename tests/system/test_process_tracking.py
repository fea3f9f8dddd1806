"""Nothing escapes: a program's double-forked setsid daemon is stopped with it.

Here in the fallback tracking mode (``cgroups = "off"``: process groups, the
subreaper and the run id in each process's environment; the ``mode`` fixture
of tests/system/conftest.py). tests/privileged/test_cgroup_tracking.py runs
these same tests with ``mode`` "cgroup" (a cgroup v2 per instance).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import PYTHON, pid_alive, script, wait_until
from tests.system.conftest import setting
from supervisor.daemon import tracking

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
    assert not (tmp_path / "run" / "superd.journal").exists()


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
        took = []
        for _ in range(5):
            began = time.perf_counter()
            result = client.call("status")
            took.append(time.perf_counter() - began)
    assert len(result) == 100
    if mode == "cgroup":
        assert all(p["pids"] == 1 and p["memory"] > 0 for p in result)
    # A test, not a benchmark (bench/run.py measures status_s): the cheapest of
    # five calls, so that a loaded machine's hiccups do not count, must be far
    # from what a status that scans /proc or spawns helpers per program costs.
    assert min(took) < 1.0, f"status of 100 programs took {min(took) * 1000:.0f} ms at best"


def test_run_id_is_in_every_process_environment(superd_factory, tmp_path, mode):
    d = superd_factory(forker_program(tmp_path), daemon=setting(mode))
    leader = d.wait_state("forker", "running")["pid"]
    daemon = daemon_pid(tmp_path)
    token = tracking.run_token(leader)
    assert token is not None and token.startswith(f"{d.pid}.") and token.endswith(".forker")
    assert tracking.run_token(daemon) == token
    assert psutil.Process(daemon).environ()[tracking.RUN_ID] == token
