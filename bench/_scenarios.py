"""What the scenarios share (the run's Env, the programs they run), and restart latency.

The lifecycle scenarios (start, idle, status, reload, stop) are in _lifecycle.py,
log capture in _capture.py. Each function runs one daemon once and returns raw
samples; every wait is bounded; every daemon is killed (by pid, with its
descendants) when the function returns or fails.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import _procs
from _daemons import Daemon, Program

LINE_BYTES = 100  # every line the log generator writes is this long

HOLD_SH = """#!/bin/sh
# A program that ignores SIGTERM: only SIGKILL ends it.
trap '' TERM
exec sleep 1000000
"""

RESTART_BASH = """#!/bin/bash
# $1: stamp file, $2: seconds to run. Stamps use bash's clock, no fork.
echo "start ${EPOCHREALTIME/,/.}" >> "$1"
sleep "$2"
echo "exit ${EPOCHREALTIME/,/.}" >> "$1"
exit 3
"""

RESTART_PY = """#!{python} -S -I
import sys, time
with open(sys.argv[1], "a") as f:
    f.write("start %.6f\\n" % time.time())
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as f:
    f.write("exit %.6f\\n" % time.time())
sys.exit(3)
"""

GENERATOR_PY = """#!{python} -S -I
# Writes argv[1] bytes to stdout as numbered 100-byte lines, as a busy logger
# would (buffered writes, a line at a time); stamps its start and end in argv[2].
# With argv[3], a FIFO: stamps "ready" first and waits until the bench opens the
# FIFO for writing, so that many generators begin writing at the same moment.
import sys, time
if len(sys.argv) > 3:
    with open(sys.argv[2], "a") as f:
        f.write("ready %.6f\\n" % time.time())
    open(sys.argv[3], "rb").close()
with open(sys.argv[2], "a") as f:
    f.write("start %.6f\\n" % time.time())
out = sys.stdout.buffer
tail = b"x" * 88
for i in range(int(sys.argv[1]) // 100):
    out.write(b"%010d %s\\n" % (i, tail))
out.flush()
with open(sys.argv[2], "a") as f:
    f.write("end %.6f\\n" % time.time())
"""


@dataclass
class Env:
    """What the scenarios need to know about this run."""

    root: Path                         # the run's scratch directory
    python: str                        # interpreter for helper scripts
    make: dict                         # kind -> callable(workdir, socket path) -> Daemon
    output: str                        # the restart program's: "auto" (daemon defaults) or "null"
    launcher_python: list[str]         # how the bare launcher is started: superd's interpreter
    sockdir: Path = Path("/")          # unix socket paths must stay under 108 bytes
    hold: str = ""
    restart_prog: str = ""
    restart_impl: str = ""
    generator: str = ""
    _seq: int = 0

    def setup(self) -> None:
        progs = self.root / "programs"
        progs.mkdir(parents=True, exist_ok=True)
        self.hold = _script(progs / "hold.sh", HOLD_SH)
        bash = "/bin/bash"
        ok = False
        if os.access(bash, os.X_OK):
            probe = subprocess.run([bash, "-c", 'echo "${EPOCHREALTIME:-}"'], capture_output=True, text=True, timeout=10)
            ok = bool(probe.stdout.strip())
        if ok:
            self.restart_prog = _script(progs / "restart.sh", RESTART_BASH)
            self.restart_impl = "bash ($EPOCHREALTIME)"
        else:
            self.restart_prog = _script(progs / "restart.py", RESTART_PY.format(python=self.python))
            self.restart_impl = "python -S -I"
        self.generator = _script(progs / "gen.py", GENERATOR_PY.format(python=self.python))

    def workdir(self, label: str) -> Path:
        self._seq += 1
        path = self.root / f"{self._seq:03d}-{label}"
        path.mkdir(parents=True)
        return path

    def daemon(self, kind: str, label: str) -> Daemon:
        """A fresh daemon of ``kind`` in a new work directory, its socket on a short path."""
        workdir = self.workdir(label)
        return self.make[kind](workdir, str(self.sockdir / f"{self._seq:03d}.sock"))

    def stream_mode(self) -> Optional[str]:
        return None if self.output == "auto" else "null"


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


# --------------------------------------------------------------------------- restart latency


def restart_latency(env: Env, kind: str, *, run_secs: float, restarts: int) -> list[float]:
    """One program that stamps its start, runs ``run_secs``, stamps its exit and exits 3,
    with autorestart. Returns the ``restarts`` gaps (exit stamp -> next start stamp), in seconds."""
    d = env.daemon(kind, f"{kind}-restart{run_secs:g}")
    stamps = d.workdir / "stamps.txt"
    program = Program("r", [env.restart_prog, str(stamps), f"{run_secs:g}"], autorestart="true",
                      startsecs=0, stopwaitsecs=1, stdout=env.stream_mode(), stderr=env.stream_mode())
    # superd throttles quick exits (1 s, 2 s, ...) and supervisord reaps once per
    # loop (up to 1 s): bound the wait generously and fail loudly.
    timeout = (run_secs + 12.0) * (restarts + 1) + 15.0
    try:
        d.launch([program])

        def enough():
            d.check_alive()
            return len(read_stamps(stamps, "start")) >= restarts + 1

        if not _procs.wait_until(enough, timeout, 0.02):
            raise RuntimeError(f"{kind}: fewer than {restarts} restarts after {timeout:.0f}s:\n{d.log_tail()}")
    finally:
        d.cleanup()
    starts, exits = read_stamps(stamps, "start"), read_stamps(stamps, "exit")
    return [starts[i + 1] - exits[i] for i in range(restarts)]


@contextlib.contextmanager
def busy_cpus(env: Env, per_cpu: int = 4) -> Iterator[int]:
    """``per_cpu`` busy loops per CPU at nice 0 (none of the daemon's), for as long as
    the ``with`` lasts: a machine whose CPUs its own work keeps busy. Yields their number."""
    count = per_cpu * len(os.sched_getaffinity(0))
    loops: list = []
    try:
        for _ in range(count):
            loops.append(_procs.launch([env.python, "-S", "-c", "while True: pass"], cwd=str(env.root),
                                       env=dict(os.environ)))
        yield count
    finally:
        for proc in loops:
            _procs.kill_tree(proc.pid, proc)
            _procs.forget(proc)


def read_stamps(path: Path, kind: str) -> list[float]:
    """The times of the ``kind`` lines ("start 1700000000.123456") of a stamp file."""
    try:
        text = path.read_text()
    except OSError:
        return []
    values = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == kind:
            try:
                values.append(float(parts[1]))
            except ValueError:
                pass
    return values


def spawn_floor(env: Env, samples: int = 7) -> float:
    """Median seconds from a plain Popen() call to the restart program's first stamp: what
    any supervisor pays to fork, exec and reach the program's first line."""
    workdir = env.workdir("spawn-floor")
    values = []
    for i in range(samples):
        stamps = workdir / f"floor{i}.txt"
        t0 = time.time()
        proc = _procs.launch([env.restart_prog, str(stamps), "0"], cwd=str(workdir), env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                _procs.kill_tree(proc.pid, proc)
            _procs.forget(proc)
        starts = read_stamps(stamps, "start")
        if starts:
            values.append(starts[0] - t0)
    return statistics.median(values)
