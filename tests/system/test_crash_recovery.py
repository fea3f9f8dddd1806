"""Nothing duplicates: after a SIGKILL of superd, the next superd with the same
run_dir stops what the killed one left running before it starts anything.

The processes of a SIGKILLed superd are no longer anybody's descendants the
fixtures know of: each test keeps psutil handles of them (a handle refuses to
signal a pid that now names another process) and kills them in a finally.

The tests that take ``mode`` run here in the fallback tracking mode, and again
with cgroups in tests/privileged/test_cgroup_tracking.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import PYTHON, pid_alive, script, wait_until
from tests.system.conftest import setting
from tests.system.test_process_tracking import FORKER
from supervisor.daemon import runstate, tracking

pytestmark = pytest.mark.timeout(60)

WORKER = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(1)
"""


def five_programs(tmp_path: Path) -> tuple[str, list[str]]:
    """Five programs, one of them with numprocs = 2 and one with an escaped daemon."""
    worker = script(tmp_path, "worker.py", WORKER)
    forker = script(tmp_path, "forker.py", FORKER)
    config = ""
    for name in ("alpha", "beta", "gamma"):
        config += f'[program.{name}]\ncommand = ["{worker}", "{name}"]\nstartsecs = 0\nstopwaitsecs = 2\n'
    config += f'[program.pool]\ncommand = ["{worker}", "pool_${{SUPERD_PROCESS_NUM}}"]\nnumprocs = 2\nstartsecs = 0\nstopwaitsecs = 2\n'
    config += (f'[program.forker]\ncommand = ["{forker}", "{tmp_path / "forker.pid"}"]\n'
               "startsecs = 0\nstopwaitsecs = 2\n")
    return config, ["alpha", "beta", "gamma", "pool_0", "pool_1"]


def marked(tmp_path: Path) -> dict[str, list[psutil.Process]]:
    """Live processes of this test by marker: worker argv[1], or "forker"/"daemon"."""
    found: dict[str, list[psutil.Process]] = {}
    worker, forker = str(tmp_path / "prog_worker.py"), str(tmp_path / "prog_forker.py")
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if worker in cmdline:
            found.setdefault(cmdline[-1], []).append(proc)
        elif forker in cmdline:
            # the daemon leads no group of its own, but is in a session of its own
            try:
                key = "daemon" if os.getsid(proc.pid) == os.getpgid(proc.pid) != proc.pid else "forker"
            except ProcessLookupError:
                continue
            found.setdefault(key, []).append(proc)
    return found


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()  # psutil checks the start time: a reused pid is not touched
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def test_after_a_sigkill_the_next_superd_runs_exactly_one_of_each(superd_factory, tmp_path, mode):
    config, workers = five_programs(tmp_path)
    names = workers + ["forker", "daemon"]
    first = superd_factory(config, daemon=setting(mode))
    wait_until(lambda: set(marked(tmp_path)) == set(names), 15, what="every program and the daemon")
    old = [p for procs in marked(tmp_path).values() for p in procs]
    old_ids = {(p.pid, p.create_time()) for p in old}
    state = runstate.RunDir(str(tmp_path / "run")).read()  # the snapshot and the journal
    assert {e["name"] for e in state["processes"]} == set(workers) | {"forker"}
    try:
        first.proc.kill()  # SIGKILL: its programs keep running, orphans now
        first.proc.wait(10)
        assert all(p.is_running() for p in old)
        second = superd_factory(config, daemon=setting(mode))
        assert "recovery: the previous superd" in second.log()

        def old_gone() -> bool:
            return not any(pid_alive(p.pid) and p.is_running() for p in old)

        wait_until(old_gone, 10, what="the killed superd's processes to be gone")
        def counts() -> dict[str, int]:
            return {name: len(procs) for name, procs in marked(tmp_path).items()}

        wait_until(lambda: counts() == {name: 1 for name in names}, 15, what=f"one of each to run: {counts()}")
        now = marked(tmp_path)
        assert not {(p.pid, p.create_time()) for procs in now.values() for p in procs} & old_ids
        if mode == "cgroup":
            assert not os.path.exists(state["cgroup_root"]), "the old superd's cgroup is still there"
        running = second.status()
        assert all(info["state"] == "running" for info in running.values())
    finally:
        kill_all(old)


def test_a_recorded_pid_now_used_by_an_unrelated_process_is_left_alone(superd_factory, tmp_path):
    stranger = subprocess.Popen(["sleep", "1000"])
    try:
        wait_until(lambda: tracking.start_time(stranger.pid) is not None, 5)
        start = tracking.start_time(stranger.pid)
        run = tmp_path / "run"
        run.mkdir()
        (run / "superd.state").write_text(json.dumps({
            "version": 1, "superd": {"pid": 999999, "start": 1}, "mode": "tree", "cgroup_root": None,
            "processes": [{"name": "web", "pid": stranger.pid, "start": start - 1, "pgid": stranger.pid,
                           "cgroup": None, "token": "999999.1.web"}],
        }))
        d = superd_factory('[program.web]\ncommand = "sleep 1000"\nstartsecs = 0\n')
        assert stranger.poll() is None and pid_alive(stranger.pid)
        assert f"pid {stranger.pid} recorded for web now belongs to another process" in d.log()
        assert d.state_of("web") == "running"
        time.sleep(0.2)  # the point: a quiet while after the recovery, and the stranger still lives
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_second_superd_with_the_same_run_dir_is_refused(superd_factory, tmp_path):
    first = superd_factory('[program.a]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    other = tmp_path / "other.toml"
    other.write_text(f'[superd]\nsocket = "{tmp_path / "other.sock"}"\nrun_dir = "{tmp_path / "run"}"\n'
                     f'logs_dir = "{tmp_path / "logs"}"\n[program.b]\ncommand = "sleep 1000"\n')
    second = subprocess.run([PYTHON, "-m", "supervisor", "-c", str(other)],
                            capture_output=True, text=True, timeout=20)
    assert second.returncode == 1
    assert f"another superd (pid {first.pid}) is running with run_dir {tmp_path / 'run'}" in second.stderr
    assert not (tmp_path / "other.sock").exists()
    assert first.state_of("a") == "running"


def test_the_state_file_names_each_running_process(superd_factory, tmp_path):
    d = superd_factory('[program.a]\ncommand = "sleep 1000"\nstartsecs = 0\nnumprocs = 2\n'
                       '[program.b]\ncommand = "sleep 1000"\nstartsecs = 0\nautostart = false\n')
    state = runstate.RunDir(str(tmp_path / "run")).read()  # the snapshot and the journal
    assert state["superd"]["pid"] == d.pid
    status = d.status()
    entries = {e["name"]: e for e in state["processes"]}
    assert set(entries) == {"a_0", "a_1"}
    for name, entry in entries.items():
        assert entry["pid"] == entry["pgid"] == status[name]["pid"]
        assert entry["start"] == tracking.start_time(entry["pid"])
        assert entry["token"].startswith(f"{d.pid}.") and entry["token"].endswith(f".{name}")
    d.call("start", names=["b"])
    wait_until(lambda: "b" in {e["name"] for e in runstate.RunDir(str(tmp_path / "run")).read()["processes"]}, 5)
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_the_recorded_start_times_are_those_of_proc(superd_factory, tmp_path):
    """superd records a spawn's start time from the clock around the fork when
    the fork fell within one clock tick, and reads /proc otherwise: either
    way the state file holds what /proc/PID/stat says (crash recovery
    compares the two to tell a leftover from a reused pid)."""
    d = superd_factory('[program.many]\ncommand = "sleep 1000"\nstartsecs = 0\nnumprocs = 60\n')
    wait_until(lambda: len(runstate.RunDir(str(tmp_path / "run")).read()["processes"]) == 60, 10)
    entries = runstate.RunDir(str(tmp_path / "run")).read()["processes"]
    assert {e["name"] for e in entries} == {f"many_{i}" for i in range(60)}
    for entry in entries:
        assert entry["start"] == tracking.start_time(entry["pid"]), entry


def test_a_state_file_from_an_earlier_boot_is_not_acted_on(superd_factory, tmp_path):
    # Even an exact pid + start-time match means nothing across a reboot.
    stranger = subprocess.Popen(["sleep", "1000"])
    try:
        start = wait_until(lambda: tracking.start_time(stranger.pid), 5)
        run = tmp_path / "run"
        run.mkdir()
        (run / "superd.state").write_text(json.dumps({
            "version": 1, "superd": {"pid": 999999, "start": 1, "boot": "00000000-0000-0000-0000-000000000000"},
            "mode": "tree", "cgroup_root": None,
            "processes": [{"name": "web", "pid": stranger.pid, "start": start, "pgid": stranger.pid,
                           "cgroup": None, "token": "999999.1.web"}],
        }))
        d = superd_factory('[program.web]\ncommand = "sleep 1000"\nstartsecs = 0\n')
        assert "from an earlier boot" in d.log()
        assert stranger.poll() is None and pid_alive(stranger.pid)
        assert json.loads((run / "superd.state").read_text())["superd"]["boot"] == runstate.boot_id()
    finally:
        stranger.kill()
        stranger.wait()
