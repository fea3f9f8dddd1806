"""Restart policy, alive checks, the watchdog, memory_restart, rlimits and env files,
end to end: a real superd and real programs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from ..conftest import script, wait_until

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def starts(path) -> list[float]:
    return [float(x) for x in path.read_text().split()] if path.exists() else []


def test_a_quick_crasher_restarts_at_once_then_backs_off(graceful_superd, tmp_path):
    marks = tmp_path / "marks"
    prog = script(tmp_path, "blip.py", f"""
        import time
        with open({str(marks)!r}, "a") as f:
            f.write(f"{{time.monotonic()}}\\n")
        time.sleep(0.2)
        raise SystemExit(1)
        """)
    d = graceful_superd(f'[program.blip]\ncommand = ["{prog}"]\nstartsecs = 0\nautorestart = true\n'
                        'stdout = "null"\nstderr = "null"\n')
    wait_until(lambda: d.state_of("blip") == "backoff", 20, what="the crash loop")
    info = d.status("blip")["blip"]
    assert "crash loop: restarting in" in info["description"], info
    # The first start and restart_burst = 5 restarts straight from exited to
    # starting, then the crash loop's first wait.
    transitions = [line.split("blip: ", 1)[1].split(":")[0] for line in d.log().splitlines()
                   if "blip: exited -> " in line]
    assert transitions[:6] == ["exited -> starting"] * 5 + ["exited -> backoff"], transitions
    times = starts(marks)
    assert len(times) >= 6, times
    gaps = [b - a - 0.2 for a, b in zip(times, times[1:6])]
    # Each restart of the burst follows the exit at once (a Python start-up
    # is most of the gap): generous, for a loaded machine.
    assert max(gaps) < 2, gaps
    text = subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "status"],
                          capture_output=True, text=True, timeout=20).stdout
    assert "crash loop: restarting in" in text


HTTP_SERVER = """
    import http.server, os, sys
    port, flag, runs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if os.path.exists(flag):
        os.unlink(flag)
    with open(runs, "a") as f:
        f.write(f"{os.getpid()}\\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500 if os.path.exists(flag) else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """


def test_an_http_server_whose_health_fails_is_restarted_and_healthy_again(graceful_superd, tmp_path):
    port, flag, runs = free_port(), tmp_path / "sick", tmp_path / "runs"
    prog = script(tmp_path, "web.py", HTTP_SERVER)
    d = graceful_superd(f"""
        [program.web]
        command = ["{prog}", "{port}", "{flag}", "{runs}"]
        startsecs = 0
        ready = "http://127.0.0.1:{port}/ready"
        alive = {{ http = "http://127.0.0.1:{port}/health", interval = 0.2, failures = 2 }}
        """)
    wait_until(lambda: d.status("web")["web"]["health"] == "healthy", 20, what="healthy")
    first = d.status("web")["web"]
    assert first["state"] == "running" and first["ready"]
    flag.touch()
    wait_until(lambda: len(runs.read_text().split()) == 2, 20, what="a restart")
    wait_until(lambda: d.status("web")["web"]["health"] == "healthy", 20, what="healthy again")
    again = d.status("web")["web"]
    assert again["pid"] != first["pid"] and again["restarts"] == 1
    log = d.log()
    assert "alive check failed" in log and "answered 500" in log
    assert "unhealthy: 2 failed checks in a row" in log


def test_a_tcp_listener_that_closes_without_exiting_is_restarted(graceful_superd, tmp_path):
    port, flag, runs = free_port(), tmp_path / "close", tmp_path / "runs"
    prog = script(tmp_path, "listener.py", f"""
        import os, socket, time
        with open({str(runs)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port}))
        s.listen()
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        os.unlink({str(flag)!r})
        s.close()
        while True:
            time.sleep(1)
        """)
    d = graceful_superd(f"""
        [program.lsn]
        command = ["{prog}"]
        startsecs = 0
        ready = "tcp:{port}"
        alive = {{ tcp = {port}, interval = 0.2, failures = 2 }}
        """)
    wait_until(lambda: d.status("lsn")["lsn"]["health"] == "healthy", 20)
    pid = d.status("lsn")["lsn"]["pid"]
    flag.touch()
    wait_until(lambda: len(runs.read_text().split()) == 2, 20, what="a restart")
    assert d.status("lsn")["lsn"]["pid"] != pid


NOTIFIER = """
    import os, socket, sys, time
    pings, log = int(sys.argv[1]), sys.argv[2]
    with open(log, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "usec": os.environ.get("WATCHDOG_USEC"),
                            "wpid": os.environ.get("WATCHDOG_PID")}) + "\\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(os.environ["NOTIFY_SOCKET"])
    s.send(b"READY=1")
    n = 0
    while True:
        if n < pings:
            s.send(b"WATCHDOG=1")
            with open(log + ".pings", "a") as f:
                f.write("1")
        n += 1
        time.sleep(0.2)
    """


def test_the_watchdog_restarts_a_silent_program_and_leaves_a_pinging_one(graceful_superd, tmp_path):
    prog = script(tmp_path, "notifier.py", "import json\n" + NOTIFIER.replace("\n    ", "\n"))
    good, bad = tmp_path / "good", tmp_path / "bad"
    d = graceful_superd(f"""
        [program.good]
        command = ["{prog}", "1000000", "{good}"]
        ready = "notify"
        watchdog = 3
        startsecs = 0
        [program.bad]
        command = ["{prog}", "3", "{bad}"]
        ready = "notify"
        watchdog = 1
        startsecs = 0
        """)
    wait_until(lambda: bad.exists() and len(bad.read_text().split("\n")) >= 3, 20, what="a restart of bad")
    assert "bad: running -> stopping: watchdog: no WATCHDOG=1 within 1s" in d.log()
    first = json.loads(good.read_text().splitlines()[0])
    assert first["usec"] == "3000000" and first["wpid"] == str(first["pid"])
    wait_until(lambda: len((tmp_path / "good.pings").read_text()) >= 15, 20, what="3 s of pings")
    assert len(good.read_text().splitlines()) == 1, "the pinging program was left alone"
    assert d.status("good")["good"]["pid"] == first["pid"]


def test_memory_restart_stops_with_the_stop_signal_first(graceful_superd, tmp_path):
    marks = tmp_path / "marks"
    prog = script(tmp_path, "hog.py", f"""
        import signal, sys, time
        def term(*_):
            with open({str(marks)!r}, "a") as f:
                f.write("TERM\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, term)
        with open({str(marks)!r}, "a") as f:
            f.write("start\\n")
        hog = bytearray(120 << 20)  # touched: resident
        while True:
            time.sleep(1)
        """)
    d = graceful_superd(f"""
        [program.hog]
        command = ["{prog}"]
        startsecs = 0
        memory_restart = "60MB"
        """)
    wait_until(lambda: marks.exists() and marks.read_text().split().count("start") >= 2, 40, what="a restart")
    assert marks.read_text().split()[:3] == ["start", "TERM", "start"]
    assert "above memory_restart" in d.log()


def test_rlimits_nice_and_oom_score_adj_as_the_child_sees_them(graceful_superd, tmp_path):
    out = tmp_path / "seen"
    prog = script(tmp_path, "seen.py", f"""
        import json, os, resource
        with open({str(out)!r}, "w") as f:
            json.dump({{"nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
                       "core": resource.getrlimit(resource.RLIMIT_CORE),
                       "nice": os.getpriority(os.PRIO_PROCESS, 0),
                       "oom": open("/proc/self/oom_score_adj").read().strip(),
                       "limits": open("/proc/self/limits").read()}}, f)
        """)
    d = graceful_superd(f"""
        [program.seen]
        command = ["{prog}"]
        startsecs = 0
        autorestart = false
        rlimits = {{ nofile = [1000, 2000], core = "unlimited" }}
        nice = 7
        oom_score_adj = 300
        """)
    d.wait_state("seen", "exited", 20)
    seen = json.loads(out.read_text())
    assert seen["nofile"] == [1000, 2000]
    assert seen["core"] == [-1, -1]
    assert seen["nice"] == 7 and seen["oom"] == "300"
    assert "Max open files            1000                 2000" in seen["limits"]


def test_env_files_every_form_reread_at_every_start(graceful_superd, tmp_path):
    out = tmp_path / "env"
    (tmp_path / "app.env").write_text(
        "# a comment\n\nPLAIN=plain value # trailing comment\nexport EXPORTED=yes\n"
        "SINGLE='single $HOME \\n'\nDOUBLE=\"dq \\\"quoted\\\" \\\\ end\"\nOVERRIDDEN=file\nEMPTY=\n")
    prog = script(tmp_path, "env.py", f"""
        import json, os
        with open({str(out)!r}, "w") as f:
            json.dump({{k: os.environ.get(k) for k in
                       ("PLAIN", "EXPORTED", "SINGLE", "DOUBLE", "OVERRIDDEN", "EMPTY", "LATER")}}, f)
        """)
    d = graceful_superd(f"""
        [program.env]
        command = ["{prog}"]
        startsecs = 0
        autorestart = false
        env_file = ["app.env", "-missing.env"]
        environment = {{ OVERRIDDEN = "environment" }}
        """)
    d.wait_state("env", "exited", 20)
    assert json.loads(out.read_text()) == {
        "PLAIN": "plain value", "EXPORTED": "yes", "SINGLE": "single $HOME \\n", "DOUBLE": 'dq "quoted" \\ end',
        "OVERRIDDEN": "environment", "EMPTY": "", "LATER": None}
    (tmp_path / "app.env").write_text("LATER=changed\n")
    out.unlink()
    d.call("start", names=["env"], wait=False)
    wait_until(out.exists, 20)
    wait_until(lambda: json.loads(out.read_text() or "{}").get("LATER") == "changed", 20)
    d.wait_state("env", "exited", 20)
    (tmp_path / "app.env").unlink()
    d.call("start", names=["env"], wait=False)
    wait_until(lambda: d.state_of("env") == "fatal", 30, what="a failed start")
    assert "app.env: no such file" in d.status("env")["env"]["description"]


def test_bad_values_are_refused_by_check_with_the_key_path(tmp_path):
    path = tmp_path / "superd.toml"
    path.write_text(f"""
[superd]
socket = "{tmp_path}/s.sock"
run_dir = "{tmp_path}/run"
[program.app]
command = "true"
rlimits = {{ nofile = 10, bogus = 1, core = [10, 5] }}
nice = 40
oom_score_adj = 5000
watchdog = 5
env_file = ["nope.env"]
alive = {{ http = "https://x", failures = 0 }}
""")
    result = subprocess.run([sys.executable, "-m", "supervisor", "--check", "-c", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    text = result.stdout + result.stderr
    for key in ("program.app.rlimits.bogus", "program.app.rlimits.core", "program.app.nice",
                "program.app.oom_score_adj", "program.app.watchdog", "program.app.alive.http",
                "program.app.alive.failures"):
        assert key in text, (key, text)
    assert "program.app.env_file: env_file " in text and "nope.env: no such file" in text

