"""``tail -f``: a stream's new lines sent to control connections as they come.

A followed stream keeps one shared :class:`Backlog`: its last
:data:`BACKLOG_BYTES` of output, in pieces of at most :data:`BATCH_BYTES`,
each encoded to JSON once whoever sends it. A :class:`Follower` only holds
its place in it, so what followers cost superd does not depend on what they
do: a follower that reads slowly skips the lines that fell out of the backlog
and is told how many (``[superd: N lines skipped: this reader fell behind]``);
one that takes nothing for ``client_timeout`` seconds is dropped; a follower
waiting for its socket costs nothing when lines come. At most
:data:`MAX_FOLLOWERS` follow at once, apart from the control connections,
which they never crowd out. When the process goes away, a last line says so
and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Optional, Union

log = logging.getLogger("superd")

#: Output kept per followed stream for its followers (shared by all of them).
BACKLOG_BYTES = 256 << 10
#: The most output one ``tail`` notification carries (a longer line goes in pieces).
BATCH_BYTES = 32 << 10
#: Pieces kept per followed stream at most (a trickle makes many small ones).
MAX_PIECES = 1024
#: ``tail -f`` readers at once (apart from the control connections' limit).
MAX_FOLLOWERS = 256
#: A follower's socket buffer in superd: it waits for its reader beyond this.
WRITE_HIGH = 16 << 10

_HEAD = b'{"jsonrpc":"2.0","method":"tail","params":{"lines":['
_TAIL = b"]}}\n"


class Piece:
    """Whole lines of output, numbered; encoded to JSON strings once, when first sent."""

    __slots__ = ("seq", "data", "lines", "_json")

    def __init__(self, seq: int, data: bytes) -> None:
        self.seq = seq
        self.data = data  # ends with a newline
        self.lines = data.count(b"\n")
        self._json: Optional[bytes] = None

    def json(self) -> bytes:
        if self._json is None:
            text = self.data.decode("utf-8", "replace").split("\n")
            text.pop()
            self._json = json.dumps(text, separators=(",", ":"))[1:-1].encode()
        return self._json


class Backlog:
    """A followed stream's recent output: what its followers have yet to send."""

    __slots__ = ("pieces", "size", "next_seq", "gone", "total", "waiting")

    def __init__(self) -> None:
        self.pieces: deque[Piece] = deque()
        self.size = 0
        self.next_seq = 0
        self.gone = 0       # lines that fell out of the backlog
        self.total = 0      # lines ever appended
        self.waiting: list[asyncio.Future] = []

    def append(self, data: bytes) -> None:
        if not data.endswith(b"\n"):
            data += b"\n"  # a piece of an overlong line: a line of its own
        start, end = 0, len(data)
        while start < end:
            stop = end
            if end - start > BATCH_BYTES:
                stop = data.rfind(b"\n", start, start + BATCH_BYTES) + 1
                if stop <= start:
                    stop = start + BATCH_BYTES  # one line longer than a batch: in pieces
            piece = Piece(self.next_seq, data[start:stop] if start or stop < end else data)
            if piece.data[-1:] != b"\n":
                piece = Piece(self.next_seq, piece.data + b"\n")
            self.next_seq += 1
            self.pieces.append(piece)
            self.size += len(piece.data)
            self.total += piece.lines
            start = stop
        pieces = self.pieces
        while (self.size > BACKLOG_BYTES or len(pieces) > MAX_PIECES) and len(pieces) > 1:
            gone = pieces.popleft()
            self.size -= len(gone.data)
            self.gone += gone.lines
        self.wake()

    def wake(self) -> None:
        waiting, self.waiting = self.waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)

    def take(self, seq: int) -> tuple[int, list[Piece]]:
        """From piece ``seq`` on: (lines skipped, because they are gone, the pieces of one batch)."""
        pieces = self.pieces
        if not pieces or seq >= self.next_seq:
            return 0, []
        first = pieces[0].seq
        skipped = 0
        if seq < first:
            skipped, seq = 1, first  # the follower counts what it missed
        batch: list[Piece] = []
        size = 0
        for index in range(seq - first, len(pieces)):
            piece = pieces[index]
            if batch and size + len(piece.data) > BATCH_BYTES:
                break
            batch.append(piece)
            size += len(piece.data)
        return skipped, batch


class Follower:
    """Sends a stream's new lines to one ``tail -f`` client as JSON-RPC notifications."""

    def __init__(self, stream, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.writer = writer
        self.timeout = timeout  # a reader that takes nothing this long is dropped
        self.stream = stream
        self.backlog: Backlog = stream.follow(self)  # from now on: no line is missed
        self.seq = self.backlog.next_seq
        self.sent_lines = self.backlog.total  # lines this follower is past
        self.carried: list[Piece] = []  # the rest of a stream a reload replaced
        self.ended = False
        self.farewell: Optional[str] = None
        self.dropped = False

    def move_to(self, stream) -> None:
        """Go on with ``stream``: the same process's stream, remade by a reload."""
        rest = [p for p in self.backlog.pieces if p.seq >= self.seq]
        self.carried.extend(rest[-(BACKLOG_BYTES // BATCH_BYTES):])
        self.stream.unfollow(self)
        self.backlog.wake()
        self.stream = stream
        self.backlog = stream.follow(self)
        self.seq = self.backlog.next_seq
        self.sent_lines = self.backlog.total

    def end(self, farewell: Optional[str] = None) -> None:
        """Stop following; with ``farewell``, send it as a last line and close the connection."""
        if farewell is not None and not self.ended:
            self.farewell = farewell
        self.ended = True
        self.backlog.wake()

    def frame(self, parts: list) -> bytes:
        """What the connection is sent for ``parts``: pieces of output and
        superd's own notices (a line each), in order. Here one ``tail``
        notification; other transports frame them their way."""
        return _HEAD + b",".join(p.json() if isinstance(p, Piece) else json.dumps(p).encode()
                                 for p in parts) + _TAIL

    def finish(self) -> None:
        """The follow is over (the farewell is sent): end the connection."""
        self.writer.close()

    def _next(self) -> Optional[bytes]:
        """The next message to send, or None when there is nothing new."""
        if self.carried:
            batch, self.carried = self.carried[:BACKLOG_BYTES // BATCH_BYTES], []
            return self.frame(batch)
        backlog = self.backlog
        skipped, batch = backlog.take(self.seq)
        parts: list[Union[Piece, str]] = []
        if skipped:
            missed = backlog.gone - self.sent_lines
            parts.append(f"[superd: {missed} lines skipped: this reader fell behind]")
            self.sent_lines += missed
        if batch:
            self.seq = batch[-1].seq + 1
            self.sent_lines += sum(p.lines for p in batch)
            parts.extend(batch)
        elif self.farewell:  # once: "" = sent
            parts.append(self.farewell)
            self.farewell = ""
        return self.frame(parts) if parts else None

    async def run(self, request: Optional[asyncio.Future] = None) -> None:
        """Send lines until the connection closes. ``request``: the task answering
        the ``tail`` request; its response goes first."""
        loop = asyncio.get_running_loop()
        closed = asyncio.ensure_future(self.writer.wait_closed())
        closed.add_done_callback(self._closed)
        try:
            self.writer.transport.set_write_buffer_limits(high=WRITE_HIGH)
            if request is not None and not request.done():
                # The server waits for the request's task, and started waiting
                # before this: it writes the response before this wakes up.
                await asyncio.wait({request})
            await asyncio.sleep(0)
            while True:
                message = self._next()
                if message is None:
                    if self.ended:
                        break
                    wakeup = loop.create_future()
                    self.backlog.waiting.append(wakeup)
                    await wakeup
                    continue
                if self.writer.is_closing():
                    break
                self.writer.write(message)
                try:
                    await asyncio.wait_for(self.writer.drain(), self.timeout)
                except asyncio.TimeoutError:
                    self.dropped = True
                    log.info("dropping a tail -f reader of %s %s: it took nothing for %gs",
                             self.stream.process, self.stream.which, self.timeout)
                    self.writer.transport.abort()  # close() would wait to flush what it never reads
                    break
            if self.farewell == "":  # said goodbye: the client's follow is over
                self.finish()
        except (ConnectionError, OSError):
            pass
        finally:
            self.stream.unfollow(self)
            log.debug("tail -f of %s %s ended", self.stream.process, self.stream.which)

    def _closed(self, task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a lost connection is how a follow ends
        self.end()
