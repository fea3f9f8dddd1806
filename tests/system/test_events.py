"""The event stream: ``events`` over the socket, ``superctl events [-f] [--json]``,
the client's iterator, and a stalled follower dropped without growing superd."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(60)


def superctl(d, *args, **kwargs):
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=30, **kwargs)


def transitions(events, name):
    return [(e["from_state"], e["to_state"]) for e in events if e["type"] == "process" and e["name"] == name]


def test_crash_restart_stop_reload_in_order(graceful_superd, tmp_path):
    crash = script(tmp_path, "crash", """
        import os, sys, time
        flag = sys.argv[1]
        if not os.path.exists(flag):
            open(flag, "w").close()
            time.sleep(1.2)
            sys.exit(3)
        time.sleep(3600)
    """)
    d = graceful_superd(f"""
        [program.app]
        command = "{crash} {tmp_path / 'flag'}"
        startsecs = 1
    """)
    follower = subprocess.Popen([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "events", "-f", "--json"],
                                stdout=subprocess.PIPE, text=True)
    try:
        seen = []

        def got(n):
            return len([e for e in seen if e["type"] == "process" and e["name"] == "app"]) >= n

        wait_until(lambda: d.status("app")["app"]["restarts"] == 1 and d.state_of("app") == "running", 20,
                   what="app to crash and run again")
        with d.client() as c:
            c.stop(["app"])
            (tmp_path / "superd.toml").write_text((tmp_path / "superd.toml").read_text()
                                                  + "\n[program.other]\ncommand = \"sleep 3600\"\n")
            c.reload()
        os.set_blocking(follower.stdout.fileno(), True)
        for line in follower.stdout:
            seen.append(json.loads(line))
            if seen[-1]["type"] == "reload":
                break
        app = transitions(seen, "app")
        assert app == [("stopped", "starting"), ("starting", "running"), ("running", "exited"),
                       ("exited", "starting"), ("starting", "running"), ("running", "stopping"),
                       ("stopping", "stopped")]
        crashed = [e for e in seen if e.get("to_state") == "exited"][0]
        assert crashed["exitstatus"] == 3 and crashed["expected"] is False and crashed["pid"]
        assert crashed["group"] == "app"
        for key in ("time", "type", "name", "group", "from_state", "to_state", "pid", "exitstatus", "reason"):
            assert key in crashed
        reload = seen[-1]
        assert reload["added"] == ["other"]
        daemon = [(e["from_state"], e["to_state"]) for e in seen if e["type"] == "daemon"]
        assert ("running", "reloading") in daemon
        times = [e["serial"] for e in seen]
        assert times == sorted(times)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(10)

    # Without -f: the recent ones, and exit 0; names filter.
    out = superctl(d, "events", "--json", "app")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert lines and all(e["name"] == "app" for e in lines)
    text = superctl(d, "events")
    assert text.returncode == 0
    assert "app: running -> exited (pid" in text.stdout and "exit 3, unexpected" in text.stdout
    assert "superd: running -> reloading" in text.stdout


def test_raw_socket_and_client_iterator(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.one]
        command = "sleep 3600"
        startsecs = 0
    """)
    with d.client() as c:
        it = c.follow_events(["one"])
        first = next(it)
        assert first["name"] == "one"
        c.stop(["one"])
        states = []
        for event in it:
            states.append(event["to_state"])
            if event["to_state"] == "stopped":
                break
        it.close()
        assert states[-2:] == ["stopping", "stopped"]
    # Raw socket: response, then notifications.
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(d.socket))
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events","params":{"follow":true,"names":["one"]}}\n')
    f = s.makefile("rb")
    response = json.loads(f.readline())
    assert response["id"] == 1 and isinstance(response["result"]["events"], list)
    with d.client() as c:
        c.start(["one"])
    note = json.loads(f.readline())
    assert note["method"] == "events" and note["params"]["events"][0]["to_state"] == "starting"
    s.close()


def test_stalled_follower_is_dropped(graceful_superd, tmp_path):
    flap = script(tmp_path, "flap", "import sys; sys.exit(1)\n")
    d = graceful_superd(f"""
        [program.flap]
        command = "{flap}"
        startsecs = 0
        autorestart = true
        restart_burst = 1000000
        restart_interval = 1
        [program.steady]
        command = "sleep 3600"
    """, daemon="client_timeout = 2\n")
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(str(d.socket))
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events","params":{"follow":true}}\n')
    # Never read: superd must drop this follower, and still answer others.
    wait_until(lambda: "dropping an event follower" in d.log(), 40, interval=0.1, what="the follower to be dropped")
    with d.client() as c:
        assert c.state()["state"] == "running"
        assert c.events(since=time.time() - 3600)
    # What was queued ends with the notice (when it could still be sent) or a closed socket.
    s.setblocking(True)
    s.settimeout(10)
    data = b""
    while True:
        try:
            chunk = s.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b'{"jsonrpc":"2.0","id":1')
