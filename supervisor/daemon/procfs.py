"""What superd reads about processes from ``/proc``: start times, run ids,
descendants, process groups and supplementary groups.

Plain file reads, no third-party library: the shutdown and the reaper use
these, and they must work without importing anything new.
"""

from __future__ import annotations

import os
import time
from typing import Optional

#: The environment variable that marks every process of one run.
RUN_ID = "SUPERD_RUN_ID"
_RUN_ID_BYTES = RUN_ID.encode() + b"="


def start_time(pid: int, zombie: bool = False) -> Optional[int]:
    """The start time of ``pid`` in clock ticks since boot (field 22 of
    /proc/PID/stat); None when it is gone, or a zombie (unless ``zombie``).
    With the pid it names a process for good: a reused pid starts later."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if not fields or (fields[0] in (b"Z", b"X") and not zombie):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


#: One clock tick of /proc/PID/stat's start time, in nanoseconds of CLOCK_BOOTTIME.
_TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")


def boot_ns() -> int:
    """CLOCK_BOOTTIME, the clock a process's start time in /proc/PID/stat counts."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def start_between(before: int, after: int) -> Optional[int]:
    """The start time (as :func:`start_time` reads it) of a process forked
    between two :func:`boot_ns` readings, when both fall within one clock
    tick (a spawn takes well under one): it is that tick. None otherwise.
    It spares a read of /proc/PID/stat per spawn."""
    tick = before // _TICK_NS
    return tick if after // _TICK_NS == tick else None


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a job-control signal (SIGSTOP, SIGTSTP,
    ...): state "T" in /proc/PID/stat ("t", a tracer's stop, is not a pause)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2:][:1] == b"T"


def run_token(pid: int) -> Optional[str]:
    """The ``SUPERD_RUN_ID`` in the environment ``pid`` was started with."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(_RUN_ID_BYTES):
            return item[len(_RUN_ID_BYTES):].decode(errors="replace")
    return None


def _parent(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return None if fields[0] in (b"Z", b"X") else int(fields[1])
    except (IndexError, ValueError):
        return None


def _childless(pid: int) -> bool:
    """True when ``pid`` surely has no child, from its threads' ``children``
    lists (a few reads, where scanning /proc reads a file per process on the
    machine); False when it has one, or that cannot be told."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                if f.read().strip():
                    return False
    except OSError:  # no CONFIG_PROC_CHILDREN, or out of descriptors: scan
        return False
    return True


def descendants(root: Optional[int] = None) -> list[int]:
    """Every live descendant of ``root`` (superd by default): children,
    grandchildren and orphans it adopted as a subreaper. Zombies are left
    out (they are dead; the reaper collects them)."""
    root = os.getpid() if root is None else root
    if _childless(root):
        return []  # an orphan is adopted by its subreaper: no child, no descendant
    children: dict[int, list[int]] = {}
    names = os.listdir("/proc")  # raises: out of descriptors is not "none left"
    for name in names:
        if name.isdigit():
            parent = _parent(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def pgid_of(pid: int) -> Optional[int]:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def supplementary_groups(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except OSError:
        pass
    return set()
