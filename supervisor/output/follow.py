"""``tail -f``: a stream's new lines sent to one control connection as they come.

A reader that falls more than :data:`FOLLOW_BACKLOG` bytes behind loses the
oldest lines (and is told how many): a slow client never grows superd. When
the process goes away, a last line says so and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Optional

from .streams import MAX_LINE, Stream

log = logging.getLogger("superd")

#: Lines a ``tail -f`` reader may fall behind by (in bytes) before some are skipped.
FOLLOW_BACKLOG = 1 << 20


class Follower:
    """Sends a stream's new lines to one ``tail -f`` client as JSON-RPC notifications."""

    def __init__(self, stream: Stream, writer: asyncio.StreamWriter) -> None:
        self.stream = stream
        self.writer = writer
        self.lines: deque[bytes] = deque()
        self.size = 0
        self.skipped = 0
        self.partial = b""
        self.ended = False
        self.farewell: Optional[str] = None
        self._wakeup: Optional[asyncio.Future] = None
        stream.followers.add(self)  # from now on: no line is missed

    def feed(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n") if self.partial else data.split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) >= MAX_LINE:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            self.lines.append(line)
            self.size += len(line) + 1
        while self.size > FOLLOW_BACKLOG and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1
            self.skipped += 1
        self._kick()

    def move_to(self, stream: Stream) -> None:
        """Go on with ``stream``: the same process's stream, remade by a reload."""
        self.stream.followers.discard(self)
        self.stream = stream
        stream.followers.add(self)

    def end(self, farewell: Optional[str] = None) -> None:
        """Stop following; with ``farewell``, send it as a last line and close the connection."""
        if farewell is not None and not self.ended:
            self.farewell = farewell
        self.ended = True
        self._kick()

    def _kick(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(self, request: Optional[asyncio.Future] = None) -> None:
        """Send lines until the connection closes. ``request``: the task answering
        the ``tail`` request; its response goes first."""
        loop = asyncio.get_running_loop()
        closed = asyncio.ensure_future(self.writer.wait_closed())
        closed.add_done_callback(self._closed)
        try:
            if request is not None and not request.done():
                # The server waits for the request's task, and started waiting
                # before this: it writes the response before this wakes up.
                await asyncio.wait({request})
            await asyncio.sleep(0)
            while True:
                if self.farewell:  # once: "" = sent
                    self.lines.append(self.farewell.encode())
                    self.farewell = ""
                if not self.lines and not self.skipped:
                    if self.ended:
                        break
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                if self.writer.is_closing():
                    break
                batch = [line.decode("utf-8", "replace") for line in self.lines]
                if self.skipped:
                    batch.insert(0, f"[superd: {self.skipped} lines skipped: this reader fell behind]")
                self.lines.clear()
                self.size = self.skipped = 0
                message = {"jsonrpc": "2.0", "method": "tail", "params": {"lines": batch}}
                self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
                await self.writer.drain()
            if self.farewell == "":  # said goodbye: the client's follow is over
                self.writer.close()
        except (ConnectionError, OSError):
            pass
        finally:
            self.stream.followers.discard(self)
            log.debug("tail -f of %s %s ended", self.stream.process, self.stream.which)

    def _closed(self, task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a lost connection is how a follow ends
        self.end()
