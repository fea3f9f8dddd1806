"""Faults superd must survive: out of descriptors, a stalled reader of its own
log, a start-up interrupted by a shutdown, a SIGHUP during start-up."""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from supervisor.client import Client, SuperdError, Unreachable
from tests.conftest import PYTHON, kill_tree, wait_until

pytestmark = pytest.mark.timeout(90)

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _config(tmp_path: Path, programs: str, daemon: str = "") -> Path:
    path = tmp_path / "superd.toml"
    path.write_text(
        f'[superd]\nsocket = "{tmp_path / "superd.sock"}"\nlogs_dir = "{tmp_path / "logs"}"\n'
        f'run_dir = "{tmp_path / "run"}"\n' + textwrap.dedent(daemon) + "\n" + textwrap.dedent(programs)
    )
    return path


class Daemon:
    """A superd started with its own limits and output, killed by pid at the end."""

    def __init__(self, tmp_path: Path, config: Path, *, nofile: int | None = None, stderr=None, stdout=None):
        self.log_path = tmp_path / "superd.stderr"
        self._log = None
        if stderr is None:
            self._log = open(self.log_path, "wb")
            stderr = self._log

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen([PYTHON, "-m", "supervisor", "-c", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=stderr,
                                     env=env, cwd=tmp_path, preexec_fn=limit)
        self.socket = str(tmp_path / "superd.sock")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self._log is not None else ""

    def exits_within(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"superd did not exit within {timeout}s:\n{self.log()[-3000:]}")

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(5)
        if self._log is not None:
            self._log.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*args, **kwargs) -> Daemon:
        handle = Daemon(*args, **kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.cleanup()


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


SLEEPERS = """
[program.sleeper]
command = "sleep 1001"
numprocs = 12
startretries = 0
"""


def test_out_of_descriptors_sigterm_still_ends_superd(tmp_path, daemons):
    """With the descriptor limit exhausted by its programs' pipes and log
    files, a SIGTERM still stops every program and ends superd."""
    superd = daemons(tmp_path, _config(tmp_path, SLEEPERS), nofile=40)
    wait_until(lambda: "ready:" in superd.log() or superd.proc.poll() is not None, 20, what="start-up to end")
    assert superd.proc.poll() is None, superd.log()
    assert "Too many open files" in superd.log() or "descriptor" in superd.log()  # the limit did bite
    children = _descendants(superd.proc.pid)
    superd.proc.send_signal(signal.SIGTERM)
    assert superd.exits_within(20) == 0, superd.log()[-3000:]
    for pid in children:
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
                   .rsplit(")", 1)[1][:3], 5, what=f"pid {pid} to be gone")


def test_out_of_descriptors_a_client_is_refused_without_a_storm(tmp_path, daemons):
    """Out of descriptors, a connecting client gets a clear refusal (or an
    answer); superd neither spins nor floods its log, and still shuts down."""
    superd = daemons(tmp_path, _config(tmp_path, SLEEPERS), nofile=40)
    wait_until(lambda: "ready:" in superd.log() or superd.proc.poll() is not None, 20, what="start-up to end")
    assert superd.proc.poll() is None, superd.log()
    outcomes = []
    for _ in range(5):
        try:
            with Client(superd.socket, connect_timeout=2, timeout=3) as client:
                outcomes.append(("answer", len(client.status())))
        except (SuperdError, Unreachable, OSError) as exc:
            outcomes.append(("refused", str(exc)))
    assert outcomes, outcomes
    size_after_clients = superd.log_path.stat().st_size
    cpu_before = sum(os.times()[:2])
    stat_before = Path(f"/proc/{superd.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    time.sleep(2.0)  # the point: nothing happens while nobody asks
    stat_after = Path(f"/proc/{superd.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = (int(stat_after[11]) + int(stat_after[12])) - (int(stat_before[11]) + int(stat_before[12]))
    assert ticks < os.sysconf("SC_CLK_TCK") * 0.5, f"superd used {ticks} ticks in 2 s while idle: {outcomes}"
    assert superd.log_path.stat().st_size - size_after_clients < 4096, superd.log()[-3000:]
    assert "Traceback" not in superd.log()
    del cpu_before
    superd.proc.send_signal(signal.SIGTERM)
    assert superd.exits_within(20) == 0, superd.log()[-3000:]


def test_a_stalled_reader_of_superds_log_stops_nothing(tmp_path, daemons):
    """superd's stderr is a pipe nobody reads: it still answers, still
    restarts a crashing program and still shuts down at once."""
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, 4096)
        os.set_blocking(write_end, False)
        try:
            while True:  # the reader has stalled already: the pipe is full from the start
                os.write(write_end, b"x" * 512)
        except BlockingIOError:
            pass
        os.set_blocking(write_end, True)
        config = _config(tmp_path, """
            [program.crasher]
            command = "sh -c 'echo boom; exit 3'"
            startsecs = 0
            startretries = 1000
            stdout = "null"

            [program.chatty]
            command = "yes superd-console-line"
            stdout = "console"
            """, daemon='log_level = "debug"')
        # superd's stdout and stderr share one small pipe, as under a
        # container runtime whose log reader stalls; the chatty program fills it.
        superd = daemons(tmp_path, config, stderr=write_end, stdout=write_end)
        os.close(write_end)
        write_end = -1
        client = Client(superd.socket, connect_timeout=2, timeout=5)

        def restarts() -> int:
            try:
                return client.status(["crasher"])[0]["restarts"]
            except (SuperdError, Unreachable, OSError):
                return -1

        wait_until(lambda: restarts() >= 3, 30, what="a few restarts")
        first = restarts()
        wait_until(lambda: restarts() > first, 30, what="restarts to go on with the log pipe full")
        superd.proc.send_signal(signal.SIGTERM)
        assert superd.exits_within(10) == 0
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_shutdown_during_start_up_spawns_nothing_more(tmp_path, daemons):
    config = _config(tmp_path, """
        [program.many]
        command = "sleep 1001"
        numprocs = 1500
        stdout = "null"
        stderr = "null"
        """)
    superd = daemons(tmp_path, config)

    def progress() -> str:
        try:
            with Client(superd.socket, connect_timeout=1, timeout=5) as client:
                return client.state().get("progress", "")
        except (SuperdError, Unreachable, OSError):
            return ""

    # Between two slices of the start-up, requests are answered: with progress.
    seen = wait_until(progress, 30, interval=0.002, what="start-up progress over the socket")
    assert str(seen).startswith("starting: ") and " of 1500 started" in str(seen), seen
    superd.proc.send_signal(signal.SIGTERM)
    assert superd.exits_within(60) == 0, superd.log()[-3000:]
    log = superd.log()
    assert "start-up interrupted:" in log, log[-3000:]
    spawned = log.count("spawned pid")
    assert 0 < spawned < 1500, spawned


def test_a_sighup_during_start_up_reloads_once_start_up_ends(tmp_path, daemons):
    config = _config(tmp_path, """
        [program.many]
        command = "sleep 1001"
        numprocs = 600
        stdout = "null"
        stderr = "null"
        """)
    superd = daemons(tmp_path, config)
    wait_until(lambda: len(_descendants(superd.proc.pid)) >= 20 or superd.proc.poll() is not None, 30,
               interval=0.002, what="start-up to be under way")
    superd.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: no changes" in superd.log(), 60, what="the reload after start-up")
    assert "once start-up ends" in superd.log()
    superd.proc.send_signal(signal.SIGTERM)
    assert superd.exits_within(60) == 0
