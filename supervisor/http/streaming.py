"""Answers whose body is produced over time: supervisord's ``/logtail`` (plain
text in chunks) and the dashboard's Server-Sent Events.

A stream reuses superd's followers as they are, with an HTTP framing: a
process's output through :class:`~supervisor.output.follow.Follower` (one
shared, bounded backlog per followed stream; a reader that falls behind
skips what fell out of it and is told how many lines), the event stream
through :class:`~supervisor.daemon.events.EventFollower` (a bounded queue;
a reader that falls further behind is dropped with a last notice). Both drop
a reader that takes nothing for ``client_timeout`` seconds, and neither ever
makes the loop wait for a client. At most :data:`MAX_STREAMS` streams run at
once; a client that hangs up ends its stream at once, since its connection
is read until its end while the stream runs.
"""

from __future__ import annotations

import asyncio
from typing import Optional

import h11

from ..daemon.events import EventFollower
from ..output.follow import Follower, Piece
from .response import StreamingResponse, reason

#: Streaming answers at once (each also holds one of the server's connections).
MAX_STREAMS = 32
#: What is read at most at a time from a client whose stream runs (and dropped).
READ_SIZE = 16 << 10


class Body:
    """One answer's body on its connection: the framing of what a follower writes
    (h11 chunks, or a body that ends with the connection for HTTP/1.0)."""

    __slots__ = ("conn", "writer")

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        self.conn = conn
        self.writer = writer

    def chunk(self, data: bytes) -> bytes:
        return self.conn.send(h11.Data(data=data)) if data else b""

    def end(self) -> bytes:
        try:
            return self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return b""


def sse(data: str, event: Optional[str] = None) -> bytes:
    """One Server-Sent Event; ``data`` may hold several lines (the client joins them with newlines)."""
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n").encode()


def sse_data(data: bytes) -> bytes:
    """One Server-Sent Event of one line of data (an event's JSON)."""
    return b"data: " + data + b"\n\n"


def _text(pieces: list[Piece]) -> str:
    """Pieces of output as one string of lines, without the last newline; a
    carriage return would end an SSE line, so it goes."""
    return b"".join(p.data for p in pieces)[:-1].decode("utf-8", "replace").replace("\r", "")


class OutputFollower(Follower):
    """A stream's new lines over HTTP: plain text (``/logtail``) or, with
    ``events``, SSE (``message`` events carry lines, ``notice`` events superd's
    own notes: lines skipped, the process gone)."""

    def __init__(self, stream, body: Body, timeout: float, events: bool) -> None:
        super().__init__(stream, body.writer, timeout)
        self.body = body
        self.events = events

    def frame(self, parts: list) -> bytes:
        if not self.events:
            return self.body.chunk(b"".join(p.data if isinstance(p, Piece) else (p + "\n").encode()
                                            for p in parts))
        out: list[bytes] = []
        pieces: list[Piece] = []
        for part in parts:
            if isinstance(part, Piece):
                pieces.append(part)
                continue
            if pieces:
                out.append(sse(_text(pieces)))
                pieces = []
            out.append(sse(part, "notice"))
        if pieces:
            out.append(sse(_text(pieces)))
        return self.body.chunk(b"".join(out))

    def finish(self) -> None:
        self.writer.write(self.body.end())
        self.writer.close()


class EventStream(EventFollower):
    """Events over SSE: one ``message`` event each, its data the event's JSON
    (a ``dropped`` event says this reader was dropped)."""

    def __init__(self, events, body: Body, match, timeout: float) -> None:
        super().__init__(events, body.writer, match, timeout)
        self.body = body

    def frame(self, batch: list[bytes]) -> bytes:
        return self.body.chunk(b"".join(sse_data(data) for data in batch))


async def _until_hangup(reader: asyncio.StreamReader) -> None:
    """Read (and drop) what the client sends until it closes its side."""
    while await reader.read(READ_SIZE):
        pass


async def send(conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               response: StreamingResponse) -> None:
    """Send ``response``'s head, then its body as its follower produces it,
    until the follow ends or the client hangs up."""
    headers = [*response.headers, ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"), ("Server", "superd")]
    try:
        head = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason(response.status)))
    except h11.LocalProtocolError:
        return
    body = Body(conn, writer)
    first, follower = response.open(body)
    writer.write(head + body.chunk(first))
    hangup = asyncio.ensure_future(_until_hangup(reader))

    def hung_up(task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()  # a reset is a hang-up too
        follower.end()

    hangup.add_done_callback(hung_up)
    try:
        await follower.run()
    finally:
        hangup.cancel()
