"""Programs' stdin pipes (``stdin = true``): superd holds the write end.

Each spawn of such a program gets a fresh pipe; the child's end becomes its
fd 0 and is closed in superd once the child is started. Both ends are
close-on-exec, so no other child inherits the write end. Writes never block
the loop: what the pipe does not take at once waits in a buffer of at most
:data:`BUFFER_BYTES` per program and goes out as the pipe drains (a writer
callback, only while something waits). A program that does not read its
stdin fills the buffer, and further writes are refused. The pipe closes when
the process exits: the program (and whatever it left behind) reads EOF.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Optional

from ..core.errors import Failed, NoStdin

log = logging.getLogger("superd")

#: Bytes a program's stdin may have waiting in superd beyond what its pipe holds.
BUFFER_BYTES = 256 << 10


class StdinPipe:
    """The pipe of one spawn: the child's read end until it is started, superd's write end until the exit."""

    __slots__ = ("name", "child_fd", "fd", "pending", "loop")

    def __init__(self, name: str) -> None:
        self.name = name
        self.child_fd, self.fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.fd, False)
        self.pending = bytearray()  # what the pipe has not taken yet
        self.loop: Optional[asyncio.AbstractEventLoop] = None  # while a writer callback waits

    def started(self) -> None:
        """The child has its copy of the read end: superd's goes."""
        os.close(self.child_fd)
        self.child_fd = -1

    def close(self) -> None:
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1
        if self.fd >= 0:
            self._unwatch()
            os.close(self.fd)
            self.fd = -1
        self.pending.clear()

    def write(self, data: bytes) -> int:
        """Queue ``data`` (all of it, or none); raises :class:`Failed` when
        the buffer cannot take it, :class:`NoStdin` when the program closed its stdin."""
        if self.fd < 0:
            raise NoStdin(f"{self.name}'s stdin is closed")
        if len(self.pending) + len(data) > BUFFER_BYTES:
            raise Failed(f"{self.name} is not reading its stdin: {len(self.pending)} bytes wait already and "
                         f"{len(data)} more would pass the {BUFFER_BYTES >> 10} KiB superd keeps for it")
        self.pending += data
        self._flush()
        if self.fd < 0:
            raise NoStdin(f"{self.name} closed its stdin")
        return len(data)

    def _flush(self) -> None:
        try:
            while self.pending:
                done = os.write(self.fd, self.pending)
                del self.pending[:done]
        except BlockingIOError:
            pass
        except OSError as exc:  # EPIPE: nobody reads it any more
            log.info("%s: its stdin is closed (%s); %d bytes not delivered", self.name, exc.strerror or exc,
                     len(self.pending))
            self.close()
            return
        if self.pending and self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.loop.add_writer(self.fd, self._flush)
        elif not self.pending:
            self._unwatch()

    def _unwatch(self) -> None:
        if self.loop is not None:
            self.loop.remove_writer(self.fd)
            self.loop = None


class StdinPipes:
    """The stdin pipe of every running program that has one, by instance name."""

    def __init__(self) -> None:
        self.pipes: dict[str, StdinPipe] = {}

    def open(self, name: str) -> StdinPipe:
        """A fresh pipe for a spawn of ``name`` (an earlier one closes); raises OSError."""
        self.close(name)
        pipe = self.pipes[name] = StdinPipe(name)
        return pipe

    def close(self, name: str) -> None:
        pipe = self.pipes.pop(name, None)
        if pipe is not None:
            pipe.close()

    def write(self, name: str, data: bytes) -> int:
        pipe = self.pipes.get(name)
        if pipe is None:
            raise NoStdin(f"{name}'s stdin is closed")
        return pipe.write(data)

    def close_all(self) -> None:
        for name in list(self.pipes):
            self.close(name)
