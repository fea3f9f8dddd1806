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
The base (:class:`Run`, :class:`Tracker`) is in :mod:`.runs`, the cgroup
mode in :mod:`.cgroup_tracking`; this module holds the fallback and picks
the mode.
"""

from __future__ import annotations

import os
import signal
from typing import Optional

from . import cgroups
from .cgroup_tracking import CgroupTracker
from .kill import group_alive, send, send_group
from .procfs import RUN_ID, descendants, pgid_of, run_token, start_time
from .runs import Run, Tracker

__all__ = ["RUN_ID", "CgroupTracker", "Run", "Tracker", "TreeTracker", "choose", "describe",
           "run_token", "start_time"]


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
