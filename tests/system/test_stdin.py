"""``stdin = true``: a pipe superd holds as a program's stdin, written through
the control socket (superctl fg, the ``stdin`` method) and XML-RPC
``sendProcessStdin``; without the key stdin stays /dev/null."""

from __future__ import annotations

import os
import subprocess
import sys
import xmlrpc.client

import pexpect
import pytest

from supervisor.client import ActionFailed, InvalidParams, NoSuchName
from supervisor.daemon.stdin import BUFFER_BYTES
from tests.conftest import PYTHON, pid_alive, script, wait_until
from tests.system.test_http import proxy, start

pytestmark = pytest.mark.timeout(90)

ECHO = """
import sys
for line in sys.stdin:
    print("echo:", line.strip(), flush=True)
print("stdin closed", flush=True)
"""

DEAF = """
import time
while True:
    time.sleep(1)
"""


def programs(tmp_path) -> str:
    echo, deaf = script(tmp_path, "echo.py", ECHO), script(tmp_path, "deaf.py", DEAF)
    return f"""
[program.echo]
command = ["{echo}"]
stdin = true
startsecs = 0
[program.deaf]
command = ["{deaf}"]
stdin = true
startsecs = 0
[program.plain]
command = ["sleep", "300"]
startsecs = 0
"""


def echoed(tmp_path) -> str:
    """What the echo program wrote so far (its log file is made at its first line)."""
    log = tmp_path / "logs" / "echo-stdout.log"
    return log.read_text() if log.exists() else ""


def held_by(pid: int) -> set[str]:
    """What the descriptors of ``pid`` point at."""
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed meanwhile
            pass
    return targets


def stdin_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/0")


def superctl(d, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=30, input=input)


def test_written_lines_reach_the_program_and_its_pipe_is_private(graceful_superd, tmp_path):
    d = graceful_superd(programs(tmp_path))
    echo, plain = d.status("echo")["echo"], d.status("plain")["plain"]
    assert stdin_of(plain["pid"]) == "/dev/null"
    pipe = stdin_of(echo["pid"])
    assert pipe.startswith("pipe:")
    assert echo["stdin"] is True and plain["stdin"] is False

    with d.client() as client:
        assert client.write_stdin("echo", "hello\nworld\n") == 12
    wait_until(lambda: "echo: world" in echoed(tmp_path), what="the echo")
    assert echoed(tmp_path).splitlines() == ["echo: hello", "echo: world"]

    # superd holds the write end; no other child has it.
    assert pipe in held_by(d.pid)
    for other in (d.status("deaf")["deaf"]["pid"], plain["pid"]):
        assert pipe not in held_by(other)

    # A restart gets a fresh pipe; the old one closed with the exit.
    assert superctl(d, "restart", "echo").returncode == 0
    new = d.status("echo")["echo"]
    assert new["pid"] != echo["pid"] and stdin_of(new["pid"]) != pipe
    assert pipe not in held_by(d.pid) and stdin_of(new["pid"]) in held_by(d.pid)
    with d.client() as client:
        client.write_stdin("echo", "again\n")
    wait_until(lambda: "echo: again" in echoed(tmp_path), what="the echo")


def test_bad_writes_are_refused_and_superd_keeps_running(graceful_superd, tmp_path):
    d = graceful_superd(programs(tmp_path))
    with d.client() as client:
        with pytest.raises(ActionFailed, match=r"set stdin = true in \[program.plain\]"):
            client.write_stdin("plain", "x\n")
        with pytest.raises(NoSuchName):
            client.write_stdin("nope", "x\n")
        with pytest.raises(InvalidParams):
            client.call("stdin", name="echo", data=5)
        with pytest.raises(InvalidParams):
            client.call("stdin", name="echo")

        # A program that does not read: the pipe fills, then superd's buffer, then writes fail.
        chunk = "x" * 60000
        written, refused = 0, None
        for _ in range(40):
            try:
                written += client.write_stdin("deaf", chunk)
            except ActionFailed as exc:
                refused = str(exc)
                break
        assert refused is not None and "not reading its stdin" in refused, refused
        assert BUFFER_BYTES < written <= BUFFER_BYTES + (1 << 20)  # the pipe took some, superd keeps the rest
        assert client.write_stdin("echo", "still here\n") == 11

        # A huge write does not fit one request at all.
        with pytest.raises(Exception, match="more than"):
            client.write_stdin("echo", "y" * (1 << 20))

        assert client.stop("echo")[0]["ok"]
        with pytest.raises(ActionFailed, match="not running"):
            client.write_stdin("echo", "x\n")
    assert d.call("state")["state"] == "running"
    # The deaf program's write end went with its stop: nothing of it is left in superd.
    deaf_pid = d.status("deaf")["deaf"]["pid"]
    assert superctl(d, "stop", "deaf").returncode == 0
    assert not pid_alive(deaf_pid)
    with d.client() as client:
        with pytest.raises(ActionFailed, match="not running"):
            client.write_stdin("deaf", "x\n")


def test_sendprocessstdin_over_xmlrpc(graceful_superd, tmp_path):
    d = start(graceful_superd, programs=programs(tmp_path) + '[program.app]\ncommand = ["sleep", "300"]\n')
    s = proxy(d)
    assert s.supervisor.sendProcessStdin("echo", "over xml-rpc\n") is True
    wait_until(lambda: "echo: over xml-rpc" in echoed(tmp_path), what="echo")

    def fault(*args) -> int:
        with pytest.raises(xmlrpc.client.Fault) as info:
            s.supervisor.sendProcessStdin(*args)
        return info.value.faultCode

    assert fault("plain", "x") == 20     # NO_FILE: no stdin pipe
    assert fault("nope", "x") == 10      # BAD_NAME
    assert fault("echo", 5) == 2         # INCORRECT_PARAMETERS
    s.supervisor.stopProcess("echo")
    assert fault("echo", "x") == 70      # NOT_RUNNING
    assert s.supervisor.getState()["statename"] == "RUNNING"


@pytest.fixture
def fg_terminal():
    spawned: list[pexpect.spawn] = []

    def start_fg(d, name: str) -> pexpect.spawn:
        child = pexpect.spawn(PYTHON, ["-m", "supervisor.cli.superctl", "-s", str(d.socket), "fg", name],
                              encoding="utf-8", timeout=15)
        spawned.append(child)
        return child

    yield start_fg
    for child in spawned:
        child.close(force=True)


def test_fg_forwards_typed_lines_and_ctrl_c_leaves_the_program_running(graceful_superd, tmp_path, fg_terminal):
    d = graceful_superd(programs(tmp_path))
    pid = d.status("echo")["echo"]["pid"]
    child = fg_terminal(d, "echo")
    child.expect("Press Ctrl-C to exit")
    child.sendline("typed-in-fg")
    child.expect("echo: typed-in-fg")  # the program's output, followed back
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert d.status("echo")["echo"]["state"] == "running" and d.status("echo")["echo"]["pid"] == pid

    child = fg_terminal(d, "echo")  # Ctrl-D leaves too
    child.expect("Press Ctrl-C to exit")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and pid_alive(pid)


def test_fg_refuses_a_program_without_stdin(graceful_superd, tmp_path):
    d = graceful_superd(programs(tmp_path))
    result = superctl(d, "fg", "plain")
    assert result.returncode == 1
    assert "set stdin = true in [program.plain]" in result.stderr
    result = superctl(d, "fg", "nope")
    assert result.returncode == 4 and "no such process" in result.stderr
    superctl(d, "stop", "echo")
    result = superctl(d, "fg", "echo")
    assert result.returncode == 1 and "not running" in result.stderr


def test_fg_with_piped_input_forwards_each_line(graceful_superd, tmp_path):
    d = graceful_superd(programs(tmp_path))
    result = superctl(d, "fg", "echo", input="one\ntwo\n")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: "echo: two" in echoed(tmp_path), what="the echo")
