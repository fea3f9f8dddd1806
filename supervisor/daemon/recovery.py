"""Crash recovery: stop whatever a killed superd left running, before anything starts.

A state file left behind means the superd that wrote it did not get to
clean up (SIGKILL, OOM killer, power loss). Each recorded run that still
lives is stopped with its program's stop settings: a process counts only
when its pid *and* start time match the record, so a pid the kernel has
since given to an unrelated process is left alone; a recorded cgroup is
authoritative (nothing gets into it but the program's own descendants).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import cgroups
from .kill import send, send_group, terminate
from .procfs import run_token, start_time
from .runstate import RunDir, boot_id
from ..config import Config

log = logging.getLogger("superd")

#: Stop settings for a leftover whose program is no longer in the config.
DEFAULT_SIGNAL = signal.SIGTERM
DEFAULT_WAIT = 10.0
_ROOT_NAME = re.compile(r"superd-[0-9]+(-[0-9]+)?")

@dataclass
class Leftover:
    """What is left of one recorded run, with the stop settings to apply."""

    name: str
    sig: int
    wait: float
    asgroup: bool
    leader: Optional[tuple[int, int]] = None          # (pid, start time)
    pgid: Optional[int] = None
    cgroup: Optional[str] = None
    members: list[tuple[int, int]] = field(default_factory=list)  # found by run token
    killed: bool = False

    def alive(self) -> bool:
        if self.cgroup is not None and cgroups.populated(self.cgroup):
            return True
        return any(start_time(pid) == start for pid, start in self._processes())

    def _processes(self) -> list[tuple[int, int]]:
        return ([self.leader] if self.leader else []) + self.members

    def describe(self) -> str:
        parts = []
        if self.leader:
            parts.append(f"pid {self.leader[0]}")
        if self.members:
            parts.append(f"{len(self.members)} process{'es' * (len(self.members) != 1)} carrying its run id")
        if self.cgroup is not None:
            count = len(cgroups.all_procs(self.cgroup))
            parts.append(f"cgroup {self.cgroup} ({count} process{'es' * (count != 1)})")
        return f"{self.name}: " + ", ".join(parts)

    def _live(self) -> list[int]:
        return [pid for pid, start in self._processes() if start_time(pid) == start]

    def signal(self, sig: int) -> None:
        """``sig`` to everything left, each process once."""
        done: set[int] = set()
        group = None
        if self.leader and start_time(self.leader[0]) == self.leader[1]:
            if self.asgroup and self.pgid is not None:
                send_group(self.pgid, sig)
                group = self.pgid
            else:
                send(self.leader[0], sig)
            done.add(self.leader[0])
        rest = self._live() + (cgroups.all_procs(self.cgroup) if self.cgroup is not None else [])
        for pid in rest:
            if pid in done:
                continue
            done.add(pid)
            if group is not None:
                try:
                    if os.getpgid(pid) == group:
                        continue
                except OSError:
                    continue
            send(pid, sig)

    def kill(self) -> None:
        self.killed = True
        if self.cgroup is not None:
            cgroups.kill(self.cgroup)
        if self.leader and self.pgid is not None and start_time(self.leader[0]) == self.leader[1]:
            send_group(self.pgid, signal.SIGKILL)
        for pid in self._live():
            send(pid, signal.SIGKILL)


def _settings(config: Config, name: str) -> tuple[int, float, bool]:
    instance = config.instance(name)
    if instance is None:
        return DEFAULT_SIGNAL, DEFAULT_WAIT, False
    # A drain sequence's last signal is the one that ends the program.
    signals = [step.signal for step in instance.stop_plan() if step.signal is not None]
    return signals[-1] if signals else DEFAULT_SIGNAL, instance.stop_time(), instance.program.stopasgroup


def _safe_root(state: dict) -> Optional[str]:
    """The old superd's cgroup, when the record names one that can only be superd's."""
    root = state.get("cgroup_root")
    if not isinstance(root, str) or not os.path.isabs(root):
        return None
    root = os.path.normpath(root)
    if not _ROOT_NAME.fullmatch(os.path.basename(root)) or not os.path.isdir(root):
        return None
    if not os.path.exists(os.path.join(root, "cgroup.procs")):
        return None
    return root


def _within(path: object, root: Optional[str]) -> Optional[str]:
    if root is None or not isinstance(path, str):
        return None
    path = os.path.normpath(path)
    if os.path.dirname(path) != root or not os.path.isdir(path):
        return None
    return path


def find_leftovers(state: dict, config: Config) -> list[Leftover]:
    """The recorded runs of which something still lives."""
    root = _safe_root(state)
    old = state.get("superd") if isinstance(state.get("superd"), dict) else {}
    old_start = old.get("start") if isinstance(old.get("start"), int) else None
    entries = [e for e in state.get("processes", []) if isinstance(e, dict) and isinstance(e.get("name"), str)]
    leftovers: list[Leftover] = []
    by_token: dict[str, Leftover] = {}
    covered: set[str] = set()
    for entry in entries:
        name = entry["name"]
        sig, wait, asgroup = _settings(config, name)
        item = Leftover(name, sig, wait, asgroup)
        pid, start, pgid = entry.get("pid"), entry.get("start"), entry.get("pgid")
        if isinstance(pid, int) and pid > 0 and isinstance(start, int):
            now = start_time(pid)
            if now == start:
                item.leader = (pid, start)
                if isinstance(pgid, int) and pgid > 0:
                    try:
                        if os.getpgid(pid) == pgid:
                            item.pgid = pgid
                    except OSError:
                        pass
            elif now is not None:
                log.info("recovery: pid %d recorded for %s now belongs to another process "
                         "(its start time differs): left alone", pid, name)
        item.cgroup = _within(entry.get("cgroup"), root)
        if item.cgroup is not None:
            covered.add(item.cgroup)
        elif isinstance(entry.get("token"), str):
            by_token[entry["token"]] = item
        leftovers.append(item)
    if by_token:
        _find_by_token(by_token, old_start)
    # What else is in the old superd's cgroup (a crash between a spawn and the
    # state file, a run being stopped): every populated cgroup below it.
    if root is not None:
        for entry in os.scandir(root):
            if entry.is_dir(follow_symlinks=False) and entry.path not in covered:
                name = entry.name
                if name.startswith("prog-") and "." in name:
                    name = name[len("prog-"):]
                sig, wait, asgroup = _settings(config, name)
                leftovers.append(Leftover(name, sig, wait, asgroup, cgroup=entry.path))
    return [item for item in leftovers if item.alive()]


def _find_by_token(wanted: dict[str, Leftover], not_before: Optional[int]) -> None:
    """Every process on the machine whose environment carries one of the run ids
    (the fallback mode's record of escaped descendants)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == os.getpid():
            continue
        token = run_token(pid)
        if token is None or token not in wanted:
            continue
        start = start_time(pid)
        if start is None or (not_before is not None and start < not_before):
            continue
        item = wanted[token]
        if item.leader is None or item.leader[0] != pid:
            item.members.append((pid, start))


async def recover(rundir: RunDir, config: Config, hurry: Callable[[], bool] = lambda: False) -> None:
    """Stop what the previous superd of this run directory left running."""
    state = rundir.read()
    if state is None:
        return
    old = state.get("superd") if isinstance(state.get("superd"), dict) else {}
    recorded_boot, this_boot = old.get("boot"), boot_id()
    if recorded_boot and this_boot and recorded_boot != this_boot:
        # A run_dir on persistent storage survived a reboot: nothing it names
        # can still be running, and its pids may now be anyone's.
        log.info("recovery: the state file is from an earlier boot; nothing to stop")
        rundir.remove()
        return
    leftovers = find_leftovers(state, config)
    root = _safe_root(state)
    if leftovers:
        began = time.monotonic()
        log.warning(
            "recovery: the previous superd (pid %s) ended without stopping its programs; "
            "stopping what is left of them first: %s",
            old.get("pid", "?"), "; ".join(item.describe() for item in leftovers),
        )
        stuck = await terminate(leftovers, hurry, label="recovery: ")
        if stuck:
            log.error("recovery: could not stop %s", "; ".join(item.describe() for item in stuck))
        else:
            log.info("recovery: stopped %d leftover run%s in %.2fs", len(leftovers), "s" * (len(leftovers) != 1),
                     time.monotonic() - began)
    else:
        log.info("recovery: the previous superd (pid %s) left nothing running", old.get("pid", "?"))
    if root is not None and not cgroups.remove(root):
        log.warning("recovery: cannot remove the old cgroup %s", root)
    rundir.remove()
