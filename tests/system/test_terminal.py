"""superd in a real terminal (pexpect pty): Ctrl-C behaves as a user expects."""

from __future__ import annotations

import time

import pexpect
import psutil
import pytest

from tests.conftest import IGNORE_TERM, PYTHON, kill_tree, pid_alive, script, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def terminal():
    spawned: list[pexpect.spawn] = []

    def start(args: list[str], cwd) -> pexpect.spawn:
        child = pexpect.spawn(PYTHON, ["-m", "supervisor", *args], cwd=str(cwd), encoding="utf-8", timeout=15)
        spawned.append(child)
        return child

    yield start
    for child in spawned:
        if child.isalive():
            kill_tree(child.pid)  # superd and all it started, by pid; this also reaps superd
        try:
            child.close(force=True)  # the pty
        except pexpect.ExceptionPexpect:
            pass  # superd was reaped above: nothing left for pexpect to wait for


WORKER = """
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append("TERM"))
signal.signal(signal.SIGINT, lambda *_: got.append("INT"))
out = open(sys.argv[1], "a", buffering=1)
out.write("ready\\n")
while not got:
    time.sleep(0.05)
time.sleep(0.5)  # finish the job in hand
out.write("got " + ",".join(got) + "\\n")
"""


def test_ctrl_c_in_config_mode_is_a_graceful_shutdown(terminal, tmp_path):
    notes = tmp_path / "notes"
    prog = script(tmp_path, "worker.py", WORKER)
    config = tmp_path / "superd.toml"
    config.write_text(
        f'[superd]\nsocket = "{tmp_path}/s.sock"\n[program.worker]\ncommand = ["{prog}", "{notes}"]\n'
        "startsecs = 0\nstdout = \"console\"\n"
    )
    child = terminal(["-c", str(config)], tmp_path)
    wait_until(lambda: notes.exists() and "ready" in notes.read_text(), 15)
    child.sendintr()  # Ctrl-C: SIGINT to the terminal's foreground group
    child.expect("SIGINT: shutting down")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # The program was in its own process group: it got superd's TERM, not the terminal's INT.
    assert notes.read_text().split() == ["ready", "got", "TERM"]


def test_second_ctrl_c_escalates(terminal, tmp_path):
    ready = tmp_path / "ready"
    prog = script(tmp_path, "deaf.py", IGNORE_TERM)
    config = tmp_path / "superd.toml"
    config.write_text(
        f'[superd]\nsocket = "{tmp_path}/s.sock"\nshutdown_timeout = 60\n'
        f'[program.deaf]\ncommand = ["{prog}", "{ready}"]\nstopwaitsecs = 50\nstartsecs = 0\n'
    )
    child = terminal(["-c", str(config)], tmp_path)
    wait_until(ready.exists, 15)
    child.sendintr()
    child.expect("shutting down")
    began = time.monotonic()
    child.sendintr()
    child.expect("killing what is left")
    child.expect(pexpect.EOF)
    child.close()
    assert time.monotonic() - began < 10  # at once: not after stopwaitsecs (50 s)
    assert child.exitstatus == 0


def test_ctrl_c_reaches_the_program_in_single_program_mode(terminal, tmp_path):
    prog = script(
        tmp_path,
        "interactive.py",
        """
        import signal, sys
        def on_int(*_):
            print("program got SIGINT", flush=True)
            sys.exit(42)
        signal.signal(signal.SIGINT, on_int)
        name = input("name? ")
        print(f"hello {name}", flush=True)
        signal.pause()
        """,
    )
    child = terminal(["--", prog], tmp_path)
    # The program owns the terminal's foreground: it can read from it...
    child.expect_exact("name? ")
    child.sendline("superd")
    child.expect_exact("hello superd")
    # ...and Ctrl-C goes to it (once: superd does not forward a second copy).
    child.sendintr()
    child.expect_exact("program got SIGINT")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 42
    assert child.before.count("program got SIGINT") == 0


def _state(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


def test_ctrl_z_stops_superd_with_its_program_and_continue_resumes_both(terminal, tmp_path):
    prog = script(
        tmp_path,
        "asker.py",
        """
        import sys
        while True:
            name = input("name? ")
            print(f"hello {name}", flush=True)
        """,
    )
    child = terminal(["--", prog], tmp_path)
    child.expect_exact("name? ")
    [program] = psutil.Process(child.pid).children()
    child.sendcontrol("z")  # SIGTSTP to the foreground group: the program's
    wait_until(lambda: _state(program.pid) == psutil.STATUS_STOPPED
               and _state(child.pid) == psutil.STATUS_STOPPED, 10)
    # What a shell's fg does: superd's group has the terminal again; SIGCONT to it.
    import os
    import signal
    assert os.tcgetpgrp(child.child_fd) == os.getpgid(child.pid)
    os.killpg(os.getpgid(child.pid), signal.SIGCONT)
    wait_until(lambda: _state(program.pid) != psutil.STATUS_STOPPED
               and _state(child.pid) != psutil.STATUS_STOPPED, 10)
    assert os.tcgetpgrp(child.child_fd) == os.getpgid(program.pid)  # the program has the terminal back
    child.sendline("again")
    child.expect_exact("hello again")
    child.sendintr()  # Ctrl-C still reaches the program: no deadlock
    child.expect(pexpect.EOF)
    child.close()
    assert not pid_alive(program.pid)
