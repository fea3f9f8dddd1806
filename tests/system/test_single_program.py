"""Single-program mode: ``superd -- cmd args``, a tini-style init that waits for leftovers."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.conftest import IGNORE_TERM, pid_alive, script, wait_until
from supervisor.client import Client

pytestmark = pytest.mark.timeout(30)

# Writes "ready" then every signal it gets to argv[1]; exits on TERM with code 0.
TRAPPER = """
import signal, sys, time
out = open(sys.argv[1], "a", buffering=1)
def note(sig, frame):
    out.write(signal.Signals(sig).name + "\\n")
    if sig == signal.SIGTERM:
        sys.exit(0)
for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGQUIT, signal.SIGTERM):
    signal.signal(s, note)
out.write("ready\\n")
while True:
    time.sleep(1)
"""


def program_pid(d) -> int:
    return wait_until(lambda: [c.pid for c in psutil.Process(d.pid).children()], 10)[0]


@pytest.mark.parametrize("argv, code", [(["true"], 0), (["sh", "-c", "exit 7"], 7), (["sh", "-c", "kill -9 $$"], 137)])
def test_exit_code_is_the_programs(single_factory, argv, code):
    d = single_factory(argv)
    assert d.wait_exit(10) == code


def test_term_is_forwarded_and_the_death_by_term_is_143(single_factory):
    d = single_factory(["sleep", "100"])
    child = program_pid(d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 143
    assert not pid_alive(child)


def test_every_catchable_signal_is_forwarded(single_factory, tmp_path):
    notes = tmp_path / "notes"
    d = single_factory([script(tmp_path, "trap.py", TRAPPER), str(notes)])
    wait_until(lambda: notes.exists() and "ready" in notes.read_text(), 10)
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGQUIT):
        d.signal(sig)
        wait_until(lambda: sig.name in notes.read_text(), 5, what=f"{sig.name} to reach the program")
    assert pid_alive(d.pid), "superd itself must survive the forwarded signals"
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    assert notes.read_text().split() == ["ready", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGQUIT", "SIGTERM"]


def test_term_ignoring_program_is_killed_after_stopwaitsecs(single_factory, tmp_path):
    ready = tmp_path / "ready"
    prog = script(tmp_path, "deaf.py", IGNORE_TERM)
    d = single_factory([prog, str(ready)], options=("--stopwaitsecs", "1"))
    wait_until(ready.exists, 10)
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 128 + signal.SIGKILL
    assert 0.9 <= time.monotonic() - began < 5  # at --stopwaitsecs (1 s), far from the default 10 s


def test_second_term_kills_at_once(single_factory, tmp_path):
    ready = tmp_path / "ready"
    prog = script(tmp_path, "deaf.py", IGNORE_TERM)
    d = single_factory([prog, str(ready)], options=("--stopwaitsecs", "30", "--log-level", "info"))
    wait_until(ready.exists, 10)
    d.signal(signal.SIGTERM)
    wait_until(lambda: "shutting down" in d.log(), 5)
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 137
    assert "killing what is left" in d.log()
    assert time.monotonic() - began < 10  # at once: not after --stopwaitsecs (30 s)


def test_superd_waits_for_the_programs_leftovers(single_factory, tmp_path):
    # The program leaves a background child behind and exits 3.
    pidfile = tmp_path / "leftover"
    d = single_factory(["sh", "-c", f"sleep 1000 & echo $! > {pidfile}; exit 3"], options=("--log-level", "info"))
    assert d.wait_exit(10) == 3
    leftover = int(pidfile.read_text())
    assert not pid_alive(leftover), "superd exited while the program's leftover was still running"
    assert "outlived its leader" in d.log()


def test_leftover_that_ignores_term_is_killed(single_factory, tmp_path):
    pidfile = tmp_path / "leftover"
    d = single_factory(
        ["sh", "-c", f"(trap '' TERM; exec sleep 1000) & echo $! > {pidfile}; exit 0"],
        options=("--stopwaitsecs", "2"),
    )
    assert d.wait_exit(15) == 0
    assert not pid_alive(int(pidfile.read_text()))


def test_missing_command_exits_127(single_factory):
    d = single_factory(["/nonexistent/program"])
    assert d.wait_exit(10) == 127
    assert "cannot execute '/nonexistent/program'" in d.log()


def test_stdin_and_output_pass_straight_through(single_factory, tmp_path):
    d = single_factory(["sh", "-c", "echo out-line; echo err-line >&2"])
    assert d.wait_exit(10) == 0
    assert d.output() == "out-line\n"
    assert "err-line\n" in d.log()


def test_quiet_by_default_like_an_init(single_factory):
    d = single_factory(["sh", "-c", "echo err-line >&2"])
    assert d.wait_exit(10) == 0
    assert d.log() == "err-line\n"  # the program's own output only
    loud = single_factory(["sh", "-c", "exit 0"], options=("--log-level", "info"))
    assert loud.wait_exit(10) == 0
    assert " INFO " in loud.log()


def test_no_socket_unless_asked_and_a_working_one_when_asked(single_factory, tmp_path):
    sock = tmp_path / "single.sock"
    d = single_factory(["sleep", "100"], options=("--socket", str(sock)))
    wait_until(sock.exists, 10)
    with Client(str(sock)) as client:
        (info,) = client.status()
        assert info["name"] == "sleep" and info["state"] == "running"
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 143
    assert not sock.exists()
    # Without --socket, superd serves nothing.
    before = set(tmp_path.iterdir())
    d2 = single_factory(["true"])
    assert d2.wait_exit(10) == 0
    assert {p for p in tmp_path.iterdir() if p.suffix == ".sock"} - before == set()
