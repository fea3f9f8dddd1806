"""Process bookkeeping for the benchmark: launch, watch, and always clean up by pid.

Everything the bench starts goes through :func:`launch`, which records it in
one registry. :func:`cleanup_all` (run from ``finally``, ``atexit`` and the
signal handlers) freezes each launched process with SIGSTOP so that it cannot
spawn or restart anything, collects it and every descendant as
``psutil.Process`` objects (which refuse to signal a recycled pid), and
SIGKILLs them all. Nothing is ever looked up or killed by name.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from typing import Callable, Optional

import psutil

_LAUNCHED: list[subprocess.Popen] = []
#: Descendants seen at some point, by pid: killed at clean-up even if orphaned.
_SEEN: dict[int, psutil.Process] = {}


def launch(argv: list[str], *, cwd: str, env: dict, stdout=None, stderr=None, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """Start ``argv`` in a session of its own (a terminal's Ctrl-C reaches only the bench)."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)
    _LAUNCHED.append(proc)
    remember(proc.pid)
    return proc


def remember(pid: int) -> None:
    """Note ``pid`` and its current descendants for the final clean-up."""
    try:
        root = psutil.Process(pid)
        _SEEN.setdefault(pid, root)
        for child in root.children(recursive=True):
            _SEEN.setdefault(child.pid, child)
    except psutil.Error:
        pass


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def kill_tree(pid: int, popen: Optional[subprocess.Popen] = None) -> None:
    """Freeze ``pid``, SIGKILL it and all its descendants (and any remembered ones), reap it."""
    try:
        root: Optional[psutil.Process] = _SEEN.get(pid) or psutil.Process(pid)
    except psutil.Error:
        root = None
    victims: dict[int, psutil.Process] = {}
    if root is not None and root.is_running():
        _signal(root, signal.SIGSTOP)  # no more forks, no restarts
        for child in descendants(pid):
            _signal(child, signal.SIGSTOP)
            victims[child.pid] = child
        for child in descendants(pid):  # forked between the two looks
            victims.setdefault(child.pid, child)
        victims[pid] = root
    for vpid, vproc in list(victims.items()):
        _signal(vproc, signal.SIGKILL)
    if popen is not None:
        try:
            popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
    psutil.wait_procs([v for v in victims.values() if v.pid != pid], timeout=5)


def cleanup_all() -> None:
    """Kill everything the bench started (each launched process and its tree), then orphans seen."""
    while _LAUNCHED:
        proc = _LAUNCHED.pop()
        if proc.poll() is None:
            kill_tree(proc.pid, proc)
        else:
            for child in descendants(proc.pid):
                _signal(child, signal.SIGKILL)
    kill_seen()


def kill_seen() -> None:
    """SIGKILL every remembered process that still runs (orphans of a killed daemon)."""
    leftovers = []
    for pid, known in list(_SEEN.items()):
        try:
            if known.is_running() and known.status() != psutil.STATUS_ZOMBIE:
                known.kill()  # psutil checks the pid was not reused
                leftovers.append(known)
        except psutil.Error:
            pass
    _SEEN.clear()
    if leftovers:
        psutil.wait_procs(leftovers, timeout=5)


def forget(proc: subprocess.Popen) -> None:
    """``proc`` ended and was reaped by us: no clean-up needed any more."""
    try:
        _LAUNCHED.remove(proc)
    except ValueError:
        pass
    for pid in [p for p, known in _SEEN.items() if not _alive(known)]:
        _SEEN.pop(pid, None)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def install_handlers() -> None:
    """SIGTERM/SIGHUP to the bench behave like Ctrl-C: unwind, clean up, exit."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    atexit.register(cleanup_all)


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.01) -> object:
    """Poll ``condition`` until truthy; returns its value, or None at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of ``pid`` as psutil reports them (clock-tick resolution)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def sched_seconds(pid: int) -> Optional[float]:
    """On-CPU time of all threads of ``pid`` in seconds, from /proc/PID/task/*/schedstat (ns resolution)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def ignores_sigterm(proc: psutil.Process) -> bool:
    """True when ``proc`` has SIGTERM ignored (SigIgn mask in /proc/PID/status)."""
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        return False
    return False


def own_cgroup() -> Optional[str]:
    """This process's cgroup v2 directory, or None without a cgroup v2 hierarchy."""
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line.strip()[3:] for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if " - cgroup2 " in line]
    except OSError:
        return None
    if own is None or not mounts:
        return None
    return mounts[0] + own.rstrip("/")


def remove_cgroup_tree(name: str) -> None:
    """Remove ``name`` below this process's cgroup and the (empty) cgroups in it,
    oldest first: what a SIGKILLed superd or floor launcher left behind."""
    own = own_cgroup()
    root = os.path.join(own, name) if own else None
    if root is None or not os.path.isdir(root):
        return
    for entry in sorted((e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)), key=lambda e: e.inode()):
        try:
            os.rmdir(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(root)
    except OSError:
        pass
