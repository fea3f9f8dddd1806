"""A listening socket that survives running out of descriptors.

asyncio's own accept loop logs a traceback for every refused ``accept()``
when superd is out of descriptors (EMFILE), and retries once per backlog
slot: a CPU and log storm that bypasses superd's logger. This listener stops
accepting for a while instead, says so once, and accepts the waiting client
on a spare descriptor only to tell it why and close.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Awaitable, Callable, Optional

log = logging.getLogger("superd")

#: Out of descriptors: how long accepting pauses before it is tried again.
PAUSE = 1.0
#: Connections accepted in one loop turn at most (the rest wait for the next).
ACCEPTS_PER_TURN = 64
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Listener:
    def __init__(self, sock: socket.socket, handler: Handler, *, limit: int, reserve, refusal: bytes) -> None:
        self.sock = sock
        self.handler = handler
        self.limit = limit
        self.reserve = reserve      # spare descriptors (supervisor.daemon.reserve.Reserve)
        self.refusal = refusal      # what a client accepted on a spare descriptor reads
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task] = set()
        self._paused: Optional[asyncio.TimerHandle] = None
        self._exhausted_since: Optional[float] = None
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._pause(exc)
                else:
                    log.warning("control socket: accept failed: %s", exc.strerror or exc)
                return
            if self._exhausted_since is not None:
                log.warning("control socket: accepting again (descriptors free)")
                self._exhausted_since = None
            task = self.loop.create_task(self._open(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _pause(self, exc: OSError) -> None:
        if self._exhausted_since is None:
            self._exhausted_since = self.loop.time()
            log.error("control socket: out of file descriptors (%s): refusing clients, trying again every %gs",
                      exc.strerror or exc, PAUSE)
        with self.reserve.spare():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                conn = None
            if conn is not None:
                try:
                    conn.setblocking(False)
                    conn.send(self.refusal)
                except OSError:
                    pass
                conn.close()
        self.loop.remove_reader(self.sock.fileno())
        self._paused = self.loop.call_later(PAUSE, self._resume)

    def _resume(self) -> None:
        self._paused = None
        self.loop.add_reader(self.sock.fileno(), self._accept)

    async def _open(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=self.limit)
        except OSError:
            conn.close()
            return
        await self.handler(reader, writer)

    def close(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()  # connections already open are their server's to end
