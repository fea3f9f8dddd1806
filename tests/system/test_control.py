"""The control plane end to end: a real superd, its real socket, real superctl processes.

Every superctl command of SPEC.md with its output and exit code, checked
against what really happened to the programs (pids looked up with psutil).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.conftest import IGNORE_TERM, PYTHON, pid_alive, script, wait_until

pytestmark = pytest.mark.timeout(60)

# Writes a line to a file for every SIGUSR1 it gets; says when it is ready.
COUNT_USR1 = """
import os, signal, sys, time
out = sys.argv[1]
def on_usr1(sig, frame):
    with open(out, "a") as f:
        f.write("usr1\\n")
signal.signal(signal.SIGUSR1, on_usr1)
open(out + ".ready", "w").close()
while True:
    time.sleep(1)
"""

SLEEPER = """
import sys, time
time.sleep(1000)
"""


def ctl(d, *args: str, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real superctl against ``d``'s socket."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("SUPERD_SOCKET", "SUPERD_CONFIG")}
    full_env.update(env or {})
    return subprocess.run(
        [PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL,
    )


def live_pids_of(d, command_part: str) -> list[int]:
    """Live (not zombie) processes of the superd ``d`` whose command line
    contains ``command_part`` (a script in the test's own tmp_path). Only
    superd's descendants are looked at, never the rest of the machine: every
    instance superd spawns is its child until it is reaped, and superd is the
    subreaper of what they leave behind."""
    try:
        descendants = psutil.Process(d.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for proc in descendants:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(command_part in arg for arg in proc.cmdline()):
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def superd(graceful_superd):
    return graceful_superd


def stubborn(superd, tmp_path, stopwaitsecs: float):
    """superd with one program, "stubborn", that ignores SIGTERM (ready to be stopped)."""
    ignorer = script(tmp_path, "ignore_term.py", IGNORE_TERM)
    d = superd(f"""
        [program.stubborn]
        command = ["{ignorer}", "{tmp_path}/ready"]
        startsecs = 0
        stopwaitsecs = {stopwaitsecs}
    """)
    wait_until(lambda: (tmp_path / "ready").exists(), what="the program to ignore TERM")
    return d


@pytest.fixture
def basic(superd, tmp_path):
    """sleeper and web_0..2 running, idle stopped, broken and missing startable."""
    sleeper = script(tmp_path, "sleeper.py", SLEEPER)
    d = superd(f"""
        [program.sleeper]
        command = ["{sleeper}", "sleeper"]
        startsecs = 0.2
        stopwaitsecs = 5

        [program.web]
        command = ["{sleeper}", "web"]
        numprocs = 3
        startsecs = 0.1

        [program.idle]
        command = ["{sleeper}", "idle"]
        autostart = false
        startsecs = 0.1

        [program.broken]
        command = ["{PYTHON}", "-c", "import sys; sys.exit(3)"]
        autostart = false
        startsecs = 1
        startretries = 0

        [program.missing]
        command = ["{tmp_path}/no-such-program"]
        autostart = false
        startretries = 0
    """)
    for name in ("sleeper", "web_0", "web_1", "web_2"):
        d.wait_state(name, "running")
    return d


# --------------------------------------------------------------------------
# status


def test_status_prints_aligned_columns_and_exits_3_when_something_is_not_running(basic):
    r = ctl(basic, "status")
    assert r.returncode == 3, r
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["broken", "idle", "missing", "sleeper", "web_0", "web_1", "web_2"]
    info = basic.status()
    states = {line.split()[0]: line.split()[1] for line in lines}
    assert states == {name: p["state"].upper() for name, p in info.items()}
    # Aligned: every state starts at one column, every description at one column.
    assert len({line.index(line.split()[1], len(line.split()[0])) for line in lines}) == 1
    desc_cols = {re.search(r"^\S+\s+\S+\s+", line).end() for line in lines}
    assert len(desc_cols) == 1
    for name in ("sleeper", "web_0", "web_1", "web_2"):
        line = next(line for line in lines if line.startswith(name + " "))
        assert re.search(rf"RUNNING\s+pid {info[name]['pid']}, uptime \d+:\d\d:\d\d$", line), line
    assert "not started" in next(line for line in lines if line.startswith("idle "))
    assert r.stderr == ""


def test_status_of_running_names_exits_0_and_of_stopped_ones_3(basic):
    r = ctl(basic, "status", "sleeper", "web_1")
    assert r.returncode == 0, r
    assert [line.split()[:2] for line in r.stdout.splitlines()] == [["sleeper", "RUNNING"], ["web_1", "RUNNING"]]
    r = ctl(basic, "status", "web:*")
    assert (r.returncode, [line.split()[0] for line in r.stdout.splitlines()]) == (0, ["web_0", "web_1", "web_2"])
    r = ctl(basic, "status", "web")
    assert (r.returncode, [line.split()[0] for line in r.stdout.splitlines()]) == (0, ["web_0", "web_1", "web_2"])
    r = ctl(basic, "status", "sleeper", "idle")
    assert r.returncode == 3
    assert [line.split()[:2] for line in r.stdout.splitlines()] == [["sleeper", "RUNNING"], ["idle", "STOPPED"]]


def test_status_json_fields(basic):
    before = time.time()
    r = ctl(basic, "status", "--json")
    assert r.returncode == 3, r
    procs = {p["name"]: p for p in json.loads(r.stdout)}
    assert set(procs) == {"sleeper", "web_0", "web_1", "web_2", "idle", "broken", "missing"}
    for p in procs.values():
        assert {"name", "group", "state", "pid", "exitstatus", "since", "restarts", "description"} <= set(p)
        assert isinstance(p["since"], (int, float)) and before - 60 < p["since"] <= time.time()
        assert p["restarts"] == 0
        assert isinstance(p["description"], str) and p["description"]
    assert procs["web_1"]["group"] == "web" and procs["sleeper"]["group"] == "sleeper"
    assert procs["sleeper"]["state"] == "running"
    sleeper = psutil.Process(procs["sleeper"]["pid"])
    assert sleeper.ppid() == basic.pid and sleeper.cmdline()[-1] == "sleeper"
    assert procs["idle"]["state"] == "stopped" and procs["idle"]["pid"] is None
    assert procs["idle"]["exitstatus"] is None
    # The exit status after a kill by signal N is -N.
    assert ctl(basic, "signal", "KILL", "web_2").returncode == 0
    wait_until(lambda: basic.status("web_2")["web_2"]["restarts"] == 1, what="web_2 to be restarted")
    r = ctl(basic, "status", "--json", "web_2")
    [web2] = json.loads(r.stdout)
    assert web2["exitstatus"] == -9 and web2["restarts"] == 1


def test_status_fields_give_those_members_only(basic):
    from supervisor.cli.render import STATUS_FIELDS
    from supervisor.client import InvalidParams

    whole = basic.status()
    with basic.client() as client:
        some = client.call("status", fields=["state", "name", "pids", "no_such_member"])
        assert {p["name"]: p for p in some} == {
            name: {k: p[k] for k in ("name", "state", "pids") if k in p} for name, p in whole.items()}
        assert all(list(p)[:2] == ["name", "state"] for p in some)  # the usual order
        printed = client.call("status", names=["sleeper", "idle"], fields=list(STATUS_FIELDS))
        assert [list(p) for p in printed] == [list(STATUS_FIELDS)] * 2
        assert re.fullmatch(rf"pid {whole['sleeper']['pid']}, uptime \d+:\d\d:\d\d", printed[0]["description"])
        assert printed[1]["description"] == whole["idle"]["description"]
        assert client.status("sleeper", fields=["state", "pid"]) == [
            {"state": "running", "pid": whole["sleeper"]["pid"]}]
        for bad in ("state", [1], {"state": True}):
            with pytest.raises(InvalidParams, match="'fields' must be a list of strings"):
                client.call("status", fields=bad)


def test_unknown_name_exits_4_everywhere(basic):
    for args in (["status", "nope"], ["start", "nope"], ["stop", "nope"], ["restart", "nope"],
                 ["signal", "HUP", "nope"], ["pid", "nope"], ["wait", "nope"], ["status", "sleeper", "nope"],
                 ["stop", "nope:*"]):
        r = ctl(basic, *args)
        assert r.returncode == 4, (args, r)
        assert "no such process: nope" in r.stderr
    # Nothing was touched by the refused calls.
    assert basic.state_of("sleeper") == "running"


def test_no_daemon_exits_7(tmp_path):
    class Nowhere:
        socket = tmp_path / "none.sock"

    for args in (["status"], ["state"], ["start", "x"], ["stop", "x"], ["pid"], ["shutdown"], ["version"],
                 ["wait", "x"]):
        r = ctl(Nowhere, *args)
        assert r.returncode == 7, (args, r)
        assert "cannot reach superd" in r.stderr
    # A socket file that nobody listens on (a dead superd's) is no different.
    import socket as socketlib
    s = socketlib.socket(socketlib.AF_UNIX)
    s.bind(str(Nowhere.socket))
    s.close()
    assert ctl(Nowhere, "status").returncode == 7


def test_usage_errors_exit_2(basic):
    assert ctl(basic, "stop").returncode == 2
    assert ctl(basic, "signal", "BOGUS", "sleeper").returncode == 2
    assert ctl(basic, "wait", "--state", "sleeping", "sleeper").returncode == 2
    assert ctl(basic, "frobnicate").returncode == 2


# --------------------------------------------------------------------------
# start, stop, restart


def test_start_blocks_until_running(superd, tmp_path):
    sleeper = script(tmp_path, "sleeper.py", SLEEPER)
    d = superd(f"""
        [program.slow]
        command = ["{sleeper}"]
        autostart = false
        startsecs = 1
    """)
    began = time.monotonic()
    r = ctl(d, "start", "slow")
    took = time.monotonic() - began
    assert (r.returncode, r.stdout) == (0, "slow: started\n"), r
    assert took >= 0.95, took
    info = d.status("slow")["slow"]
    assert info["state"] == "running" and pid_alive(info["pid"])
    r = ctl(d, "start", "slow")
    assert (r.returncode, r.stdout) == (0, "slow: already running\n")
    assert d.status("slow")["slow"]["pid"] == info["pid"]


def test_start_waits_for_a_start_already_under_way(superd, tmp_path):
    sleeper = script(tmp_path, "sleeper.py", SLEEPER)
    d = superd(f"""
        [program.slow]
        command = ["{sleeper}"]
        autostart = false
        startsecs = 1.5
    """)
    r = ctl(d, "start", "--no-wait", "slow")
    assert (r.returncode, r.stdout) == (0, "slow: starting\n")
    assert d.state_of("slow") == "starting"
    r = ctl(d, "start", "slow")
    assert (r.returncode, r.stdout) == (0, "slow: started\n")
    assert d.state_of("slow") == "running"


def test_failing_start_exits_1_with_the_reason(basic):
    r = ctl(basic, "start", "broken")
    assert r.returncode == 1, r
    assert r.stdout.startswith("broken: ERROR (")
    assert "exited with code 3" in r.stdout
    assert basic.state_of("broken") == "fatal"
    r = ctl(basic, "start", "missing")
    assert r.returncode == 1, r
    assert "missing: ERROR (" in r.stdout and "no-such-program" in r.stdout
    # One failure among successes still fails the command, and says which.
    r = ctl(basic, "start", "idle", "broken")
    assert r.returncode == 1
    assert "idle: started" in r.stdout and "broken: ERROR" in r.stdout
    assert basic.state_of("idle") == "running"


def test_stop_returns_when_the_old_pid_is_gone(superd, tmp_path):
    d = stubborn(superd, tmp_path, stopwaitsecs=1)
    pid = d.status("stubborn")["stubborn"]["pid"]
    began = time.monotonic()
    r = ctl(d, "stop", "stubborn")
    took = time.monotonic() - began
    assert (r.returncode, r.stdout) == (0, "stubborn: stopped\n"), r
    assert not psutil.pid_exists(pid) or not pid_alive(pid)
    assert took >= 0.95, took  # it had to wait for stopwaitsecs, then SIGKILL
    info = d.status("stubborn")["stubborn"]
    assert (info["state"], info["pid"], info["exitstatus"]) == ("stopped", None, -9)
    r = ctl(d, "stop", "stubborn")
    assert (r.returncode, r.stdout) == (0, "stubborn: not running\n")


def test_stop_no_wait_returns_at_once(superd, tmp_path):
    d = stubborn(superd, tmp_path, stopwaitsecs=1.5)
    pid = d.status("stubborn")["stubborn"]["pid"]
    r = ctl(d, "stop", "--no-wait", "stubborn")
    assert (r.returncode, r.stdout) == (0, "stubborn: stopping\n")
    assert d.state_of("stubborn") == "stopping" and pid_alive(pid)
    # --timeout: superd answers at the timeout with the process still stopping.
    r = ctl(d, "stop", "--timeout", "0.3", "stubborn")
    assert r.returncode == 1 and "still stopping" in r.stdout
    r = ctl(d, "stop", "stubborn")
    assert r.returncode == 0 and not pid_alive(pid)


def test_restart_changes_the_pid(basic):
    before = {name: p["pid"] for name, p in basic.status().items() if p["pid"]}
    r = ctl(basic, "restart", "web_1")
    assert (r.returncode, r.stdout) == (0, "web_1: started\n"), r
    after = {name: p["pid"] for name, p in basic.status().items() if p["pid"]}
    assert after["web_1"] != before["web_1"] and pid_alive(after["web_1"])
    assert not pid_alive(before["web_1"])
    assert {k: v for k, v in after.items() if k != "web_1"} == {k: v for k, v in before.items() if k != "web_1"}
    r = ctl(basic, "restart", "web:*")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["web_0: started", "web_1: started", "web_2: started"]
    again = {name: p["pid"] for name, p in basic.status().items() if p["pid"]}
    for name in ("web_0", "web_1", "web_2"):
        assert again[name] != after[name] and pid_alive(again[name]) and not pid_alive(after[name])
    assert again["sleeper"] == before["sleeper"]
    # A stopped program is simply started.
    r = ctl(basic, "restart", "idle")
    assert r.returncode == 0 and basic.state_of("idle") == "running"


def test_group_and_all_names(basic):
    pids = [p["pid"] for p in basic.status("web").values()]
    r = ctl(basic, "stop", "web:*")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["web_0: stopped", "web_1: stopped", "web_2: stopped"]
    assert not any(pid_alive(pid) for pid in pids)
    assert basic.state_of("sleeper") == "running"
    r = ctl(basic, "start", "web")
    assert r.returncode == 0 and all(p["state"] == "running" for p in basic.status("web").values())
    every = [p["pid"] for p in basic.status().values() if p["pid"]]
    r = ctl(basic, "stop", "all")
    assert r.returncode == 0, r
    assert not any(pid_alive(pid) for pid in every)
    assert {p["state"] for p in basic.status().values()} == {"stopped"}
    r = ctl(basic, "status", "all")
    assert r.returncode == 3 and len(r.stdout.splitlines()) == 7


# --------------------------------------------------------------------------
# signal, pid, state, version, wait


def test_signal_reaches_the_program(superd, tmp_path):
    counter = script(tmp_path, "count_usr1.py", COUNT_USR1)
    out = tmp_path / "usr1.out"
    d = superd(f"""
        [program.counter]
        command = ["{counter}", "{out}"]
        startsecs = 0
        [program.idle]
        command = ["{counter}", "{tmp_path}/idle.out"]
        autostart = false
    """)
    wait_until(lambda: (tmp_path / "usr1.out.ready").exists(), what="the handler to be installed")
    pid = d.status("counter")["counter"]["pid"]
    for n, sig in enumerate(("USR1", "SIGUSR1", "usr1", str(int(signal.SIGUSR1))), start=1):
        r = ctl(d, "signal", sig, "counter")
        assert (r.returncode, r.stdout) == (0, "counter: sent SIGUSR1\n"), r
        wait_until(lambda: out.exists() and out.read_text().count("usr1") == n, what=f"{n} SIGUSR1 received")
    assert d.status("counter")["counter"]["pid"] == pid  # it handled them and lives on
    r = ctl(d, "signal", "USR1", "idle")
    assert (r.returncode, r.stdout) == (1, "idle: not running\n")


def test_pid(basic):
    r = ctl(basic, "pid")
    assert (r.returncode, r.stdout) == (0, f"{basic.pid}\n")
    info = basic.status()
    r = ctl(basic, "pid", "sleeper")
    assert (r.returncode, r.stdout) == (0, f"{info['sleeper']['pid']}\n")
    r = ctl(basic, "pid", "web_1")
    assert (r.returncode, r.stdout) == (0, f"{info['web_1']['pid']}\n")
    expected = "".join(f"{info[n]['pid']}\n" for n in ("web_0", "web_1", "web_2"))
    assert ctl(basic, "pid", "web").stdout == expected
    assert ctl(basic, "pid", "web:*").stdout == expected
    r = ctl(basic, "pid", "idle")
    assert r.returncode == 1 and r.stdout == "" and "not running: idle" in r.stderr


def test_state_and_version(basic):
    r = ctl(basic, "state")
    assert (r.returncode, r.stdout) == (0, "running\n")
    r = ctl(basic, "version")
    from supervisor import __version__
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == f"superctl {__version__}"
    import platform
    python = platform.python_version()
    assert r.stdout.splitlines()[1].startswith(f"superd {__version__} (pid {basic.pid}, Python {python}")


def test_wait(superd, tmp_path):
    d = superd(f"""
        [program.sleeper]
        command = ["sleep", "1000"]
        startsecs = 0.1
        [program.oneshot]
        command = ["{PYTHON}", "-c", "import time; time.sleep(0.5)"]
        autostart = false
        startsecs = 0
        autorestart = false
    """)
    r = ctl(d, "wait", "sleeper")
    assert (r.returncode, r.stdout) == (0, "sleeper: running\n"), r
    # At the timeout: exit 3, and what is not in the state is shown.
    began = time.monotonic()
    r = ctl(d, "wait", "--state", "stopped", "--timeout", "0.5", "sleeper")
    took = time.monotonic() - began
    assert r.returncode == 3, r
    assert 0.45 <= took < 5, took
    assert "sleeper" in r.stderr and "RUNNING" in r.stderr
    r = ctl(d, "wait", "--timeout", "0.2", "all")
    assert r.returncode == 3 and "oneshot" in r.stderr
    # Waiting for a state that comes.
    assert ctl(d, "start", "--no-wait", "oneshot").returncode == 0
    r = ctl(d, "wait", "--state", "exited", "--timeout", "10", "oneshot")
    assert (r.returncode, r.stdout) == (0, "oneshot: exited\n"), r
    assert d.state_of("oneshot") == "exited"
    r = ctl(d, "stop", "--no-wait", "sleeper")
    assert r.returncode == 0
    r = ctl(d, "wait", "--state", "stopped", "sleeper", "--timeout", "10")
    assert (r.returncode, r.stdout) == (0, "sleeper: stopped\n")


# --------------------------------------------------------------------------
# shutdown


def test_shutdown_returns_when_superd_is_gone(basic):
    pids = [p["pid"] for p in basic.status().values() if p["pid"]]
    r = ctl(basic, "shutdown")
    assert r.returncode == 0, r
    assert r.stdout == f"superd (pid {basic.pid}): shut down\n"
    # Gone already: at most a zombie that only its parent (this test) can reap.
    assert not pid_alive(basic.pid)
    assert basic.proc.poll() == 0
    assert not any(pid_alive(pid) for pid in pids)
    assert not basic.socket.exists()
    assert ctl(basic, "status").returncode == 7


def test_shutdown_no_wait_and_a_second_shutdown(superd, tmp_path):
    d = stubborn(superd, tmp_path, stopwaitsecs=1.5)
    pid = d.status("stubborn")["stubborn"]["pid"]
    began = time.monotonic()
    r = ctl(d, "shutdown", "--no-wait")
    assert (r.returncode, r.stdout) == (0, f"superd (pid {d.pid}): shutting down\n"), r
    assert d.proc.poll() is None
    r = ctl(d, "state")
    assert (r.returncode, r.stdout) == (0, "shutting_down\n")
    r = ctl(d, "start", "stubborn")
    assert r.returncode == 1 and "shutting down" in r.stderr
    # A second shutdown waits too; it does not skip to SIGKILL as a second TERM would.
    r = ctl(d, "shutdown")
    took = time.monotonic() - began
    assert r.returncode == 0, r
    assert d.proc.poll() == 0
    assert not pid_alive(pid)
    assert took >= 1.4, f"the second shutdown killed the program early ({took:.2f}s)"
    assert "killing what is left" not in d.log()


def test_two_shutdowns_in_one_batch_stay_graceful(superd, tmp_path):
    import json
    import socket as socketlib

    d = stubborn(superd, tmp_path, stopwaitsecs=1)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "shutdown"} for i in (1, 2)]
    with socketlib.socket(socketlib.AF_UNIX) as sock:
        sock.connect(str(d.socket))
        sock.sendall(json.dumps(batch).encode() + b"\n")
        assert d.wait_exit(15) == 0
    assert "killing what is left" not in d.log()
    assert "stopping with SIGTERM" in d.log()


# --------------------------------------------------------------------------
# many clients


def test_fifty_concurrent_superctl_calls(basic):
    info = basic.status()
    calls = [["status", "sleeper", "web:*"], ["pid", "sleeper"], ["state"], ["status", "--json"], ["pid"]] * 10

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda args: (args, ctl(basic, *args, timeout=50)), calls))
    for args, r in results:
        if args[0] == "status" and "--json" in args:
            assert r.returncode == 3 and len(json.loads(r.stdout)) == 7, r
        elif args[0] == "status":
            assert r.returncode == 0 and len(r.stdout.splitlines()) == 4, r
        elif args == ["pid", "sleeper"]:
            assert (r.returncode, r.stdout) == (0, f"{info['sleeper']['pid']}\n"), r
        elif args == ["pid"]:
            assert (r.returncode, r.stdout) == (0, f"{basic.pid}\n"), r
        else:
            assert (r.returncode, r.stdout) == (0, "running\n"), r
    assert basic.proc.poll() is None


def test_concurrent_restarts_never_make_two_instances(superd, tmp_path):
    sleeper = script(tmp_path, "only_one.py", SLEEPER)
    d = superd(f"""
        [program.only]
        command = ["{sleeper}"]
        startsecs = 0.1
        stopwaitsecs = 5
    """)
    d.wait_state("only", "running")
    seen = {d.status("only")["only"]["pid"]}
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: ctl(d, "restart", "only"), range(4)))
        assert all(r.returncode == 0 for r in results), results
        live = live_pids_of(d, sleeper)
        info = d.status("only")["only"]
        assert live == [info["pid"]], (live, info)
        assert info["state"] == "running"
        seen.add(info["pid"])
    assert len(seen) >= 4  # each round restarted it for real


def test_restart_no_wait_goes_on_inside_superd(superd, tmp_path):
    sleeper = script(tmp_path, "only_one.py", SLEEPER)
    d = superd(f"""
        [program.only]
        command = ["{sleeper}"]
        startsecs = 0.5
    """)
    old = d.wait_state("only", "running")["pid"]
    r = ctl(d, "restart", "--no-wait", "only")
    assert (r.returncode, r.stdout) == (0, "only: restarting\n")
    info = wait_until(lambda: (i := d.status("only")["only"])["state"] == "running" and i["pid"] != old and i,
                      what="the restart to finish")
    assert not pid_alive(old)
    assert live_pids_of(d, sleeper) == [info["pid"]]


def test_socket_from_the_config_file(basic, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERD_SOCKET", "SUPERD_CONFIG")}
    r = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-c", str(tmp_path / "superd.toml"), "state"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert (r.returncode, r.stdout) == (0, "running\n"), r
    r = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "state"], capture_output=True, text=True, timeout=30,
                       env={**env, "SUPERD_SOCKET": str(basic.socket)})
    assert (r.returncode, r.stdout) == (0, "running\n"), r
    r = subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "state"], capture_output=True, text=True,
                       timeout=30, env=env, cwd=tmp_path)  # ./superd.toml
    assert (r.returncode, r.stdout) == (0, "running\n"), r


def test_client_waits_for_room_in_a_full_backlog(tmp_path):
    """A burst of clients fills superd's listen backlog; a connect then fails
    with EAGAIN at once (Unix sockets with a timeout are non-blocking). The
    client retries until its connect timeout instead of calling superd gone."""
    import socket as socketlib
    import threading

    from supervisor.client import Client, Unreachable

    path = str(tmp_path / "busy.sock")
    listener = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    fillers = []
    try:
        while True:  # fill the backlog
            s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            try:
                s.connect(path)
            except BlockingIOError:
                break
            assert len(fillers) < 100
        began = time.monotonic()
        with pytest.raises(Unreachable) as info:
            Client(path, connect_timeout=0.3).version()
        assert info.value.reason == "timed out"
        assert time.monotonic() - began >= 0.25

        def serve():  # start accepting: the waiting client gets in
            listener.settimeout(10)
            while True:
                conn, _ = listener.accept()
                data = b""
                conn.settimeout(0.2)
                try:
                    while not data.endswith(b"\n"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    conn.close()
                    continue
                if data:
                    rid = json.loads(data)["id"]
                    conn.sendall(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"version": "x"}}).encode() + b"\n")
                    conn.close()
                    return
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        client = Client(path, connect_timeout=10)
        timer = threading.Timer(0.3, thread.start)
        timer.start()
        assert client.version() == {"version": "x"}
        client.close()
        thread.join(10)
        timer.cancel()
    finally:
        for s in fillers:
            s.close()
        listener.close()
