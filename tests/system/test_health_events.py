"""Health and readiness changes as events: an ``alive`` check that passes then
fails, a program that says ``RELOADING=1`` then ``READY=1`` again, seen by
``superctl events --json`` in the order they happened."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(90)


def events(d, *names: str) -> list[dict]:
    result = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "events", "--json",
                             *names], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_alive_check_that_passes_then_fails_gives_health_events_in_order(graceful_superd, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flag = tmp_path / "close"
    prog = script(tmp_path, "lsn", f"""
        import os, socket, time
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
        alive = {{ tcp = {port}, interval = 0.1, failures = 2 }}
        """)
    wait_until(lambda: any(e["type"] == "health" for e in events(d, "lsn")), 20, what="healthy")
    pid = d.status("lsn")["lsn"]["pid"]
    flag.touch()  # the port closes: two failed checks later, unhealthy and a restart
    wait_until(lambda: [e for e in events(d, "lsn") if e["type"] == "health"][1:], 20, what="unhealthy")
    wait_until(lambda: d.status("lsn")["lsn"]["pid"] not in (None, pid), 20, what="the restart")
    seen = [(e["type"], e["from_state"], e["to_state"]) for e in events(d, "lsn")]
    healthy = seen.index(("health", "unknown", "healthy"))
    unhealthy = seen.index(("health", "healthy", "unhealthy"))
    stopping = seen.index(("process", "running", "stopping"))
    assert seen.index(("process", "starting", "running")) < healthy < unhealthy < stopping, seen
    health = [e for e in events(d, "lsn") if e["type"] == "health"]
    assert health[0]["reason"] == f"tcp:127.0.0.1:{port}: passed" and health[0]["pid"] == pid
    assert "2 failed checks in a row" in health[1]["reason"] and health[1]["name"] == "lsn"
    assert health[1]["group"] == "lsn" and health[1]["state"] == "running"
    line = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "events", "lsn"],
                          capture_output=True, text=True, timeout=30).stdout
    assert "lsn: healthy -> unhealthy: 2 failed checks in a row" in line
    assert "lsn: healthy -> unhealthy" in d.log()


def test_a_program_that_reloads_is_not_ready_then_ready_again(graceful_superd, tmp_path):
    go = tmp_path / "go"
    prog = script(tmp_path, "notifier", f"""
        import os, socket, time
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.connect(os.environ["NOTIFY_SOCKET"])
        s.send(b"READY=1")
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        s.send(b"RELOADING=1")
        time.sleep(0.3)
        s.send(b"READY=1")
        while True:
            time.sleep(1)
        """)
    d = graceful_superd(f'[program.svc]\ncommand = ["{prog}"]\nstartsecs = 0\nready = "notify"\n')
    d.wait_state("svc", "running")
    go.touch()
    wait_until(lambda: len([e for e in events(d, "svc") if e["type"] == "ready"]) >= 2, 20, what="ready again")
    ready = [e for e in events(d, "svc") if e["type"] == "ready"]
    assert [(e["from_state"], e["to_state"], e["ready"]) for e in ready] == [
        ("ready", "not ready", False), ("not ready", "ready", True)]
    assert "RELOADING=1" in ready[0]["reason"] and ready[0]["state"] == "running"
