"""A stream: one output of one process (stdout, stderr, or both merged), across restarts.

It prefixes console lines, hands whole lines to its sink, keeps the last
:data:`RING_BYTES` of console and null output for ``tail`` (files are tailed
from the file), feeds its ``tail -f`` followers and counts what its sink lost.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Optional, Protocol

from .logfile import read_last_lines
from .sinks import Sink

#: A line longer than this is passed on in pieces (the console adds newlines).
MAX_LINE = 64 << 10
#: Bytes of recent output kept per console or null stream for ``tail``.
RING_BYTES = 128 << 10
#: Most lines ``tail`` answers with.
MAX_TAIL_LINES = 100_000


class Listener(Protocol):
    """Who gets a stream's new lines as they come (a ``tail -f`` follower)."""

    def feed(self, data: bytes) -> None: ...

    def end(self, farewell: Optional[str] = None) -> None: ...

    def move_to(self, stream: "Stream") -> None: ...


class Stream:
    """One output stream of one process (stdout, stderr, or both merged), across restarts."""

    __slots__ = ("process", "which", "sink", "console", "path", "prefix", "ring", "ring_size", "followers",
                 "readers", "retired", "on_idle", "dropped_bytes", "dropped_lines")

    def __init__(self, process: str, which: str, sink: Sink, *, console: bool = False,
                 ring: bool = False, path: Optional[str] = None) -> None:
        self.process = process
        self.which = which
        self.sink = sink
        self.console = console
        self.path = path
        self.prefix = b""
        self.ring: Optional[deque[bytes]] = deque() if ring else None
        self.ring_size = 0
        self.followers: set[Listener] = set()
        self.readers = 0
        self.retired = False
        self.on_idle: Optional[Callable[[Stream], None]] = None
        self.dropped_bytes = 0  # what the sink lost of this stream's writes
        self.dropped_lines = 0

    def emit(self, buffers: list, raw: bool = False) -> bool:
        """Pass on whole lines (``raw``: a piece of an overlong line). False: the sink is full."""
        data = None
        sink = self.sink
        dropped = sink.dropped
        if self.console:
            data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if raw or not data.endswith(b"\n"):
                data += b"\n"
            prefix = self.prefix
            out = prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
            ok = sink.write([out])
            if sink.dropped != dropped:
                self._lost(sink.dropped - dropped, [out])
        else:
            ok = sink.write(buffers)
            if sink.dropped != dropped:
                self._lost(sink.dropped - dropped, buffers)
        if self.ring is not None or self.followers:
            if data is None:
                data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if self.ring is not None:
                self._remember(data)
            for follower in list(self.followers):
                follower.feed(data)
        return ok

    def _lost(self, nbytes: int, written: list) -> None:
        """The sink dropped the last ``nbytes`` of ``written``: count them, and
        the lines they were (in whole or in part)."""
        self.dropped_bytes += nbytes
        lost = b"".join(written)[-nbytes:]
        self.dropped_lines += lost.count(b"\n") + (not lost.endswith(b"\n"))

    def _remember(self, data: bytes) -> None:
        ring = self.ring
        assert ring is not None
        if len(data) > RING_BYTES:
            start = data.find(b"\n", len(data) - RING_BYTES) + 1
            data = data[start:] if start else data[-RING_BYTES:]
            ring.clear()
            self.ring_size = 0
        ring.append(data)
        self.ring_size += len(data)
        while self.ring_size > RING_BYTES:
            self.ring_size -= len(ring.popleft())

    def last_lines(self, count: int) -> list[bytes]:
        """The last ``count`` lines: from the ring, or from the file's end."""
        if count <= 0:
            return []
        if self.ring is not None:
            lines = b"".join(self.ring).split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            return lines[-count:]
        assert self.path is not None
        return read_last_lines(self.path, count)

    def reader_done(self) -> None:
        self.readers -= 1
        if self.readers <= 0 and self.retired and self.on_idle is not None:
            self.on_idle(self)
