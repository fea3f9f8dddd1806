"""A stream: one output of one process (stdout, stderr, or both merged), across restarts.

It prefixes console lines, hands whole lines to its sink, keeps the last
:data:`RING_BYTES` of console output for ``tail`` (files are tailed from the
file; ``null`` and ``inherit`` streams have no pipe and nothing to keep), feeds its ``tail -f`` followers and counts what its sink lost.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Protocol

from .follow import Backlog
from .logfile import LogFile, read_last_lines
from .sinks import Sink
from .stamps import stamp

log = logging.getLogger("superd")

#: A line longer than this is passed on in pieces (the console adds newlines).
MAX_LINE = 64 << 10
#: Bytes of recent output kept per console stream for ``tail``.
RING_BYTES = 128 << 10
#: Most lines ``tail`` answers with.
MAX_TAIL_LINES = 100_000
#: The followers of a stream nobody follows: one shared empty set, not one
#: per stream (a stream lives as long as its process's settings).
NO_FOLLOWERS: frozenset = frozenset()


class Listener(Protocol):
    """Who gets a stream's new lines as they come (a ``tail -f`` follower): it
    reads them from the stream's :class:`~supervisor.output.follow.Backlog`."""

    def end(self, farewell: Optional[str] = None) -> None: ...

    def move_to(self, stream: "Stream") -> None: ...


class Stream:
    """One output stream of one process (stdout, stderr, or both merged), across restarts."""

    __slots__ = ("process", "which", "sink", "console", "path", "prefix", "ring", "ring_size", "ring_pos", "followers",
                 "backlog", "readers", "retired", "on_idle", "dropped_bytes", "dropped_lines",
                 "losing", "stamp")

    def __init__(self, process: str, which: str, sink: Sink, *, console: bool = False,
                 ring: bool = False, path: Optional[str] = None) -> None:
        self.process = process
        self.which = which
        self.sink = sink
        self.console = console
        self.path = path
        self.prefix = b""
        self.ring: Optional[bytearray] = bytearray() if ring else None
        self.ring_size = 0  # bytes in the ring (at most RING_BYTES)
        self.ring_pos = 0   # once full: where the next byte goes (the oldest is there)
        self.followers: "set[Listener] | frozenset[Listener]" = NO_FOLLOWERS  # a set of its own once followed
        self.backlog: Optional[Backlog] = None  # while followed: their shared recent output
        self.readers = 0
        self.retired = False
        self.on_idle: Optional[Callable[[Stream], None]] = None
        self.dropped_bytes = 0  # what the sink lost of this stream's writes
        self.dropped_lines = 0
        self.losing: Optional[tuple[int, int]] = None  # in a loss: the counts when it began
        self.stamp = False  # log_timestamps: the time before each line (output.stamps)

    def emit(self, buffers: list, raw: bool = False) -> bool:
        """Pass on whole lines (``raw``: a piece of an overlong line). False: the sink is full."""
        data = None
        sink = self.sink
        dropped = sink.dropped
        if self.stamp:
            buffers = stamp(buffers, raw)
        if self.console:
            data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if raw or not data.endswith(b"\n"):
                data += b"\n"
            prefix = self.prefix
            if data.find(b"\n") == len(data) - 1:  # one line: the common case, one allocation
                out = prefix + data
            else:
                out = prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
            ok = sink.write([out])
            if sink.dropped != dropped:
                self._lost(sink.dropped - dropped, [out])
            elif self.losing is not None:
                self._kept()
        else:
            ok = sink.write(buffers)
            if sink.dropped != dropped:
                self._lost(sink.dropped - dropped, buffers)
            elif self.losing is not None:
                self._kept()
        if self.ring is not None or self.backlog is not None:
            if data is None:
                data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if self.ring is not None:
                self._remember(data)
            if self.backlog is not None:
                self.backlog.append(data)  # once, whatever the number of followers
        return ok

    def follow(self, follower: Listener) -> Backlog:
        """``follower`` gets the lines from now on: the backlog it reads them from."""
        if self.followers is NO_FOLLOWERS:
            self.followers = set()
        self.followers.add(follower)  # type: ignore[union-attr]
        if self.backlog is None:
            self.backlog = Backlog()
        return self.backlog

    def unfollow(self, follower: Listener) -> None:
        followers = self.followers
        if follower in followers:
            followers.remove(follower)  # type: ignore[union-attr]
        if not followers:
            self.followers = NO_FOLLOWERS
            self.backlog = None

    def _lost(self, nbytes: int, written: list) -> None:
        """The sink dropped the last ``nbytes`` of ``written``: count them, and
        the lines they were (in whole or in part). The first loss of an
        episode is logged, and its end (:meth:`_kept`) with what it cost."""
        if self.losing is None:
            self.losing = (self.dropped_bytes, self.dropped_lines)
            log.warning("%s: its %s output is being dropped (%s cannot take it)", self.process, self.which,
                        self.sink.name)
        self.dropped_bytes += nbytes
        lost = b"".join(written)[-nbytes:]
        self.dropped_lines += lost.count(b"\n") + (not lost.endswith(b"\n"))

    def _kept(self) -> None:
        start_bytes, start_lines = self.losing  # type: ignore[misc]
        self.losing = None
        log.warning("%s: its %s output is kept again; %d bytes (%d lines) were dropped", self.process, self.which,
                    self.dropped_bytes - start_bytes, self.dropped_lines - start_lines)

    def _remember(self, data: bytes) -> None:
        """Keep ``data`` in the ring: one buffer per stream, filled once and
        then written over in a circle, so that a chatty program costs no
        allocation per line (many small long-lived objects fragment the heap)."""
        ring = self.ring
        assert ring is not None
        n = len(data)
        pos = self.ring_pos
        if pos + n < RING_BYTES and self.ring_size == RING_BYTES:  # the common case
            ring[pos:pos + n] = data
            self.ring_pos = pos + n
            return
        view = memoryview(data)
        if len(ring) < RING_BYTES:  # still filling
            room = RING_BYTES - len(ring)
            ring += view[:room]
            self.ring_size = len(ring)
            if n <= room:
                return
            view, n = view[room:], n - room
            self.ring_pos = 0
        if n >= RING_BYTES:
            ring[:] = view[n - RING_BYTES:]  # the same length: written in place
            self.ring_pos = 0
            return
        pos = self.ring_pos
        first = min(n, RING_BYTES - pos)
        ring[pos:pos + first] = view[:first]
        if first < n:
            ring[:n - first] = view[first:]
        self.ring_pos = (pos + n) % RING_BYTES

    def last_lines(self, count: int) -> list[bytes]:
        """The last ``count`` lines: from the ring, or from the file's end."""
        if count <= 0:
            return []
        if self.ring is not None:
            ring, pos = self.ring, self.ring_pos
            if len(ring) < RING_BYTES:
                kept = bytes(ring)
            else:
                kept = bytes(ring[pos:] + ring[:pos])
                kept = kept[kept.find(b"\n") + 1:]  # the oldest line may have lost its start
            lines = kept.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            return lines[-count:]
        assert self.path is not None
        return read_last_lines(self.path, count)

    def clear(self) -> None:
        """Forget the output so far: the ring ``tail`` reads, and the log
        file's contents (``superctl clear``). Raises OSError."""
        if self.ring is not None:
            self.ring = bytearray()
            self.ring_size = self.ring_pos = 0
        if isinstance(self.sink, LogFile):
            self.sink.clear()

    def reader_done(self) -> None:
        self.readers -= 1
        if self.readers <= 0 and self.retired and self.on_idle is not None:
            self.on_idle(self)
