"""Where a process's output goes, by its settings: which streams superd
captures, whether stderr joins stdout, and :class:`ProcessOutput`, a
process's streams for one set of those settings (the registry that makes them
is :mod:`.outputs`).
"""

from __future__ import annotations

from typing import Optional

from ..config import InstanceConfig
from .streams import Stream

#: Where a stream is not read by superd (no pipe, no Stream until asked for).
UNCAPTURED = ("null", "inherit")


def merged(instance: InstanceConfig) -> bool:
    """Does the program's stderr go where its stdout goes (one stream)?"""
    return instance.stderr == "stdout" or (
        instance.stderr == instance.stdout and instance.stdout not in ("auto", "console", "null", "inherit"))


def captured(instance: InstanceConfig) -> tuple[str, ...]:
    """The streams superd keeps for ``tail`` (a merged pair once): some of "stdout", "stderr"."""
    names = () if instance.stdout in ("null", "inherit") else ("stdout",)
    if not merged(instance) and instance.stderr not in ("null", "inherit"):
        names += ("stderr",)
    return names


class ProcessOutput:
    """A process's streams for one set of output settings.

    ``stdout`` and ``stderr`` are the same stream when ``merged``; a stream
    superd does not capture (``null``, ``inherit``) is None, unless a
    ``tail -f`` reader moved to it when a reload changed the settings.
    """

    __slots__ = ("key", "stdout", "stderr", "merged")

    def __init__(self, key: tuple, stdout: Optional[Stream], stderr: Optional[Stream], merged: bool) -> None:
        self.key = key
        self.stdout = stdout
        self.stderr = stdout if merged else stderr
        self.merged = merged

    def get(self, which: str) -> Optional[Stream]:
        return self.stdout if which == "stdout" or self.merged else self.stderr

    def pairs(self) -> list[tuple[str, Optional[Stream]]]:
        """(which, stream) of each distinct stream: "stdout" only when merged."""
        return [("stdout", self.stdout)] if self.merged else [("stdout", self.stdout), ("stderr", self.stderr)]

    def unique(self) -> list[Stream]:
        """The distinct streams made so far."""
        return [stream for _, stream in self.pairs() if stream is not None]
