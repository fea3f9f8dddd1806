"""Issue #19 ("the first hour") against a real superd: a rolling restart that
says what it does as it goes, a paused process that says so, superd's log in
plain words, and the usage errors of ``superd --`` and the shell.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.conftest import PYTHON, REPO, wait_until

pytestmark = pytest.mark.timeout(60)


def ctl(d, *args: str, timeout: float = 40, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=timeout, input=input, cwd=REPO)


def test_rolling_restart_prints_each_instance_as_it_goes(graceful_superd):
    # Each instance takes ~0.6 s to stop (it ignores nothing, but startsecs
    # makes the start last): the whole restart takes well over a second.
    d = graceful_superd('[program.worker]\ncommand = ["sleep", "300"]\nnumprocs = 2\nstartsecs = 0.8\n'
                        'stdout = "null"\nstderr = "null"\n')
    r = ctl(d, "restart", "--rolling", "worker")
    assert r.returncode == 0, r
    assert r.stdout == "worker_0: started\nworker_1: started\n"
    steps = r.stderr.splitlines()
    # What came after the first second is printed as it happens: at least
    # worker_1's whole restart, in order.
    assert steps[-5:] == ["worker_1: stopping", "worker_1: stopped", "worker_1: starting",
                          "worker_1: running", "worker_1: ready (2 of 2)"], r.stderr


def test_quick_commands_print_only_their_results(graceful_superd):
    d = graceful_superd('[program.quick]\ncommand = ["sleep", "300"]\nstartsecs = 0\n'
                        'stdout = "null"\nstderr = "null"\n')
    r = ctl(d, "restart", "quick")
    assert (r.returncode, r.stdout, r.stderr) == (0, "quick: started\n", "")


def test_a_process_stopped_by_sigstop_says_it_is_paused(graceful_superd):
    d = graceful_superd('[program.napper]\ncommand = ["sleep", "300"]\nstartsecs = 0\n'
                        'stdout = "null"\nstderr = "null"\n')
    r = ctl(d, "signal", "STOP", "napper")
    assert (r.returncode, r.stdout) == (0, "napper: sent SIGSTOP\n"), r
    wait_until(lambda: "paused" in d.status("napper")["napper"]["description"], 10, what="the pause to show")
    assert d.state_of("napper") == "running"
    assert "paused" in ctl(d, "status", "napper").stdout
    assert ctl(d, "signal", "CONT", "napper").returncode == 0
    wait_until(lambda: "paused" not in d.status("napper")["napper"]["description"], 10, what="the resume")
    assert ctl(d, "stop", "napper").returncode == 0  # a paused process stops too


def test_log_says_still_starting_and_ready_in_plain_words(graceful_superd, tmp_path):
    d = graceful_superd('[program.ok]\ncommand = ["sleep", "300"]\nstartsecs = 0\nstdout = "null"\n'
                        '[program.bad]\ncommand = ["false"]\nstartsecs = 1\nstartretries = 1\n'
                        'stdout = "null"\nstderr = "null"\n')
    wait_until(lambda: d.state_of("bad") == "fatal", 30, what="bad to give up")
    wait_until(lambda: "ready: " in d.log(), 10, what="the ready line")
    log = d.log()
    assert "ready: 1 running, 1 fatal" in log, log
    assert "starting -> starting" not in log and "backoff -> backoff" not in log, log


def test_superd_double_dash_without_a_command_is_a_usage_error(tmp_path):
    r = subprocess.run([PYTHON, "-m", "supervisor", "--"], capture_output=True, text=True, timeout=30,
                       cwd=tmp_path, env={**os.environ, "SUPERD_CONFIG": ""})
    assert r.returncode == 2
    assert r.stderr == ("superd: -- must be followed by the command to run: "
                        "superd [OPTIONS] -- COMMAND [ARG...]\n")


def test_shell_unknown_command_is_one_line(graceful_superd):
    d = graceful_superd('[program.quick]\ncommand = ["sleep", "300"]\nstdout = "null"\n')
    r = ctl(d, "shell", input="frobnicate all\nexit\n")
    assert "superctl: unknown command: frobnicate (try help)" in r.stderr
    assert "Usage:" not in r.stdout + r.stderr
    d.signal(signal.SIGTERM)
    assert d.wait_exit(15) == 0
