"""Faults superd must survive, with a real superd (issue #20, part 6): lost
output counted in ``status --json`` and logged once, superctl against a
stopped superd, a reload that keeps a stopped program stopped, a deleted log
file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import script, wait_until

pytestmark = pytest.mark.timeout(90)


def superctl(d, *args: str, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


TICKER = """
    import os, time
    i = 0
    while True:
        os.write(1, b"tick %d\\n" % i)
        i += 1
        time.sleep(0.02)
"""


def test_dropped_output_is_in_status_and_logged_once(superd_factory, tmp_path):
    prog = script(tmp_path, "ticker", TICKER)
    d = superd_factory(f'[program.lost]\ncommand = ["{prog}"]\nstartsecs = 0\n'
                       f'stdout = "{tmp_path / "no-such-dir" / "lost.log"}"\n'
                       f'[program.kept]\ncommand = ["{prog}"]\nstartsecs = 0\n')

    def dropped():
        out = superctl(d, "status", "--json", "lost", "kept")
        procs = {p["name"]: p for p in json.loads(out.stdout)}
        return procs if procs["lost"]["dropped"]["stdout"]["lines"] >= 20 else None

    procs = wait_until(dropped, 20, what="lines counted as dropped")
    lost = procs["lost"]["dropped"]
    assert lost["stdout"]["bytes"] >= 20 * len(b"tick 0\n")
    assert lost["stderr"] == {"bytes": 0, "lines": 0}
    assert procs["kept"]["dropped"] == {"stdout": {"bytes": 0, "lines": 0}, "stderr": {"bytes": 0, "lines": 0}}
    # Logged once for the episode, not once a line.
    assert d.log().count("lost: its stdout output is being dropped") == 1, d.log()


def test_superctl_does_not_hang_on_a_stopped_superd(superd_factory, tmp_path):
    d = superd_factory('[program.p]\ncommand = "sleep 600"\nstartsecs = 0\n')
    os.kill(d.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        out = superctl(d, "status", env={"SUPERCTL_TIMEOUT": "2"}, timeout=30)
        assert time.monotonic() - started < 25
        assert out.returncode != 0
        assert "no reply from superd within 2 s" in out.stderr and "is stopped" in out.stderr, out.stderr
    finally:
        os.kill(d.pid, signal.SIGCONT)
    assert superctl(d, "status").returncode == 0


def test_reload_keeps_a_program_stopped_by_hand_stopped(superd_factory, tmp_path):
    config = '[program.web]\ncommand = "sleep 600"\nstartsecs = 0\n'
    d = superd_factory(config)
    assert superctl(d, "stop", "web").returncode == 0
    assert d.state_of("web") == "stopped"
    path = tmp_path / "superd.toml"
    path.write_text(path.read_text().replace('"sleep 600"', '"sleep 601"'))
    result = d.call("reload")
    assert "web" in result["changed"]
    wait_until(lambda: "stays stopped" in d.log(), 10, what="the reload to be logged")
    assert d.state_of("web") == "stopped"
    assert superctl(d, "start", "web").returncode == 0
    assert d.status("web")["web"]["state"] == "running"


def test_a_deleted_log_file_swallows_nothing(superd_factory, tmp_path):
    prog = script(tmp_path, "ticker", TICKER)
    d = superd_factory(f'[program.ticker]\ncommand = ["{prog}"]\nstartsecs = 0\n')
    logs = tmp_path / "logs"
    path = logs / "ticker-stdout.log"
    wait_until(lambda: path.exists() and path.stat().st_size > 50, 10, what="output")
    with open(path, "rb") as old:
        shutil.rmtree(logs)  # an "auto" log: the whole folder goes
        last_before = int(old.read().splitlines()[-1].split()[1])
        wait_until(lambda: path.exists() and path.stat().st_size > 50, 10, what="a new log file")
        gone = old.read()  # what went to the deleted file after the deletion
    assert gone.count(b"\n") <= 1, "output went on into the deleted file"
    first_after = int(path.read_bytes().splitlines()[0].split()[1])
    assert first_after <= last_before + 2  # nothing lost in between
    assert "ticker-stdout.log was deleted: writing a new one" in d.log()
