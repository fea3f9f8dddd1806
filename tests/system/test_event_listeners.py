"""supervisord's event listener protocol: exact headers and payloads, FAIL
resends, the SUPERVISOR_* environment, and refused event types."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(60)

LISTENER = """
import os, sys
out = open(sys.argv[1], "a")
env = " ".join(k + "=" + os.environ.get(k, "-") for k in
               ("SUPERVISOR_ENABLED", "SUPERVISOR_PROCESS_NAME", "SUPERVISOR_GROUP_NAME", "SUPERVISOR_SERVER_URL"))
out.write("ENV " + env + "\\n"); out.flush()
failed = False
while True:
    sys.stdout.write("READY\\n"); sys.stdout.flush()
    header = sys.stdin.readline()
    if not header:
        break
    fields = dict(part.split(":", 1) for part in header.split())
    payload = sys.stdin.read(int(fields["len"]))
    out.write("HEADER " + header + "PAYLOAD " + payload + "\\n"); out.flush()
    if fields["eventname"] == "PROCESS_STATE_EXITED" and not failed:
        failed = True
        sys.stdout.write("RESULT 4\\nFAIL"); sys.stdout.flush()
    else:
        sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
"""


def test_listener_receives_exact_payloads(graceful_superd, tmp_path):
    record = tmp_path / "events.txt"
    listener = script(tmp_path, "listener", LISTENER)
    crash = script(tmp_path, "crash", "import time, sys; time.sleep(1.2); sys.exit(5)\n")
    d = graceful_superd(f"""
        [program.mon]
        command = "{listener} {record}"
        events = ["PROCESS_STATE_EXITED", "PROCESS_STATE_RUNNING"]
        priority = 1
        startsecs = 0

        [program.app]
        command = "{crash}"
        startsecs = 1
        autorestart = false
    """)
    wait_until(lambda: record.exists() and record.read_text().count("PROCESS_STATE_EXITED") >= 2, 30,
               what="the exited event, twice (FAIL, then OK)")
    text = record.read_text()
    assert f"ENV SUPERVISOR_ENABLED=1 SUPERVISOR_PROCESS_NAME=mon SUPERVISOR_GROUP_NAME=mon " \
           f"SUPERVISOR_SERVER_URL=unix://{d.socket}" in text
    headers = re.findall(r"HEADER (.*)\n", text)
    for h in headers:
        assert re.fullmatch(r"ver:3\.0 server:supervisor serial:\d+ pool:mon poolserial:\d+ "
                            r"eventname:PROCESS_STATE_\w+ len:\d+", h), h
    payloads = re.findall(r"PAYLOAD (.*)\n", text)
    pid = d.call("status", names=["app"])[0]
    exited = [p for p in payloads if "from_state:RUNNING" in p and "app" in p]
    assert len(exited) == 2 and exited[0] == exited[1]  # rejected, then sent again unchanged
    assert re.fullmatch(r"processname:app groupname:app from_state:RUNNING expected:0 pid:\d+", exited[0])
    running = [p for p in payloads if p.startswith("processname:app") and "from_state:STARTING" in p]
    assert re.fullmatch(r"processname:app groupname:app from_state:STARTING pid:\d+", running[0])
    assert running[0].split("pid:")[1] == exited[0].split("pid:")[1]
    # The resent event keeps its serials.
    exit_headers = [h for h in headers if "PROCESS_STATE_EXITED" in h]
    assert exit_headers[0] == exit_headers[1]
    assert pid["state"] == "exited"


def test_unsupported_event_is_refused_at_check(tmp_path):
    cfg = tmp_path / "superd.toml"
    cfg.write_text(f'[superd]\nsocket = "{tmp_path}/s.sock"\n[program.x]\ncommand = "cat"\n'
                   'events = ["PROCESS_LOG_STDOUT"]\n')
    out = subprocess.run([PYTHON, "-m", "supervisor", "--check", "-c", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "PROCESS_LOG_STDOUT" in out.stdout + out.stderr
    assert "superd cannot send" in out.stdout + out.stderr
