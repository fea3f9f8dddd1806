"""Readiness, dependencies, stop sequences and rolling restarts, end to end.

Real programs that speak sd_notify, listen on TCP ports, drain job queues on
SIGTSTP; a real superd and the real superctl.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(60)


def ctl(d, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERD_SOCKET", "SUPERD_CONFIG")}
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stamp(path: Path) -> float:
    """The time a test program wrote to a file (wall clock), once it has."""
    wait_until(lambda: path.exists() and path.read_text().strip(), 5, what=f"{path.name} to be written")
    return float(path.read_text().split()[0])


# Sends STATUS, then READY=1 after DELAY seconds (the time it did so goes to argv[1]).
NOTIFY_LATE = """
import os, socket, sys, time
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=warming up", address)
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    f.write(repr(time.time()))
s.sendto(b"READY=1\\nSTATUS=serving 0 requests", address)
while True:
    time.sleep(1)
"""

# Writes the time it started to argv[1], then sleeps.
STARTED_AT = """
import sys, time
with open(sys.argv[1], "w") as f:
    f.write(repr(time.time()))
while True:
    time.sleep(1)
"""

# Listens on argv[1] after argv[2] seconds; answers nothing, just accepts.
LISTEN_LATE = """
import socket, sys, time
time.sleep(float(sys.argv[2]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    conn, _ = s.accept()
    conn.close()
"""


def test_notify_ready_gates_the_dependent_and_status_text_shows(graceful_superd, tmp_path):
    notifier = script(tmp_path, "notify", NOTIFY_LATE)
    starter = script(tmp_path, "started", STARTED_AT)
    d = graceful_superd(f"""
        [program.db]
        command = ["{notifier}", "{tmp_path / 'ready_at'}", "1"]
        ready = "notify"
        startsecs = 0
        [program.web]
        command = ["{starter}", "{tmp_path / 'web_started'}"]
        depends_on = ["db"]
        startsecs = 0
    """)
    def warming():
        info = d.status()
        return info if info["db"]["status_text"] == "warming up" else None

    info = wait_until(warming, 5)
    assert info["db"]["state"] == "starting" and info["db"]["ready"] is False
    assert info["db"]["ready_check"] == "notify"
    assert info["web"]["state"] == "starting" and info["web"]["pid"] is None
    assert info["web"]["waiting_for"] == ["db"]
    assert info["web"]["description"] == "waiting for db to be ready"
    d.wait_state("web", "running", 10)
    assert stamp(tmp_path / "web_started") >= stamp(tmp_path / "ready_at")
    db = d.status("db")["db"]
    assert db["state"] == "running" and db["ready"] is True and db["status_text"] == "serving 0 requests"
    out = ctl(d, "status", "db")
    assert "status: serving 0 requests" in out.stdout and out.returncode == 0
    # Its own socket, not superd's: under run_dir, reachable only by its user.
    sock = tmp_path / "run" / "notify" / "db"
    assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o600


def test_tcp_readiness_and_wait_for_ready(graceful_superd, tmp_path):
    port = free_port()
    listener = script(tmp_path, "listen", LISTEN_LATE)
    d = graceful_superd(f"""
        [program.api]
        command = ["{listener}", "{port}", "0.7"]
        ready = "tcp:{port}"
        startsecs = 0
    """)
    started = time.monotonic()
    early = ctl(d, "wait", "--state", "ready", "--timeout", "0", "api")
    assert early.returncode == 3, early
    out = ctl(d, "wait", "--state", "ready", "--timeout", "10", "api")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "api: running, ready"
    assert time.monotonic() - started >= 0.6
    info = d.status("api")["api"]
    assert info["ready"] is True and info["ready_check"] == f"tcp:127.0.0.1:{port}"


def test_exec_readiness_runs_until_the_command_succeeds(graceful_superd, tmp_path):
    flag = tmp_path / "flag"
    d = graceful_superd(f"""
        [program.svc]
        command = ["sleep", "1000"]
        ready = {{ exec = ["test", "-e", "{flag}"], interval = 0.1, timeout = 2 }}
        startsecs = 0
    """, daemon='log_level = "debug"')
    wait_until(lambda: d.log().count("svc: not ready yet") >= 3, 10, what="several probes to fail")
    info = d.status("svc")["svc"]
    assert info["state"] == "starting"
    assert "waiting for ready (exec test -e" in info["description"]
    flag.touch()
    d.wait_state("svc", "running", 5)
    assert d.status("svc")["svc"]["ready"] is True


def test_exec_probe_sees_the_programs_environment(graceful_superd, tmp_path):
    d = graceful_superd(f"""
        [program.svc]
        command = ["sleep", "1000"]
        environment = {{ WANT = "yes" }}
        ready = {{ exec = ["sh", "-c", "test \\"$WANT\\" = yes && test \\"$SUPERD_PROCESS_NAME\\" = svc"], interval = 0.1 }}
        startsecs = 0
    """)
    d.wait_state("svc", "running", 5)


def test_not_ready_in_time_is_a_failed_start(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.mute]
        command = ["sleep", "1000"]
        ready = "notify"
        ready_timeout = 0.5
        startretries = 1
        startsecs = 0
        stopwaitsecs = 1
    """)
    info = d.wait_state("mute", "fatal", 10)
    assert "not ready within ready_timeout=0.5s (notify); gave up after 2 attempts" in info["description"]
    assert d.call("status")[0]["restarts"] == 1


# A job worker: SIGTSTP stops it taking new jobs, SIGTERM makes it leave once
# the job in hand is done. Every event goes to argv[1] with its time.
DRAINING_WORKER = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def note(what):
    log.write(f"{time.time():.3f} {what}\\n")
taking, leaving = True, False
def on_tstp(sig, frame):
    global taking
    taking = False
    note("TSTP")
def on_term(sig, frame):
    global leaving
    leaving = True
    note("TERM")
signal.signal(signal.SIGTSTP, on_tstp)
signal.signal(signal.SIGTERM, on_term)
note("up")
job = 0
while not leaving:
    if not taking:
        time.sleep(0.05)
        continue
    job += 1
    note(f"start {job}")
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        time.sleep(0.02)
    note(f"done {job}")
note("exit")
"""


def events(path: Path) -> list[tuple[float, str]]:
    return [(float(t), what) for t, what in (line.split(" ", 1) for line in path.read_text().splitlines())]


def test_stop_sequence_drains_then_terms_and_the_job_completes(graceful_superd, tmp_path):
    worker = script(tmp_path, "worker", DRAINING_WORKER)
    record = tmp_path / "events"
    d = graceful_superd(f"""
        [program.worker]
        command = ["{worker}", "{record}", "1.5"]
        startsecs = 0
        stop_sequence = [{{ signal = "TSTP", wait = 0.6 }}, {{ signal = "TERM", wait = 5 }}]
    """)
    wait_until(lambda: record.exists() and "start 1" in record.read_text(), 5)
    asked = time.time()
    out = ctl(d, "stop", "worker")
    assert out.returncode == 0, out.stderr
    took = time.time() - asked
    seen = events(record)
    names = [what for _, what in seen]
    assert names[:2] == ["up", "start 1"]
    assert "TSTP" in names and "TERM" in names and names[-1] == "exit"
    tstp = seen[names.index("TSTP")][0]
    term = seen[names.index("TERM")][0]
    # TSTP first, TERM one step later, no new job after TSTP, every job done.
    assert 0.5 <= term - tstp <= 1.5
    started = [w for w in names if w.startswith("start")]
    assert [w.replace("start", "done") for w in started] == [w for w in names if w.startswith("done")]
    assert all(t <= tstp for t, w in seen if w.startswith("start"))
    assert took < 5.0  # over when the worker is: not at the end of the TERM step's 5 s
    assert d.state_of("worker") == "stopped"


def test_stop_command_runs_first_with_mainpid(graceful_superd, tmp_path):
    marker = tmp_path / "stopped-by-command"
    d = graceful_superd(f"""
        [program.svc]
        command = ["sleep", "1000"]
        startsecs = 0
        stop_command = ["sh", "-c", "echo $MAINPID > {marker}; kill -INT $MAINPID"]
        stopwaitsecs = 5
    """)
    pid = d.status("svc")["svc"]["pid"]
    started = time.monotonic()
    out = ctl(d, "stop", "svc")
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 4.5  # the command stopped it: no stopwaitsecs (5 s) after a TERM
    assert marker.read_text().strip() == str(pid)
    info = d.status("svc")["svc"]
    assert info["exitstatus"] == -2  # SIGINT from the command, not superd's SIGTERM
    assert "svc: running stop command sh -c" in d.log()


def test_a_stop_command_does_not_outlive_its_stop(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.svc]
        command = ["sleep", "1000"]
        startsecs = 0
        stop_command = ["sh", "-c", "kill $MAINPID; exec sleep 30"]
        stopwaitsecs = 10
    """)
    out = ctl(d, "restart", "svc")
    assert out.returncode == 0, out.stderr
    # The command's sleep ended with the stop; only the new run is left.
    import psutil

    def left() -> list:
        try:
            return [c.cmdline() for c in psutil.Process(d.pid).children(recursive=True)]
        except psutil.NoSuchProcess:  # one ended while being listed
            return []

    wait_until(lambda: left() == [["sleep", "1000"]], 5, what="only the new run to be left")


def test_shutdown_stops_dependents_before_their_dependencies(superd_factory, tmp_path):
    worker = script(tmp_path, "worker", DRAINING_WORKER)
    d = superd_factory(f"""
        [program.db]
        command = ["{worker}", "{tmp_path / 'db'}", "0.1"]
        startsecs = 0
        priority = 900
        [program.web]
        command = ["{worker}", "{tmp_path / 'web'}", "0.8"]
        startsecs = 0
        depends_on = ["db"]
        priority = 100
    """, daemon="shutdown_timeout = 10")
    d.wait_state("web", "running", 10)
    wait_until(lambda: (tmp_path / "web").exists() and "start 1" in (tmp_path / "web").read_text(), 5)
    d.signal(15)
    assert d.wait_exit(15) == 0
    web, db = events(tmp_path / "web"), events(tmp_path / "db")
    web_exit = [t for t, w in web if w == "exit"][0]
    db_term = [t for t, w in db if w == "TERM"][0]
    # Priority alone would stop db (900) first; web depends on it.
    assert db_term >= web_exit
    assert "stopping web (priority 100" in d.log()


def port_block() -> str:
    """A prefix P such that ports P0 to P9 are free now (e.g. "4711": 47110 to 47119)."""
    import random
    for _ in range(100):
        prefix = random.randrange(2000, 6000)
        socks = []
        try:
            for n in range(10):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", prefix * 10 + n))
            return str(prefix)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of 10 free ports")


def test_rolling_restart_keeps_all_but_one_ready(graceful_superd, tmp_path):
    listener = script(tmp_path, "listen", LISTEN_LATE)
    d = graceful_superd(f"""
        [program.web]
        command = ["{listener}", "${{PORTS}}${{SUPERD_PROCESS_NUM}}", "0.3"]
        numprocs = 4
        startsecs = 0
        ready = "tcp:${{PORTS}}${{SUPERD_PROCESS_NUM}}"
    """, env={"PORTS": port_block()})
    names = [f"web_{n}" for n in range(4)]
    out = ctl(d, "wait", "--state", "ready", "--timeout", "15", "web")
    assert out.returncode == 0, out.stderr
    before = {n: d.status(n)[n]["pid"] for n in names}

    counts: list[int] = []
    stop = threading.Event()

    def checker() -> None:
        with d.client() as client:
            while not stop.is_set():
                counts.append(sum(1 for p in client.status(["web"]) if p["ready"]))
                time.sleep(0.05)  # a sample every 50 ms while the restart runs, not a synchronisation

    thread = threading.Thread(target=checker)
    thread.start()
    try:
        out = ctl(d, "restart", "--rolling", "web", timeout=40)
    finally:
        stop.set()
        thread.join(10)
    assert out.returncode == 0, out.stdout + out.stderr
    after = {n: d.status(n)[n]["pid"] for n in names}
    assert all(after[n] != before[n] for n in names), (before, after)
    assert len(counts) > 10
    assert min(counts) == 3, counts
    assert all(p["ready"] for p in d.status().values())


def test_a_rolling_restart_stops_at_the_first_instance_that_fails(graceful_superd, tmp_path):
    flag = tmp_path / "break"
    d = graceful_superd(f"""
        [program.pool]
        command = ["sh", "-c", "if [ -e {flag} ] && [ $SUPERD_PROCESS_NUM = 1 ]; then exit 1; fi; exec sleep 1000"]
        numprocs = 3
        startsecs = 0.3
        startretries = 0
    """)
    out = ctl(d, "wait", "--state", "ready", "--timeout", "10", "pool")
    assert out.returncode == 0, out.stderr
    before = {p["name"]: p["pid"] for p in d.call("status")}
    flag.touch()
    out = ctl(d, "restart", "--rolling", "pool")
    assert out.returncode == 1
    assert "pool_2: not restarted: the rolling restart stopped at pool_1" in out.stdout
    after = {p["name"]: p for p in d.call("status")}
    assert after["pool_0"]["pid"] != before["pool_0"] and after["pool_0"]["state"] == "running"
    assert after["pool_1"]["state"] == "fatal"
    assert after["pool_2"]["pid"] == before["pool_2"]  # untouched


def test_dependency_cycle_is_refused_by_check(tmp_path):
    config = tmp_path / "superd.toml"
    config.write_text("""
[program.a]
command = "true"
depends_on = ["b"]
[program.b]
command = "true"
depends_on = ["a"]
""")
    out = subprocess.run([PYTHON, "-m", "supervisor", "--check", "-c", str(config)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert f"{config}: program.a.depends_on: dependency cycle: a -> b -> a" in out.stderr + out.stdout


def test_a_oneshot_job_completes_before_its_dependent_starts(graceful_superd, tmp_path):
    starter = script(tmp_path, "started", STARTED_AT)
    d = graceful_superd(f"""
        [program.migrate]
        command = ["sh", "-c", "sleep 0.5; date +%s.%N > {tmp_path / 'migrated'}"]
        startsecs = 0
        autorestart = false
        [program.web]
        command = ["{starter}", "{tmp_path / 'web_started'}"]
        startsecs = 0
        depends_on = {{ migrate = "completed" }}
    """)
    d.wait_state("web", "running", 10)
    assert stamp(tmp_path / "web_started") >= stamp(tmp_path / "migrated")
    assert d.state_of("migrate") == "exited"


def test_status_json_has_the_readiness_fields(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.plain]
        command = ["sleep", "1000"]
        startsecs = 0
    """)
    out = ctl(d, "status", "--json")
    (info,) = json.loads(out.stdout)
    assert info["ready"] is True and info["ready_check"] is None
    assert info["status_text"] is None and info["waiting_for"] == []


def test_a_probe_that_cannot_run_keeps_trying_and_superd_keeps_going(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.svc]
        command = ["sleep", "1000"]
        ready = { exec = "/no/such/probe", interval = 0.1 }
        ready_timeout = 0.6
        startretries = 0
        startsecs = 0
        [program.other]
        command = ["sleep", "1000"]
        startsecs = 0
    """, daemon='log_level = "debug"')
    info = d.wait_state("svc", "fatal", 10)
    assert "not ready within ready_timeout=0.6s" in info["description"]
    assert "cannot run exec /no/such/probe" in d.log()
    assert d.state_of("other") == "running"
    assert d.call("state")["state"] == "running"


def test_notify_messages_from_strangers_are_ignored(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.svc]
        command = ["sleep", "1000"]
        ready = "notify"
        startsecs = 0
    """)
    sock = tmp_path / "run" / "notify" / "svc"
    wait_until(sock.exists, 5)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:  # root, but not the program
        s.sendto(b"READY=1\nSTATUS=forged", str(sock))
    wait_until(lambda: "not the program's" in d.log(), 5)
    info = d.status("svc")["svc"]
    assert info["state"] == "starting" and info["status_text"] is None


def test_a_descendant_of_the_program_may_notify(graceful_superd, tmp_path):
    # The shell forks python (no exec): the message comes from a child of the program.
    d = graceful_superd(f"""
        [program.svc]
        command = ["sh", "-c", "{PYTHON} -c 'import os, socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\\"READY=1\\", os.environ[\\"NOTIFY_SOCKET\\"])'; sleep 1000"]
        ready = "notify"
        startsecs = 0
    """)
    d.wait_state("svc", "running", 10)


def test_stopping_a_dependency_by_hand_does_not_restart_it(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.db]
        command = ["sleep", "1000"]
        ready = "notify"
        startsecs = 0
        [program.web]
        command = ["sleep", "1000"]
        startsecs = 0
        depends_on = ["db"]
    """)
    d.wait_state("db", "starting", 5)
    out = ctl(d, "stop", "db", "--timeout", "5")
    assert out.returncode == 0, out.stdout + out.stderr
    info = d.status()
    assert info["db"]["state"] == "stopped"
    assert info["web"]["state"] == "starting" and info["web"]["waiting_for"] == ["db"]


def test_a_sender_that_is_gone_before_superd_reads_still_counts(graceful_superd, tmp_path):
    # systemd-notify style: a short-lived helper sends READY=1 and exits at once.
    sender = script(tmp_path, "sender", """
        import os, socket
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    """)
    d = graceful_superd(f"""
        [program.svc]
        command = ["sh", "-c", "{sender}; exec sleep 1000"]
        ready = "notify"
        numprocs = 10
        startsecs = 0
        ready_timeout = 20
    """)
    out = ctl(d, "wait", "--state", "ready", "--timeout", "20", "svc")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not the program's" not in d.log()


def test_a_reload_that_mends_a_dependency_lets_its_dependent_start(graceful_superd, tmp_path):
    config = """
        [program.db]
        command = {db}
        autostart = false
        startsecs = 0.3
        startretries = 100
        [program.web]
        command = ["sleep", "1000"]
        startsecs = 0
        depends_on = ["db"]
    """
    d = graceful_superd(config.format(db='["false"]'))
    wait_until(lambda: d.state_of("db") == "backoff", 10)
    assert d.state_of("web") == "starting"
    (tmp_path / "superd.toml").write_text((tmp_path / "superd.toml").read_text().replace('["false"]', '["sleep", "1000"]'))
    out = ctl(d, "reload")
    assert out.returncode == 0, out.stdout + out.stderr
    d.wait_state("web", "running", 10)
    assert d.state_of("db") == "running"
