"""Tracking runs with cgroup v2: one cgroup per instance, below
``{superd's cgroup}/superd-{pid}``, its processes born in it (see
:meth:`CgroupTracker.spawning`). Membership is exact, killing is one write
to ``cgroup.kill``, emptiness an inotify event on ``cgroup.events`` (watched
once superd waits for what is left of a run: :meth:`CgroupTracker.watch`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Iterator, Optional

from . import cgroups
from .kill import send, wait_blocking
from .procfs import pgid_of
from .runs import Run, Tracker

log = logging.getLogger("superd")


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
        self._watch_refused = False  # inotify refused a watch (said once)
        if loop is not None:
            try:
                self.watcher = cgroups.Watcher(self._changed)
                loop.add_reader(self.watcher.fileno(), self.watcher.read)
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
        elif not os.path.isdir(path):
            cgroups.make(path)  # someone removed it behind our back
            if self.watcher is not None:
                self.watcher.discard(path)  # the kernel ended that watch: watch() makes a new one
        return path

    def watch(self, run: Run) -> bool:
        """Watched from the first time superd waits for what is left of a run,
        not from its spawn: most runs are never waited for (their cgroup empties
        with the leader's exit, or goes at a shutdown's rmdir), and a watch made
        at each spawn cost every start an inotify watch and a populated event
        to read (1,000 programs: ~40 ms of a 1.47 s start-up)."""
        path = run.cgroup
        if self.watcher is None or path is None or self._paths.get(run.name) != path:
            return False
        if path in self.watcher:
            return True
        try:
            self.watcher.add(path)
        except OSError as exc:
            if not self._watch_refused:
                self._watch_refused = True
                log.warning("cannot watch %s (%s): polling it, and any other cgroup inotify refuses, "
                            "while it stops", path, exc.strerror or exc)
            return False
        if not cgroups.populated(path):  # it emptied before the watch: no event will come
            self.loop.call_soon(self._changed, path)
        return True

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

    def retire(self, run: Run) -> bool:
        """During a shutdown each cgroup goes as soon as its run is over: one
        rmdir is both the test and the removal, and the removals overlap the
        other programs' exits instead of all coming after the last one."""
        self.settle()
        path = run.cgroup
        if path is None or self._paths.get(run.name) != path:
            return not self.alive(run)
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:  # EBUSY: something lives in it, or below it in a cgroup the run made
            return not cgroups.populated(path)  # such a cgroup is removed with the rest at close()
        del self._paths[run.name]
        self._names.pop(path, None)
        if self.watcher is not None:
            self.watcher.dropped(path)
        return True

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
        # Oldest first, before the root: the kernel's cleanup of a removed
        # cgroup walks a list of its siblings, and in the order they were made
        # that walk stays short (10,000 cgroups: 0.4 s, against 2.3 s in the
        # order the root's directory lists them).
        for path in self._paths.values():
            cgroups.remove(path)
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
