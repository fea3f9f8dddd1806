"""N programs from start to stop: the floor launcher, and one daemon's whole life.

Every wait is bounded; every process is killed (by pid, with its descendants)
when the function returns or fails.
"""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psutil

import _procs
from _daemons import Daemon, Program, clean_env, xmlrpc_call
from _scenarios import Env

LAUNCHER = Path(__file__).resolve().parent / "bare_launcher.py"


@dataclass
class Limits:
    """Bounds of one lifecycle run, grown with N so that 10,000 programs fit in them."""

    start_timeout: float   # launch -> all running
    settle_timeout: float  # all running -> every program in its TERM-ignoring sleep
    status_budget: float   # after 5 status runs, stop once this many seconds are spent
    stop_cap: float        # a stop still going after this long is reported as "> cap"
    poll: float            # control-channel polling interval while starting

    @classmethod
    def for_n(cls, n: int, *, poll: float, status_budget: float, stop_cap: float) -> "Limits":
        # A status reply lists all N programs: polling a 10,000-program daemon every 10 ms
        # would load it with the bench's own requests, so the interval grows with N
        # (10 ms per 1000 programs above 1000, under 1 % of the start it times).
        return cls(start_timeout=60 + 0.2 * n, settle_timeout=30 + 0.01 * n,
                   status_budget=status_budget + 0.002 * n, stop_cap=stop_cap + 0.01 * n,
                   poll=poll * max(1.0, n / 1000))


def programs(env: Env, n: int, output: str, pool_size: int = 0) -> list[Program]:
    """N TERM-ignoring programs: N sections, or N / ``pool_size`` sections with that numprocs."""
    mode = "null" if output == "null" else None
    size = pool_size or 1
    if n % size:
        raise ValueError(f"N={n} is not a multiple of the pool size {size}")
    count = n // size
    width = len(str(count - 1))
    return [Program(f"p{i:0{width}d}", [env.hold], autorestart="unexpected", startsecs=0, stopwaitsecs=1,
                    stdout=mode, stderr=mode, numprocs=size)
            for i in range(count)]


# --------------------------------------------------------------------------- the floor


def floor_start(env: Env, n: int, output: str, timeout: float, cgroups: bool = False) -> float:
    """Seconds from the bare launcher's launch to its word that the N programs were spawned
    (``cgroups``: each in a cgroup of its own, moved into as superd does)."""
    workdir = env.workdir(f"floor-n{n}")
    argv = [*env.launcher_python, str(LAUNCHER), "--n", str(n), "--output", output,
            *(["--cgroups"] if cgroups else []), "--", env.hold]
    with open(workdir / "launcher.stderr", "wb") as err:
        started = time.monotonic()
        proc = _procs.launch(argv, cwd=str(workdir), env=clean_env(), stdout=subprocess.PIPE, stderr=err)
        try:
            line = _read_line(proc.stdout.fileno(), started + timeout)
            elapsed = time.monotonic() - started
            if line != b"spawned":
                raise RuntimeError(f"the bare launcher said {line!r} (exit {proc.poll()}):\n"
                                   f"{(workdir / 'launcher.stderr').read_text(errors='replace')[-2000:]}")
        finally:
            _procs.kill_tree(proc.pid, proc)
            _procs.forget(proc)
            proc.stdout.close()
            if cgroups:
                _procs.remove_cgroup_tree(f"bench-floor-{proc.pid}")
    return elapsed


def cgroup_floor_possible() -> bool:
    """Can the bench make cgroups (root, a writable cgroup v2)? Then the floor also runs with them."""
    own = _procs.own_cgroup()
    return bool(own) and os.access(own, os.W_OK) and os.geteuid() == 0


def _read_line(fd: int, deadline: float) -> bytes:
    """One line from ``fd``, without its newline; what came by the deadline or EOF otherwise."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def file_creation_floor(env: Env, n: int) -> float:
    """Seconds to create the 2N log files a capturing supervisor writes N programs' output to."""
    files = env.workdir(f"files-n{n}")
    started = time.perf_counter()
    for i in range(n):
        for stream in ("stdout", "stderr"):
            fd = os.open(files / f"p{i:05d}-{stream}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.close(fd)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- a daemon's life


def lifecycle(env: Env, kind: str, progs: list[Program], limits: Limits, *, idle: float, status_calls: int,
              reload: bool, stop: bool, xmlrpc_calls: int = 0) -> dict:
    """Start the programs, sit idle, run the status command, call XML-RPC
    ``supervisor.getAllProcessInfo`` over HTTP (``xmlrpc_calls`` > 0, for a daemon that
    serves it), reload twice, SIGTERM the daemon.

    Returns ``start_s``, ``start_daemon_s``, ``fds``, ``idle_cpu_pct``, ``idle_cpu_pct_ticks``,
    ``idle_wakeups_per_s``, ``rss_mb``, ``uss_mb``, ``status_s`` (list), ``xmlrpc_status_s`` (list),
    ``reload_same_s``, ``reload_changed_s``, and ``stop_s`` (a number, or a dict with ``capped_at``
    when the cap was hit).
    """
    n = sum(p.numprocs for p in progs)
    d = env.daemon(kind, f"{kind}-n{n}")
    out: dict = {}
    try:
        d.launch(progs)
        out["start_s"] = _time_all_running(d, n, limits.poll, limits.start_timeout)
        out["start_daemon_s"] = _procs.wait_until(lambda: d.daemon_side_all_running(), 5.0 + n / 1000, 0.05)
        _settle(d, n, limits.settle_timeout)
        out["fds"] = len(os.listdir(f"/proc/{d.proc.pid}/fd"))

        if idle > 0:
            time.sleep(1.0)  # let start-up work finish
            out.update(_idle(d, idle))

        if status_calls > 0:
            out["status_s"] = _status_calls(d, n, status_calls, limits.status_budget)

        if xmlrpc_calls > 0 and d.http_rpc_socket():
            out["xmlrpc_status_s"] = _xmlrpc_status_calls(d, n, xmlrpc_calls, limits.status_budget)

        if reload:
            out.update(_reloads(env, d, progs, limits))

        if stop:
            out["stop_s"] = _stop(d, n, limits.stop_cap)
    finally:
        d.cleanup()
    return out


def _settle(d: Daemon, n: int, timeout: float) -> None:
    """Every program must have exec'd into its TERM-ignoring sleep before anything else."""
    def settled():
        kids = [p for p in _procs.descendants(d.proc.pid) if _name(p) == "sleep"]
        return len(kids) >= n and all(_procs.ignores_sigterm(p) for p in kids)

    if not _procs.wait_until(settled, timeout, 0.05):
        raise RuntimeError(f"{d.kind}: the {n} programs did not all reach their TERM-ignoring sleep")
    _procs.remember(d.proc.pid)


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


def _run_command(d: Daemon, argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of one control command run as a subprocess, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=d.env(), cwd=str(d.workdir), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return time.perf_counter() - started, done


def _status_calls(d: Daemon, n: int, calls: int, budget: float) -> list[float]:
    """Wall times of ``calls`` runs of the status command; after 5 runs, stop once
    ``budget`` seconds are spent (supervisorctl takes seconds with 1000 programs)."""
    times: list[float] = []
    for i in range(calls):
        if i >= 5 and sum(times) > budget:
            break
        elapsed, done = _run_command(d, d.status_argv())
        times.append(elapsed)
        if i == 0:
            lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line.strip()]
            if len(lines) < n:
                raise RuntimeError(f"{d.kind}: status printed {len(lines)} lines for {n} programs "
                                   f"(exit {done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    return times


def _xmlrpc_status_calls(d: Daemon, n: int, calls: int, budget: float) -> list[float]:
    """Wall times of ``calls`` XML-RPC ``supervisor.getAllProcessInfo`` calls from the bench
    itself over the daemon's HTTP unix socket, each on a fresh connection (request, the
    daemon's work, the reply's transfer and xmlrpc.client's parsing; no interpreter start).
    After 5 calls, stop once ``budget`` seconds are spent."""
    path = d.http_rpc_socket()
    times: list[float] = []
    for i in range(calls):
        if i >= 5 and sum(times) > budget:
            break
        started = time.perf_counter()
        reply = xmlrpc_call(path, "supervisor.getAllProcessInfo", timeout=300)
        times.append(time.perf_counter() - started)
        if i == 0 and len(reply) != n:
            raise RuntimeError(f"{d.kind}: getAllProcessInfo over HTTP listed {len(reply)} processes for {n}")
    return times


def _reloads(env: Env, d: Daemon, progs: list[Program], limits: Limits) -> dict:
    """The reload command (superctl reload, supervisorctl update) with the config unchanged,
    then with the first program's command changed; the changed program is running (and
    ignoring SIGTERM) again before this returns."""
    same, done = _run_command(d, d.reload_argv())
    _check_reload(d, done, None)
    changed_progs = [dataclasses.replace(progs[0], command=[env.hold, "reloaded"]), *progs[1:]]
    d.write_config(changed_progs)
    changed, done = _run_command(d, d.reload_argv())
    _check_reload(d, done, progs[0].name)
    n = d.instances()
    _time_all_running(d, n, limits.poll, limits.start_timeout)
    _settle(d, n, limits.settle_timeout)
    return {"reload_same_s": same, "reload_changed_s": changed}


def _check_reload(d: Daemon, done: subprocess.CompletedProcess, changed: Optional[str]) -> None:
    said = done.stdout.decode(errors="replace")
    if done.returncode != 0 or (changed is not None and changed not in said):
        raise RuntimeError(f"{d.kind}: reload (expected change: {changed or 'none'}) exited {done.returncode}: "
                           f"{said[-500:]} {done.stderr.decode(errors='replace')[-500:]}")


def _stop(d: Daemon, n: int, cap: float) -> object:
    """SIGTERM the daemon; seconds until it exits, or a capped record."""
    d.check_alive()
    progs = _procs.descendants(d.proc.pid)
    t0 = time.monotonic()
    os.kill(d.proc.pid, signal.SIGTERM)
    try:
        d.proc.wait(cap)
        return time.monotonic() - t0
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - t0
        alive = sum(1 for p in progs if _alive(p) and _name(p) == "sleep")
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
