"""The workloads. Each function runs one daemon once and returns raw samples.

Every wait is bounded; every daemon is killed (by pid, with its descendants)
when the function returns or fails.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import psutil

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
import sys, time
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
    poll: float                        # control-channel polling interval (s)
    output: str                        # "auto": daemon defaults; "null": no capture
    log: Callable[[str], None]
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

    def stdout_mode(self) -> Optional[str]:
        return None if self.output == "auto" else "null"


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


# --------------------------------------------------------------------------- lifecycle


def lifecycle(env: Env, kind: str, n: int, *, idle: float, status_calls: int, stop: bool,
              stop_cap: float, start_timeout: float, status_budget: float = 20.0) -> dict:
    """Start N TERM-ignoring programs, sit idle, run the status command, SIGTERM the daemon.

    Returns ``start_s``, ``start_daemon_s``, ``idle_cpu_pct``, ``idle_cpu_pct_ticks``,
    ``idle_wakeups_per_s``, ``rss_mb``, ``uss_mb``, ``status_s`` (list), and
    ``stop_s`` (a number, or a dict with ``capped_at`` when the cap was hit).
    """
    d = env.daemon(kind, f"{kind}-n{n}")
    programs = [
        Program(f"p{i:04d}", [env.hold], autorestart="unexpected", startsecs=0, stopwaitsecs=1,
                stdout=env.stdout_mode())
        for i in range(n)
    ]
    out: dict = {}
    try:
        d.launch(programs)
        out["start_s"] = _time_all_running(d, n, env.poll, start_timeout)
        out["start_daemon_s"] = _procs.wait_until(lambda: d.daemon_side_all_running(), 5.0, 0.05)
        # Every program must have exec'd into its TERM-ignoring sleep before anything else.
        def settled():
            kids = [p for p in _procs.descendants(d.proc.pid) if _name(p) == "sleep"]
            return len(kids) >= n and all(_procs.ignores_sigterm(p) for p in kids)
        if not _procs.wait_until(settled, 30.0, 0.05):
            raise RuntimeError(f"{kind}: the {n} programs did not all reach their TERM-ignoring sleep")
        _procs.remember(d.proc.pid)

        if idle > 0:
            time.sleep(1.0)  # let start-up work finish
            out.update(_idle(d, idle))

        if status_calls > 0:
            out["status_s"] = _status_calls(d, n, status_calls, status_budget)

        if stop:
            out["stop_s"] = _stop(d, n, stop_cap)
    finally:
        d.cleanup()
    return out


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _time_all_running(d: Daemon, n: int, poll: float, timeout: float) -> float:
    """From launch to the first status reply (over the control channel) with all N running."""
    deadline = d.launched_mono + timeout
    while True:
        states = d.safe_states()
        now = time.monotonic()
        if states is not None and len(states) == n and all(s == "running" for s in states.values()):
            return now - d.launched_mono
        d.check_alive()
        if now > deadline:
            raise RuntimeError(f"{d.kind}: not all {n} running after {timeout}s: {_count(states)}\n{d.log_tail()}")
        time.sleep(poll)


def _count(states: Optional[dict]) -> dict:
    counts: dict = {}
    for s in (states or {}).values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def _idle(d: Daemon, seconds: float) -> dict:
    proc = psutil.Process(d.proc.pid)
    sched0, ticks0, ctx0 = _procs.sched_seconds(proc.pid), _procs.cpu_seconds(proc.pid), proc.num_ctx_switches()
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    sched1, ticks1, ctx1 = _procs.sched_seconds(proc.pid), _procs.cpu_seconds(proc.pid), proc.num_ctx_switches()
    mem = proc.memory_full_info()
    out = {
        "idle_cpu_pct_ticks": 100.0 * (ticks1 - ticks0) / elapsed,
        "idle_wakeups_per_s": ((ctx1.voluntary + ctx1.involuntary) - (ctx0.voluntary + ctx0.involuntary)) / elapsed,
        "rss_mb": mem.rss / 2**20,
        "uss_mb": mem.uss / 2**20,
    }
    if sched0 is not None and sched1 is not None:
        out["idle_cpu_pct"] = 100.0 * (sched1 - sched0) / elapsed
    else:
        out["idle_cpu_pct"] = out["idle_cpu_pct_ticks"]
    return out


def _status_calls(d: Daemon, n: int, calls: int, budget: float) -> list[float]:
    """Wall times of ``calls`` runs of the status command; after 5 runs, stop once
    ``budget`` seconds are spent (supervisorctl takes seconds with 1000 programs)."""
    argv = d.status_argv()
    env = d.env()
    times: list[float] = []
    for i in range(calls):
        if i >= 5 and sum(times) > budget:
            break
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=str(d.workdir), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        times.append(time.perf_counter() - t0)
        if i == 0:
            lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line.strip()]
            if len(lines) < n:
                raise RuntimeError(f"{d.kind}: status printed {len(lines)} lines for {n} programs "
                                   f"(exit {done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    return times


def _stop(d: Daemon, n: int, cap: float) -> object:
    """SIGTERM the daemon; seconds until it exits, or a capped record."""
    d.check_alive()
    programs = _procs.descendants(d.proc.pid)
    t0 = time.monotonic()
    os.kill(d.proc.pid, signal.SIGTERM)
    try:
        d.proc.wait(cap)
        return time.monotonic() - t0
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - t0
        alive = sum(1 for p in programs if _alive(p) and _name(p) == "sleep")
        stopped = n - alive
        return {
            "capped_at": round(elapsed, 3),
            "stopped": stopped,
            "of": n,
            "projected_s": round(elapsed * n / stopped, 1) if stopped else None,
        }


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def floors(env: Env, n: int) -> dict:
    """What this machine charges any supervisor for N programs: creating 2N fresh log
    files, and N sequential ``Popen()`` calls of the hold program (each returns once
    the child has exec'd), made from the bench's own Python."""
    workdir = env.workdir(f"floors-n{n}")
    files = workdir / "files"
    files.mkdir()
    t0 = time.perf_counter()
    for i in range(n):
        for stream in ("stdout", "stderr"):
            fd = os.open(files / f"p{i:04d}-{stream}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.close(fd)
    create = time.perf_counter() - t0
    procs = []
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            procs.append(subprocess.Popen([env.hold], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        popen = time.perf_counter() - t0
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(10)
    return {"create_2n_files_s": create, "popen_n_sequential_s": popen}


# --------------------------------------------------------------------------- restart latency


def restart_latency(env: Env, kind: str, *, run_secs: float, restarts: int) -> list[float]:
    """One program that stamps its start, runs ``run_secs``, stamps its exit and exits 3,
    with autorestart. Returns the ``restarts`` gaps (exit stamp -> next start stamp), in seconds."""
    d = env.daemon(kind, f"{kind}-restart{run_secs:g}")
    stamps = d.workdir / "stamps.txt"
    program = Program("r", [env.restart_prog, str(stamps), f"{run_secs:g}"], autorestart="true",
                      startsecs=0, stopwaitsecs=1, stdout=env.stdout_mode())
    # superd throttles quick exits (1 s, 2 s, ...) and supervisord reaps once per
    # loop (up to 1 s): bound the wait generously and fail loudly.
    timeout = (run_secs + 12.0) * (restarts + 1) + 15.0
    try:
        d.launch([program])

        def enough():
            d.check_alive()
            return len(_stamps(stamps, "start")) >= restarts + 1

        if not _procs.wait_until(enough, timeout, 0.02):
            raise RuntimeError(f"{kind}: fewer than {restarts} restarts after {timeout:.0f}s:\n{d.log_tail()}")
    finally:
        d.cleanup()
    starts, exits = _stamps(stamps, "start"), _stamps(stamps, "exit")
    return [starts[i + 1] - exits[i] for i in range(restarts)]


def _stamps(path: Path, kind: str) -> list[float]:
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
        starts = _stamps(stamps, "start")
        if starts:
            values.append(starts[0] - t0)
    return statistics.median(values)


# --------------------------------------------------------------------------- log capture


def capture_raw(env: Env, total: int, *, pipe: bool, timeout: float) -> dict:
    """The generator with its stdout straight into a file (``pipe``: through ``cat``)."""
    workdir = env.workdir("raw-pipe" if pipe else "raw-file")
    target = workdir / "out.log"
    stamps = workdir / "stamps.txt"
    argv = [env.python, "-S", "-I", env.generator, str(total), str(stamps)]
    procs = []
    with open(target, "wb") as sink:
        try:
            if pipe:
                cat = _procs.launch(["cat"], cwd=str(workdir), env=dict(os.environ), stdin=subprocess.PIPE, stdout=sink)
                gen = _procs.launch(argv, cwd=str(workdir), env=dict(os.environ), stdout=cat.stdin)
                cat.stdin.close()
                procs = [gen, cat]
            else:
                gen = _procs.launch(argv, cwd=str(workdir), env=dict(os.environ), stdout=sink)
                procs = [gen]
            done = _wait_size([target], total, timeout)
            for p in procs:
                p.wait(timeout)
        finally:
            for p in procs:
                if p.poll() is None:
                    _procs.kill_tree(p.pid, p)
                _procs.forget(p)
    result = _capture_result(stamps, done, total, timeout)
    target.unlink(missing_ok=True)
    return result


def capture_daemon(env: Env, kind: str, total: int, *, timeout: float) -> dict:
    """The generator as the daemon's only program, its stdout captured to a file by the daemon."""
    d = env.daemon(kind, f"{kind}-capture")
    workdir = d.workdir
    target = workdir / "capture.log"
    stamps = workdir / "stamps.txt"
    program = Program("gen", [env.python, "-S", "-I", env.generator, str(total), str(stamps)],
                      autostart=False, autorestart="false", startsecs=0, stopwaitsecs=1,
                      stdout=str(target), stdout_maxbytes=4 << 30)
    try:
        d.launch([program])
        d.wait_ready(30)
        pid = d.proc.pid
        sched0, ticks0 = _procs.sched_seconds(pid), _procs.cpu_seconds(pid)
        d.start_program("gen")
        files = [target] + [Path(f"{target}.{i}") for i in range(1, 11)]
        done = _wait_size(files, total, timeout)
        sched1, ticks1 = _procs.sched_seconds(pid), _procs.cpu_seconds(pid)
        if done is not None:  # let the writer stamp its end before the daemon is killed
            _procs.wait_until(lambda: _stamps(stamps, "end"), 30.0, 0.01)
        result = _capture_result(stamps, done, total, timeout)
        result["daemon_cpu_s"] = (sched1 - sched0) if sched0 is not None and sched1 is not None else ticks1 - ticks0
        result["daemon_cpu_s_ticks"] = ticks1 - ticks0
    finally:
        d.cleanup()
        for f in workdir.glob("capture.log*"):
            f.unlink(missing_ok=True)
    return result


def _wait_size(files: list[Path], total: int, timeout: float) -> Optional[float]:
    """Wall time (time.time()) when the files hold ``total`` bytes between them; None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        size = 0
        for f in files:
            try:
                size += f.stat().st_size
            except OSError:
                pass
        if size >= total:
            return time.time()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


def _capture_result(stamps: Path, done: Optional[float], total: int, timeout: float) -> dict:
    starts, ends = _stamps(stamps, "start"), _stamps(stamps, "end")
    if not starts:
        raise RuntimeError("the log generator never started")
    if done is None:
        return {"capture_s": {"capped_at": timeout}, "writer_s": (ends[0] - starts[0]) if ends else None}
    return {"capture_s": done - starts[0], "writer_s": (ends[0] - starts[0]) if ends else None,
            "mb_per_s": total / 2**20 / max(done - starts[0], 1e-9)}
