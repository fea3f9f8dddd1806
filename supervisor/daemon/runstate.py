"""Crash-only restart: the run directory's lock and state file, and the stop
of whatever a killed superd left running.

``{run_dir}/superd.lock`` is flock'ed for superd's whole life: a second superd
with the same run directory refuses to start. ``{run_dir}/superd.state`` lists
every live run (instance, leader pid and start time, process group, cgroup,
run token); it is replaced atomically (temp file, fsync, rename) whenever a
pid appears or goes, at most once per event-loop turn.

When superd starts and finds a state file, the superd that wrote it did not
get to clean up (SIGKILL, OOM killer, power loss). Before anything starts,
each recorded run that still lives is stopped with its program's stop
settings: a process counts only when its pid *and* start time match the
record, so a pid the kernel has since given to an unrelated process is left
alone; a recorded cgroup is authoritative (nothing gets into it but the
program's own descendants).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Optional

from . import cgroups, tracking
from ..config.model import Config
from ..core.process import NO_CONT_AFTER

log = logging.getLogger("superd")

LOCK_NAME = "superd.lock"
STATE_NAME = "superd.state"
VERSION = 1
#: Stop settings for a leftover whose program is no longer in the config.
DEFAULT_SIGNAL = signal.SIGTERM
DEFAULT_WAIT = 10.0
#: After SIGKILL, how long to wait for leftovers to go before giving up.
KILL_WAIT = 2.0
_ROOT_NAME = re.compile(r"superd-[0-9]+(-[0-9]+)?")


class Refused(Exception):
    """superd must not start (another one owns the run directory)."""


class RunDir:
    """The lock and the state file in ``[superd] run_dir``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state_path = os.path.join(path, STATE_NAME)
        self.lock_path = os.path.join(path, LOCK_NAME)
        self._lock_fd: Optional[int] = None

    def lock(self) -> None:
        """Take the lock, or raise :class:`Refused` naming the holder."""
        try:
            os.makedirs(self.path, mode=0o755, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise Refused(f"cannot use run_dir {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 32, 0).decode().strip()
            except (OSError, UnicodeDecodeError):
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise Refused(f"another superd{who} is running with run_dir {self.path} "
                              f"(its lock {self.lock_path} is held)") from None
            raise Refused(f"cannot lock {self.lock_path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        # The file stays: removing it would let two superds lock two different
        # files of the same name.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def read(self) -> Optional[dict]:
        try:
            with open(self.state_path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable state file %s: %s", self.state_path, exc)
            return None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            log.warning("ignoring the state file %s: not one this superd understands", self.state_path)
            return None
        return data

    def write(self, data: dict) -> None:
        """Replace the state file atomically: temp file, fsync, rename."""
        temp = f"{self.state_path}.{os.getpid()}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, json.dumps(data, separators=(",", ":")).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, self.state_path)
        except OSError as exc:
            log.error("cannot write the state file %s: %s", self.state_path, exc.strerror or exc)
            try:
                os.unlink(temp)
            except OSError:
                pass

    def remove(self) -> None:
        try:
            os.unlink(self.state_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the state file %s: %s", self.state_path, exc.strerror)


def boot_id() -> Optional[str]:
    """This boot's identity: pids and start times only mean something within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def superd_record() -> dict:
    return {"pid": os.getpid(), "start": tracking.start_time(os.getpid()), "boot": boot_id()}


# --------------------------------------------------------------------------
# Stopping what a killed superd left behind

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
    deadline: float = 0.0

    def alive(self) -> bool:
        if self.cgroup is not None and cgroups.populated(self.cgroup):
            return True
        return any(tracking.start_time(pid) == start for pid, start in self._processes())

    def _processes(self) -> list[tuple[int, int]]:
        return ([self.leader] if self.leader else []) + self.members

    def describe(self) -> str:
        parts = []
        if self.leader:
            parts.append(f"pid {self.leader[0]}")
        if self.members:
            parts.append(f"{len(self.members)} process(es) carrying its run id")
        if self.cgroup is not None:
            parts.append(f"cgroup {self.cgroup} ({len(cgroups.all_procs(self.cgroup))} process(es))")
        return f"{self.name}: " + ", ".join(parts)

    def _live(self) -> list[int]:
        return [pid for pid, start in self._processes() if tracking.start_time(pid) == start]

    def signal(self, sig: int) -> None:
        """``sig`` to everything left, each process once."""
        done: set[int] = set()
        group = None
        if self.leader and tracking.start_time(self.leader[0]) == self.leader[1]:
            if self.asgroup and self.pgid is not None:
                _killpg(self.pgid, sig)
                group = self.pgid
            else:
                _kill(self.leader[0], sig)
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
            _kill(pid, sig)

    def kill(self) -> None:
        self.killed = True
        if self.cgroup is not None:
            cgroups.kill(self.cgroup)
        if self.leader and self.pgid is not None and tracking.start_time(self.leader[0]) == self.leader[1]:
            _killpg(self.pgid, signal.SIGKILL)
        for pid in self._live():
            _kill(pid, signal.SIGKILL)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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
            now = tracking.start_time(pid)
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
        token = tracking.run_token(pid)
        if token is None or token not in wanted:
            continue
        start = tracking.start_time(pid)
        if start is None or (not_before is not None and start < not_before):
            continue
        item = wanted[token]
        if item.leader is None or item.leader[0] != pid:
            item.members.append((pid, start))


async def stop_leftovers(
    leftovers: list[Leftover],
    hurry: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Leftover]:
    """Stop them all at once, each with its own signal and wait; SIGKILL at
    each one's deadline. Returns those that still live at the end."""
    now = time.monotonic()
    for item in leftovers:
        item.deadline = now + item.wait
        item.signal(item.sig)
        if item.sig not in NO_CONT_AFTER:
            item.signal(signal.SIGCONT)
    delay = 0.005
    give_up = None
    while True:
        live = [item for item in leftovers if item.alive()]
        if not live:
            return []
        now = time.monotonic()
        for item in live:
            if not item.killed and (now >= item.deadline or hurry()):
                log.warning("recovery: %s still alive after %gs: SIGKILL", item.name, item.wait)
                item.kill()
        if all(item.killed for item in live):
            give_up = give_up or now + KILL_WAIT
            if now >= give_up:
                return live
        await sleep(delay)
        delay = min(delay * 2, 0.1)


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
        stuck = await stop_leftovers(leftovers, hurry)
        if stuck:
            log.error("recovery: could not stop %s", "; ".join(item.describe() for item in stuck))
        else:
            log.info("recovery: stopped %d leftover run(s) in %.2fs", len(leftovers), time.monotonic() - began)
    else:
        log.info("recovery: the previous superd (pid %s) left nothing running", old.get("pid", "?"))
    if root is not None and not cgroups.remove(root):
        log.warning("recovery: cannot remove the old cgroup %s", root)
    rundir.remove()
