"""Log capture: generators writing numbered lines, into files straight or through a daemon.

One stream: one generator writes all the bytes, timed from its own start stamp.
Many streams: W generators each write 1/W of the bytes; a gate (a FIFO they
all open) lets them begin at one moment once all of them run, so that the
time measured is the writing and its capture, not W interpreter starts.
Every process is killed (by pid, with its descendants) when a function ends.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

import _procs
from _daemons import Daemon, Program
from _scenarios import LINE_BYTES, Env, read_stamps


def _generator(env: Env, nbytes: int, stamps: Path, gate: Optional[Path] = None) -> list[str]:
    return [env.python, "-S", "-I", env.generator, str(nbytes), str(stamps), *([str(gate)] if gate else [])]


def share(total: int, writers: int) -> int:
    """Bytes each of ``writers`` generators writes: whole lines, ``total`` between them."""
    return total // writers // LINE_BYTES * LINE_BYTES


# --------------------------------------------------------------------------- one stream


def capture_raw(env: Env, total: int, *, pipe: bool, timeout: float) -> dict:
    """The generator with its stdout straight into a file (``pipe``: through ``cat``)."""
    workdir = env.workdir("raw-pipe" if pipe else "raw-file")
    target = workdir / "out.log"
    stamps = workdir / "stamps.txt"
    argv = _generator(env, total, stamps)
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
            done = _wait_size(lambda: [target], total, timeout)
            for p in procs:
                p.wait(timeout)
        finally:
            _end(procs)
    result = _result(stamps, read_stamps(stamps, "start")[:1], done, total, timeout)
    target.unlink(missing_ok=True)
    return result


def capture_daemon(env: Env, kind: str, total: int, *, timeout: float) -> dict:
    """The generator as the daemon's only program, its stdout captured to a file by the daemon."""
    d = env.daemon(kind, f"{kind}-capture")
    target = d.workdir / "capture.log"
    stamps = d.workdir / "stamps.txt"
    program = Program("gen", _generator(env, total, stamps), autostart=False, autorestart="false", startsecs=0,
                      stopwaitsecs=1, stdout=str(target), stdout_maxbytes=4 << 30)
    try:
        d.launch([program])
        d.wait_ready(30)
        cpu0 = _cpu(d)
        d.start_program("gen")
        done = _wait_size(lambda: [target, *(Path(f"{target}.{i}") for i in range(1, 11))], total, timeout)
        cpu1 = _cpu(d)
        if done is not None:  # let the writer stamp its end before the daemon is killed
            _procs.wait_until(lambda: read_stamps(stamps, "end"), 30.0, 0.01)
        result = _result(stamps, read_stamps(stamps, "start")[:1], done, total, timeout)
        result.update(_cpu_result(cpu0, cpu1, total))
    finally:
        d.cleanup()
        for f in d.workdir.glob("capture.log*"):
            f.unlink(missing_ok=True)
    return result


# --------------------------------------------------------------------------- many streams


def capture_many_raw(env: Env, total: int, writers: int, *, timeout: float) -> dict:
    """``writers`` generators at once, each with its stdout straight into a file of its own."""
    workdir = env.workdir("raw-files")
    stamps, gate = workdir / "stamps.txt", _fifo(workdir)
    each = share(total, writers)
    files = [workdir / f"w{i:03d}-stdout.log" for i in range(writers)]
    procs = []
    try:
        for path in files:
            with open(path, "wb") as sink:
                procs.append(_procs.launch(_generator(env, each, stamps, gate), cwd=str(workdir),
                                           env=dict(os.environ), stdout=sink))
        result = _through_gate(None, gate, stamps, writers, lambda: files, each * writers, timeout)
    finally:
        _end(procs)
        for path in files:
            path.unlink(missing_ok=True)
    return result


def capture_many_daemon(env: Env, kind: str, total: int, writers: int, *, timeout: float) -> dict:
    """``writers`` generators at once as the daemon's programs, their stdout captured by the
    daemon into its default ("auto") log files."""
    d = env.daemon(kind, f"{kind}-capture{writers}")
    stamps, gate = d.workdir / "stamps.txt", _fifo(d.workdir)
    each = share(total, writers)
    progs = [Program(f"w{i:03d}", _generator(env, each, stamps, gate), autorestart="false", startsecs=0,
                     stopwaitsecs=1) for i in range(writers)]
    logs = d.workdir / "logs"
    try:
        d.launch(progs)
        result = _through_gate(d, gate, stamps, writers, lambda: list(logs.glob("w*stdout*")), each * writers,
                               timeout)
    finally:
        d.cleanup()
        for path in logs.glob("w*"):
            path.unlink(missing_ok=True)
    return result


def _fifo(workdir: Path) -> Path:
    gate = workdir / "gate"
    os.mkfifo(gate)
    return gate


def _through_gate(d: Optional[Daemon], gate: Path, stamps: Path, writers: int, files: Callable[[], list[Path]],
                  total: int, timeout: float) -> dict:
    """Open the gate once every writer waits at it; time from then until ``files()`` hold
    ``total`` bytes between them; with a daemon ``d``, its CPU time meanwhile."""
    deadline = time.monotonic() + 60 + writers

    def all_waiting() -> bool:
        if d is not None:
            d.check_alive()
        return len(read_stamps(stamps, "ready")) >= writers

    if not _procs.wait_until(all_waiting, deadline - time.monotonic(), 0.01):
        raise RuntimeError(f"{len(read_stamps(stamps, 'ready'))} of {writers} log writers ran")
    cpu0 = _cpu(d) if d is not None else None
    opened = time.time()
    fd = _open_gate(gate, deadline)
    try:
        passed = _procs.wait_until(lambda: len(read_stamps(stamps, "start")) >= writers, 30.0, 0.005)
    finally:
        os.close(fd)
    if not passed:
        raise RuntimeError(f"only {len(read_stamps(stamps, 'start'))} of {writers} log writers passed the gate")
    done = _wait_size(files, total, timeout)
    cpu1 = _cpu(d) if d is not None else None
    if done is not None:
        _procs.wait_until(lambda: len(read_stamps(stamps, "end")) >= writers, 30.0, 0.01)
    result = _result(stamps, [opened], done, total, timeout)
    if cpu0 is not None:
        result.update(_cpu_result(cpu0, cpu1, total))
    return result


def _open_gate(gate: Path, deadline: float) -> int:
    """The FIFO's write end: opening it wakes every writer blocked in opening its read end."""
    while True:
        try:
            return os.open(gate, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: no reader has it open yet
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.001)


# --------------------------------------------------------------------------- shared


def _cpu(d: Daemon) -> tuple[Optional[float], float]:
    """The daemon's CPU seconds: (scheduler's nanosecond count, clock ticks)."""
    return _procs.sched_seconds(d.proc.pid), _procs.cpu_seconds(d.proc.pid)


def _cpu_result(cpu0: tuple, cpu1: tuple, total: int) -> dict:
    (sched0, ticks0), (sched1, ticks1) = cpu0, cpu1
    seconds = (sched1 - sched0) if sched0 is not None and sched1 is not None else ticks1 - ticks0
    return {"daemon_cpu_s": seconds, "daemon_cpu_s_ticks": ticks1 - ticks0,
            "cpu_ms_per_mb": seconds * 1000 / (total / 2**20)}


def _end(procs: list) -> None:
    for p in procs:
        if p.poll() is None:
            _procs.kill_tree(p.pid, p)
        _procs.forget(p)


def _wait_size(files: Callable[[], list[Path]], total: int, timeout: float) -> Optional[float]:
    """Wall time (time.time()) when ``files()`` (looked at anew each time: a daemon creates
    its files meanwhile) hold ``total`` bytes between them; None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        size = 0
        for f in files():
            try:
                size += f.stat().st_size
            except OSError:
                pass
        if size >= total:
            return time.time()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


def _result(stamps: Path, began: list[float], done: Optional[float], total: int, timeout: float) -> dict:
    """capture_s from ``began`` (the writer's start stamp, or when the gate opened) until all
    bytes were in the files; writer_s until the last writer's end stamp; mb_per_s."""
    if not began:
        raise RuntimeError("the log generator never started")
    ends = read_stamps(stamps, "end")
    writer = (max(ends) - began[0]) if ends else None
    if done is None:
        return {"capture_s": {"capped_at": timeout}, "writer_s": writer}
    return {"capture_s": done - began[0], "writer_s": writer,
            "mb_per_s": total / 2**20 / max(done - began[0], 1e-9)}
