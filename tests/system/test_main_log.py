"""superd's own log: ``[superd] log_file`` (rotation, SIGUSR2, a reload that
moves it, a file superd cannot open), ``superctl maintail [-f] [-n N]`` with
and without a file, a stalled ``maintail -f`` reader, and supervisord's
``readLog``/``clearLog`` over XML-RPC."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import xmlrpc.client

import psutil
import pytest

from supervisor.client import InvalidParams
from tests.conftest import PYTHON, wait_until

pytestmark = pytest.mark.timeout(120)

SLEEPER = '[program.app]\ncommand = ["sleep", "600"]\nstartsecs = 0\n'


def superctl(d, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=timeout)


def restart(d, times: int = 1) -> None:
    """Log a few lines: each restart of app logs four state changes."""
    with d.client(timeout=30) as client:
        for _ in range(times):
            client.restart("app")


# --------------------------------------------------------------------------
# log_file


def test_log_file_gets_the_log_as_well_as_stderr_and_rotates(graceful_superd, tmp_path):
    d = graceful_superd(SLEEPER, daemon='log_file = "superd.log"\nlog_file_maxbytes = 1000\nlog_file_backups = 2\n')
    path = tmp_path / "superd.log"  # relative: next to the config file
    wait_until(lambda: path.exists() and "control socket at" in path.read_text(), what="the log file")
    assert "control socket at" in d.log()  # stderr still gets every line
    restart(d, 12)
    wait_until(lambda: (tmp_path / "superd.log.2").exists(), what="two rotations")
    assert not (tmp_path / "superd.log.3").exists()  # backups = 2
    for name in ("superd.log", "superd.log.1", "superd.log.2"):
        text = (tmp_path / name).read_text()
        assert len(text.encode()) <= 1000 and text.endswith("\n"), name  # cut between lines
    last = d.log().splitlines()[-1]
    wait_until(lambda: path.read_text().splitlines()[-1] == last, what="the same last line")


def test_sigusr2_reopens_the_log_file_after_a_rename(graceful_superd, tmp_path):
    d = graceful_superd(SLEEPER, daemon=f'log_file = "{tmp_path / "superd.log"}"\n')
    path, old = tmp_path / "superd.log", tmp_path / "superd.log.old"
    wait_until(path.exists, what="the log file")
    path.rename(old)  # what logrotate does before it signals
    d.signal(signal.SIGUSR2)
    wait_until(lambda: path.exists() and "reopened" in path.read_text(), what="a new log file")
    assert "SIGUSR2: reopening log files" in old.read_text()
    restart(d)
    assert "app: running -> stopping" in path.read_text()
    assert "app: running -> stopping" not in old.read_text()


def test_a_reload_moves_the_log_file(graceful_superd, tmp_path):
    d = graceful_superd(SLEEPER, daemon='log_file = "first.log"\n')
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    wait_until(first.exists, what="the first log file")
    config = tmp_path / "superd.toml"
    config.write_text(config.read_text().replace("first.log", "second.log"))
    with d.client(timeout=30) as client:
        client.reload()
    assert f"superd's log goes to {second} from now on" in first.read_text()
    restart(d)
    assert "app: running -> stopping" in second.read_text()
    assert "app: running -> stopping" not in first.read_text()


def test_check_reports_a_log_file_superd_cannot_write(tmp_path):
    for log_file, why in ((tmp_path / "missing" / "superd.log", "does not exist"), (tmp_path, "is a folder")):
        config = tmp_path / "superd.toml"
        config.write_text(f'[superd]\nlog_file = "{log_file}"\n{SLEEPER}')
        result = subprocess.run([PYTHON, "-m", "supervisor", "-c", str(config), "--check"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "superd.log_file" in result.stderr and why in result.stderr, result.stderr


def test_a_log_file_that_cannot_be_opened_is_one_clear_error_and_superd_runs_on(graceful_superd, tmp_path):
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    d = graceful_superd(SLEEPER, daemon=f'log_file = "{folder}"\n')
    errors = [line for line in d.log().splitlines() if str(folder) in line]
    assert len(errors) == 1, errors
    assert "cannot open" in errors[0] and "Is a directory" in errors[0]
    assert "superd's log goes to stderr only" in errors[0]
    restart(d, 3)
    assert d.state_of("app") == "running"
    assert "app: running -> stopping" in d.log()
    assert len([line for line in d.log().splitlines() if str(folder) in line]) == 1  # said once
    lines = superctl(d, "maintail", "-n", "3").stdout.splitlines()  # from memory, as without a file
    assert len(lines) == 3 and "app: starting -> running" in lines[-1]


# --------------------------------------------------------------------------
# maintail


def test_maintail_reads_the_end_of_the_log_file(graceful_superd, tmp_path):
    d = graceful_superd(SLEEPER, daemon='log_file = "superd.log"\n')
    restart(d, 3)
    result = superctl(d, "maintail", "-n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == (tmp_path / "superd.log").read_text().splitlines()[-2:]
    assert len(superctl(d, "maintail").stdout.splitlines()) == 10  # like tail: 10 by default
    assert superctl(d, "maintail", "-n", "0").stdout == ""
    bad = superctl(d, "maintail", "-n", "-1")
    assert bad.returncode == 2 and "-1" in bad.stderr


def test_maintail_without_a_log_file_shows_the_lines_superd_keeps(graceful_superd):
    d = graceful_superd(SLEEPER)
    restart(d)
    lines = superctl(d, "maintail", "-n", "4").stdout.splitlines()
    assert len(lines) == 4 and "app: running -> stopping" in lines[0], lines
    assert lines == d.log().splitlines()[-4:]
    assert "control socket at" in superctl(d, "maintail", "-n", "1000").stdout
    with d.client() as client:  # the RPC checks what it is given
        for params in ({"lines": "x"}, {"lines": -1}, {"follow": "yes"}, {"name": "app"}):
            with pytest.raises(InvalidParams, match="lines|follow|unknown param"):
                client.call("maintail", **params)
    assert d.state_of("app") == "running"


def test_maintail_follow_shows_new_lines_until_ctrl_c(graceful_superd):
    d = graceful_superd(SLEEPER)
    follower = subprocess.Popen([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "maintail", "-f",
                                 "-n", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(iter(follower.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: got, what="the last line")
        restart(d)
        wait_until(lambda: any("app: running -> stopping" in line for line in got), what="a new line")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(10) == 0, follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(5)
    reader.join(5)


def follow_raw(path) -> socket.socket:
    """A raw ``maintail -f`` connection that reads nothing until told to."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    request = {"jsonrpc": "2.0", "id": 1, "method": "maintail", "params": {"lines": 0, "follow": True}}
    sock.sendall(json.dumps(request).encode() + b"\n")
    return sock


def test_a_stalled_maintail_follower_costs_superd_bounded_memory(graceful_superd, tmp_path):
    d = graceful_superd(SLEEPER, daemon="client_timeout = 600\n")
    config = tmp_path / "superd.toml"
    good = config.read_text()
    # An invalid config with many problems: each refused reload logs them all (about 130 KB).
    config.write_text(good + "[program.app2]\ncommand = \"true\"\n"
                      + "".join(f"unknown_key_{i} = {i}\n" for i in range(200)))
    sock = follow_raw(d.socket)
    try:
        def reload_refused(times: int) -> int:
            logged = 0
            with d.client(timeout=30) as client:
                for _ in range(times):
                    before = os.path.getsize(d.stderr_path)
                    with pytest.raises(Exception, match="invalid config"):
                        client.reload()
                    logged += os.path.getsize(d.stderr_path) - before
            return logged

        reload_refused(10)  # the backlog and the ring fill up
        base = psutil.Process(d.pid).memory_info().rss
        logged = reload_refused(150)
        grown = psutil.Process(d.pid).memory_info().rss - base
        assert logged > 12 << 20, logged
        assert grown < 6 << 20, f"superd grew by {grown >> 20} MB while {logged >> 20} MB were logged"
        # The reader that comes back is told what it missed.
        buf = b""
        deadline = time.monotonic() + 20
        while b"lines skipped: this reader fell behind" not in buf and time.monotonic() < deadline:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
        assert b"lines skipped: this reader fell behind" in buf
    finally:
        sock.close()
        config.write_text(good)
    assert d.state_of("app") == "running"


# --------------------------------------------------------------------------
# supervisord's readLog and clearLog


def test_xmlrpc_read_log_and_clear_log_use_the_log_file(graceful_superd, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = graceful_superd(SLEEPER + f'[http]\nlisten = "127.0.0.1:{port}"\n', daemon='log_file = "superd.log"\n')
    path = tmp_path / "superd.log"
    rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2").supervisor
    wait_until(lambda: "control socket at" in rpc.readLog(0, 0), what="the log over XML-RPC")
    data = path.read_bytes()
    assert rpc.readLog(0, 0) == data.decode()
    assert rpc.readLog(5, 10) == data[5:15].decode()
    assert rpc.readLog(-20, 0) == data[-20:].decode()  # a negative offset: from the end
    with pytest.raises(xmlrpc.client.Fault) as fault:
        rpc.readLog(-20, 5)
    assert fault.value.faultCode == 3  # BAD_ARGUMENTS, as supervisord
    assert rpc.clearLog() is True
    assert "control socket at" not in path.read_text()
    restart(d)
    text = rpc.readLog(0, 0)
    assert "app: running -> stopping" in text and "control socket at" not in text
    assert text == path.read_text()
