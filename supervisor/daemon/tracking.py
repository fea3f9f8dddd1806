"""Which processes belong to which run of a program: the two tracking modes.

A *run* is one spawn of an instance: its leader (the process superd started)
and everything the leader's descendants became, however they forked, setsid'd
or double-forked. A stop is over when nothing of the run is left.

* :class:`CgroupTracker` (cgroup v2 writable): every instance has its own
  cgroup ``{superd's cgroup}/superd-{pid}/{instance}``, and its processes are
  born in it (see :meth:`CgroupTracker.spawning`). Membership is exact,
  killing is one write to ``cgroup.kill``, emptiness is an inotify event on
  ``cgroup.events``.
* :class:`TreeTracker` (fallback): superd is a child subreaper, so every
  descendant stays a descendant. A run is its process group plus every
  descendant whose environment carries the run's token
  (``SUPERD_RUN_ID``), read from ``/proc/PID/environ`` only when a stop or an
  exit needs to know, never while idle.

Both give every spawn ``SUPERD_RUN_ID={superd pid}.{spawn number}.{instance}``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from . import cgroups
from .kill import group_alive, send, send_group, wait_blocking
from .procfs import RUN_ID, descendants, pgid_of, run_token, start_time

log = logging.getLogger("superd")

#: The environment variable that marks every process of a run.
@dataclass(slots=True)
class Run:
    """One spawn of an instance."""

    name: str
    token: str
    cgroup: Optional[str] = None
    pid: Optional[int] = None
    pgid: Optional[int] = None
    start: Optional[int] = None   # the leader's start time, in clock ticks since boot
    reaped: bool = False          # the leader's exit status is collected: its pid means nothing now

    def record(self) -> dict:
        if self.start is None and self.pid is not None and not self.reaped:
            # Read for the state file, not at the spawn: /proc/PID/stat of a
            # child that is still exec'ing is slow to read.
            self.start = start_time(self.pid, zombie=True)
        return {"name": self.name, "pid": self.pid, "start": self.start, "pgid": self.pgid,
                "cgroup": self.cgroup, "token": self.token}


class Tracker:
    """What both modes offer the supervisor."""

    mode = ""
    #: True when :attr:`on_change` is called as soon as a run may have emptied,
    #: so that nobody needs to poll.
    watched = False

    def __init__(self) -> None:
        self._spawns = 0
        self.on_change: Callable[[str], None] = lambda name: None
        self.description = ""

    def new_run(self, name: str) -> Run:
        self._spawns += 1
        return Run(name, f"{os.getpid()}.{self._spawns}.{name}")

    @contextlib.contextmanager
    def spawning(self, run: Run) -> Iterator[None]:
        """Around the fork of the run's leader."""
        yield

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Around a run of spawns with nothing else in between (a start-up slice)."""
        yield

    def settle(self) -> None:
        """Before superd forks anything that is not a run's leader (a probe, a hook)."""

    def limited(self, run: Run) -> None:
        """The run's cgroup has limits (memory_max, cpu_max, pids_max)."""

    def started(self, run: Run, pid: int) -> None:
        run.pid = run.pgid = pid  # its start time: when the state file first records it

    def alive(self, run: Run) -> bool:
        raise NotImplementedError

    def signal_rest(self, run: Run, sig: int, group_done: bool) -> None:
        raise NotImplementedError

    def kill(self, run: Run) -> None:
        raise NotImplementedError

    def kill_everything(self) -> None:
        pass

    def member(self, run: Run, pid: int) -> Optional[bool]:
        """Is ``pid`` part of the run? None when that cannot be told (it is gone).

        By its run token, which the run's processes inherit (also once orphaned)."""
        if pid == run.pid:
            return True
        if start_time(pid, zombie=True) is None:
            return None
        return run_token(pid) == run.token

    def usage(self, name: str) -> dict:
        return {"cgroup": None, "pids": None, "memory": None, "memory_source": None}

    def forget(self, name: str) -> None:
        """The instance is gone from the config (its runs are over)."""

    def empty(self) -> bool:
        """Nothing of any run is left (for the end of a shutdown)."""
        return True

    def close(self) -> None:
        pass

    def state(self) -> dict:
        return {"mode": self.mode, "cgroup_root": None}


class TreeTracker(Tracker):
    """Process groups + subreaper + run tokens."""

    mode = "tree"

    def __init__(self, reason: str) -> None:
        super().__init__()
        if "cgroups = " not in reason:
            reason = f"no writable cgroup v2: {reason}"
        self.description = f"process groups + subreaper ({reason})"
        self._tokens: dict[tuple[int, int], Optional[str]] = {}  # (pid, start) -> token
        self._snapshot: Optional[list[tuple[int, Optional[int], Optional[str]]]] = None
        self.loop = None

    def _descendants(self) -> list[tuple[int, Optional[int], Optional[str]]]:
        """(pid, pgid, token) of every live descendant of superd; one scan per
        event-loop turn at most, environments read once per process."""
        if self._snapshot is not None:
            return self._snapshot
        result = []
        seen = {}
        for pid in descendants():
            start = start_time(pid)
            if start is None:
                continue  # gone, or a zombie
            key = (pid, start)
            token = self._tokens[key] if key in self._tokens else run_token(pid)
            seen[key] = token
            result.append((pid, pgid_of(pid), token))
        self._tokens = seen
        self._snapshot = result
        if self.loop is not None:
            self.loop.call_soon(self._forget_snapshot)
        else:
            self._snapshot = None
        return result

    def _forget_snapshot(self) -> None:
        self._snapshot = None

    def _members(self, run: Run) -> list[tuple[int, Optional[int]]]:
        return [(pid, pgid) for pid, pgid, token in self._descendants()
                if token == run.token or (pgid is not None and pgid == run.pgid)]

    def alive(self, run: Run) -> bool:
        return group_alive(run.pgid) or bool(self._members(run))

    def signal_rest(self, run: Run, sig: int, group_done: bool) -> None:
        if not group_done:
            send_group(run.pgid, sig)
        for pid, pgid in self._members(run):
            if pgid != run.pgid:  # the group has had its signal (just above, or before)
                send(pid, sig)

    def kill(self, run: Run) -> None:
        send_group(run.pgid, signal.SIGKILL)
        for pid, _ in self._members(run):
            send(pid, signal.SIGKILL)


class CgroupTracker(Tracker):
    """One cgroup v2 per instance, below ``{own}/superd-{pid}``."""

    mode = "cgroup"

    def __init__(self, own: str, loop=None) -> None:
        super().__init__()
        self.home = own  # superd's own cgroup
        _sweep(own)
        self.root = self._make_root(own)
        self.controllers = cgroups.enable_controllers(self.root)
        self.description = f"cgroup v2 at {self.root}"
        self._names: dict[str, str] = {}      # cgroup -> instance
        self._paths: dict[str, str] = {}      # instance -> cgroup
        self._away: Optional[str] = None      # the run's cgroup superd is in, between spawns
        self._batching = False
        self._limited: set[str] = set()       # cgroups with limits: superd leaves them at once
        self.loop = loop
        self.watcher: Optional[cgroups.Watcher] = None
        if loop is not None:
            try:
                self.watcher = cgroups.Watcher(self._changed)
                loop.add_reader(self.watcher.fileno(), self.watcher.read)
                self.watched = True
            except OSError as exc:
                log.warning("cannot watch cgroups with inotify (%s): polling them while they stop", exc)
                self.watcher = None

    @staticmethod
    def _make_root(own: str) -> str:
        base = os.path.join(own, f"superd-{os.getpid()}")
        candidate, n = base, 0
        while True:
            try:
                os.mkdir(candidate)
                return candidate
            except FileExistsError:
                # Named after our pid: a superd with this pid is gone (another
                # pid namespace may have one alive, so never touch a populated one).
                if not cgroups.populated(candidate) and cgroups.remove(candidate):
                    continue
                n += 1
                candidate = f"{base}-{n}"
            except OSError as exc:
                raise cgroups.Unusable(f"cannot create {candidate}: {exc.strerror}") from None

    def _changed(self, cgroup: str) -> None:
        name = self._names.get(cgroup)
        if name is not None:
            self.on_change(name)

    def cgroup(self, name: str) -> str:
        path = self._paths.get(name)
        if path is None:
            path = os.path.join(self.root, cgroups.name_for(name))
            cgroups.make(path)
            self._paths[name] = path
            self._names[path] = name
            if self.watcher is not None:
                try:
                    self.watcher.add(path)
                except OSError as exc:
                    log.warning("cannot watch %s (%s): polling it while it stops", path, exc)
                    self.watched = False
        elif not os.path.isdir(path):
            cgroups.make(path)  # someone removed it behind our back
            if self.watcher is not None:
                self.watcher.discard(path)
                try:
                    self.watcher.add(path)
                except OSError:
                    self.watched = False
        return path

    def new_run(self, name: str) -> Run:
        run = super().new_run(name)
        run.cgroup = self.cgroup(name)
        return run

    @contextlib.contextmanager
    def spawning(self, run: Run) -> Iterator[None]:
        """superd steps into the run's cgroup for the fork: the child is born
        there, before it runs a single instruction of its own, and Popen keeps
        its fast vfork path (a preexec step in the child would cost a full
        fork: about 20 times as much). Raises OSError when superd cannot.

        Within a :meth:`batch` superd goes from one run's cgroup straight to
        the next and home once at the batch's end: one move per spawn instead
        of two. Not into or out of a cgroup with limits, where superd's own
        memory and pids must never be counted for long."""
        assert run.cgroup is not None
        if self._away != run.cgroup:
            cgroups.enter(run.cgroup)
            self._away = run.cgroup
        try:
            yield
        finally:
            if not self._batching or run.cgroup in self._limited:
                self.settle()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.settle()

    def settle(self) -> None:
        """superd goes back to its own cgroup if a spawn left it elsewhere."""
        if self._away is None:
            return
        try:
            cgroups.enter(self.home)
            self._away = None
        except OSError as exc:  # pragma: no cover - the kernel refused to move superd back
            log.error("cannot move superd back to its cgroup %s: %s", self.home, exc.strerror or exc)

    def limited(self, run: Run) -> None:
        if run.cgroup is not None:
            self._limited.add(run.cgroup)

    def alive(self, run: Run) -> bool:
        self.settle()
        return run.cgroup is not None and cgroups.populated(run.cgroup)

    def signal_rest(self, run: Run, sig: int, group_done: bool) -> None:
        self.settle()
        if run.cgroup is None:
            return
        for pid in cgroups.all_procs(run.cgroup):
            if group_done and run.pgid is not None and pgid_of(pid) == run.pgid:
                continue
            send(pid, sig)

    def kill(self, run: Run) -> None:
        self.settle()  # never kill superd with the run
        if run.cgroup is not None:
            cgroups.kill(run.cgroup)

    def member(self, run: Run, pid: int) -> Optional[bool]:
        """In the run's cgroup (which nothing of the run can leave), or carrying its token."""
        self.settle()
        if run.cgroup is not None and pid in cgroups.all_procs(run.cgroup):
            return True
        return super().member(run, pid)

    def kill_everything(self) -> None:
        self.settle()
        cgroups.kill(self.root)

    def usage(self, name: str) -> dict:
        self.settle()
        path = self._paths.get(name)
        if path is None:
            return super().usage(name)
        pids = cgroups.procs(path)
        memory, source = cgroups.memory(path, pids, "memory" in self.controllers)
        return {"cgroup": path, "pids": len(pids), "memory": memory, "memory_source": source}

    def forget(self, name: str) -> None:
        self.settle()
        path = self._paths.pop(name, None)
        if path is None:
            return
        self._names.pop(path, None)
        if self.watcher is not None:
            self.watcher.discard(path)
        if not cgroups.remove(path):
            log.warning("cannot remove the cgroup %s: it is not empty", path)

    def empty(self) -> bool:
        self.settle()
        return not cgroups.populated(self.root)

    def close(self) -> None:
        """Remove every cgroup superd made (what is still in one is killed first)."""
        self.settle()
        if self.watcher is not None:
            if self.loop is not None:
                try:
                    self.loop.remove_reader(self.watcher.fileno())
                except (ValueError, RuntimeError):
                    pass
            self.watcher.close()
            self.watcher = None
        if cgroups.populated(self.root):
            cgroups.kill(self.root)
            wait_blocking(lambda: not cgroups.populated(self.root), 1.0)
        if not cgroups.remove(self.root):
            log.warning("cannot remove the cgroup %s: something in it did not die", self.root)

    def state(self) -> dict:
        return {"mode": self.mode, "cgroup_root": self.root}


_ROOT_NAME = re.compile(r"superd-([0-9]+)(?:-[0-9]+)?")


def _sweep(own: str) -> None:
    """Remove the empty cgroups of superds that are gone (killed before they
    could clean up, with no state file that named them): never a populated one."""
    try:
        entries = [e for e in os.scandir(own) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        match = _ROOT_NAME.fullmatch(entry.name)
        if not match or cgroups.populated(entry.path):
            continue
        try:
            os.kill(int(match[1]), 0)
            continue  # that pid lives: maybe a superd, maybe not; leave it be
        except ProcessLookupError:
            pass
        except OSError:
            continue
        if cgroups.remove(entry.path):
            log.debug("removed %s, the empty cgroup of a superd that is gone", entry.path)


def choose(setting: str, loop=None) -> Tracker:
    """The tracker for ``[superd] cgroups`` (``"auto"`` or ``"off"``)."""
    tracker: Tracker
    if setting == "off":
        tracker = TreeTracker('cgroups = "off" in the config')
    else:
        try:
            tracker = CgroupTracker(cgroups.usable_parent(cgroups.own_cgroup()), loop)
        except cgroups.Unusable as exc:
            tracker = TreeTracker(str(exc))
    if isinstance(tracker, TreeTracker):
        tracker.loop = loop
    return tracker


def describe(setting: str) -> str:
    """What :func:`choose` would pick, without making anything (``superd --check``)."""
    if setting == "off":
        return 'process groups + subreaper (cgroups = "off" in the config)'
    try:
        own = cgroups.usable_parent(cgroups.own_cgroup())
    except cgroups.Unusable as exc:
        return f"process groups + subreaper (no writable cgroup v2: {exc})"
    return f"cgroup v2 at {os.path.join(own, 'superd-PID')}"
