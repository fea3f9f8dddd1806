"""Sinks, where program output goes: superd's console, nowhere, and the writer they share.

A sink takes whole lines (see :mod:`supervisor.output.capture`) and must never
block superd's event loop for long:

* a regular file is written with plain ``os.write``: the page cache takes it
  at once, and a disk that cannot keep up slows the loop, which slows the
  reading, which fills the program's pipe, which slows the program;
* anything else (a pipe, a terminal, a socket: superd's own stdout under
  docker or systemd, or a path like ``/dev/stdout``) is written without
  blocking. What the descriptor does not take at once is kept and written when
  it can be, and :meth:`Sink.write` answers ``False`` meanwhile: the caller
  stops reading its pipe until the sink calls it back. Memory stays bounded by
  what one read brought in.

Log files (a sink with rotation) are in :mod:`supervisor.output.logfile`.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import stat
import time
from typing import Callable, Optional, Sequence

log = logging.getLogger("superd")

Buffers = Sequence[bytes | bytearray | memoryview]


class Sink:
    """Writes bytes to one descriptor; regular files blocking, the rest not.

    ``write`` returns True when the caller may go on, False when the
    descriptor is full: the bytes are kept, and each callback given to
    :meth:`when_drained` is called once they are all written.
    """

    # Slots: a LogFile per program stream lives as long as superd.
    __slots__ = ("name", "fd", "blocking", "regular", "_sock", "_pending", "_waiters", "_watching",
                 "loop", "written", "dropped")

    def __init__(self, name: str = "output") -> None:
        self.name = name
        self.fd: Optional[int] = None
        self.blocking = True
        self.regular = False
        self._sock: Optional[socket.socket] = None
        # What the descriptor has yet to take, and who waits for it to drain:
        # empty and shared until needed (a sink per program stream lives long).
        self._pending: bytes | bytearray = b""
        self._waiters: list[Callable[[], None]] | tuple = ()
        self._watching: Optional[int] = None
        self.loop = None  # the event loop, for add_writer; set by the owner
        self.written = 0
        self.dropped = 0

    # -- for subclasses

    def _adopt(self, fd: int, sock: Optional[socket.socket] = None) -> None:
        self.fd = fd
        self._sock = sock
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = 0
        self.regular = stat.S_ISREG(mode)
        self.blocking = True

    def _failed(self, exc: OSError, nbytes: int) -> None:
        """A write failed: subclasses report it; the bytes are gone."""
        self.dropped += nbytes

    # -- writing

    @property
    def full(self) -> bool:
        return bool(self._pending)

    def write(self, buffers: Buffers) -> bool:
        fd = self.fd
        if fd is None:
            self.dropped += sum(len(b) for b in buffers)
            return True
        if self._pending:
            for b in buffers:
                self._pending += b
            return False
        if self.blocking:
            return self._write_blocking(fd, buffers)
        data = buffers[0] if len(buffers) == 1 else b"".join(buffers)
        try:
            if self._sock is not None:
                n = self._sock.send(data, socket.MSG_DONTWAIT)
            else:
                n = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._failed(exc, len(data))
            return True
        self.written += n
        if n >= len(data):
            return True
        self._pending = bytearray(memoryview(data)[n:])  # it was empty
        self._watch()
        return False

    def _write_blocking(self, fd: int, buffers: Buffers) -> bool:
        total = sum(len(b) for b in buffers)
        done = 0
        try:
            done = os.writev(fd, buffers) if len(buffers) > 1 else os.write(fd, buffers[0])
            if done < total:  # a signal or a full disk in the middle: write the rest
                rest = memoryview(b"".join(buffers))[done:]
                while rest:
                    k = os.write(fd, rest)
                    done += k
                    rest = rest[k:]
        except OSError as exc:
            self.written += done
            lost = total - done
            if done:
                lost += self._cut(buffers, done)
            self._failed(exc, lost)
            return True
        self.written += done
        return True

    def _cut(self, buffers: Buffers, done: int) -> int:
        """A write failed after ``done`` bytes, perhaps in the middle of a line:
        subclasses may take that line's start back; returns its length if so."""
        return 0

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the kept bytes are written (at once if there are none)."""
        if not self._pending:
            callback()
        else:
            if not self._waiters:
                self._waiters = []
            self._waiters.append(callback)  # type: ignore[union-attr]

    def _watch(self) -> None:
        if self._watching is None and self.loop is not None and self.fd is not None:
            self._watching = self.fd
            self.loop.add_writer(self.fd, self._flush)

    def _unwatch(self) -> None:
        if self._watching is not None:
            try:
                self.loop.remove_writer(self._watching)
            except (ValueError, OSError):  # pragma: no cover - closed loop
                pass
            self._watching = None

    def _flush(self) -> None:
        fd = self.fd
        if fd is None:
            self._drop_pending()
            return
        try:
            if self._sock is not None:
                n = self._sock.send(self._pending, socket.MSG_DONTWAIT)
            else:
                n = os.write(fd, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            pending = len(self._pending)
            self._pending = b""
            self._failed(exc, pending)
            self._drained()
            return
        self.written += n
        del self._pending[:n]  # type: ignore[union-attr]
        if not self._pending:
            self._pending = b""
            self._drained()

    def _drop_pending(self) -> None:
        self.dropped += len(self._pending)
        self._pending = b""
        self._drained()

    def _drained(self) -> None:
        self._unwatch()
        waiters, self._waiters = self._waiters, ()
        for callback in waiters:
            callback()

    def _close_fd(self) -> None:
        self._unwatch()
        fd, self.fd = self.fd, None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        elif fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


class NullSink(Sink):
    """The sink of a stream superd never reads: ``null`` (the child writes to
    /dev/null) and ``inherit`` (to superd's own stdout/stderr)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("null")

    def write(self, buffers: Buffers) -> bool:
        return True


class ConsoleSink(Sink):
    """superd's own stdout or stderr, shared by every "console" program.

    A regular file (``superd > out.log``) is written through superd's own
    descriptor. A pipe or terminal is opened again through ``/proc/self/fd``,
    which gives superd a descriptor of its own that can be non-blocking without
    touching the one its parent and siblings share; a socket (systemd's
    journal) is written with ``MSG_DONTWAIT``. So a stalled reader of superd's
    output stalls the console programs (their pipes fill up), never superd.
    """

    __slots__ = ("target", "colour", "_reported")

    def __init__(self, fd: int) -> None:
        super().__init__("stdout" if fd == 1 else "stderr" if fd == 2 else f"fd {fd}")
        self.target = fd
        self.colour = False
        self._reported = False
        try:
            st = os.fstat(fd)
        except OSError:
            return  # closed: everything is dropped
        self.colour = os.isatty(fd) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        if stat.S_ISREG(st.st_mode):
            self._adopt(fd)
            return
        if stat.S_ISSOCK(st.st_mode):
            try:
                sock = socket.socket(fileno=os.dup(fd))
                self._adopt(sock.fileno(), sock)
                self.blocking = False
                return
            except OSError:
                pass
        else:
            try:
                own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
                self._adopt(own)
                self.blocking = False
                return
            except OSError:
                pass
        self._adopt(fd)  # last resort: superd's own descriptor, blocking
        self.blocking = True

    def _failed(self, exc: OSError, nbytes: int) -> None:
        super()._failed(exc, nbytes)
        if not self._reported:
            self._reported = True
            log.error("cannot write program output to superd's %s: %s; dropping it", self.name, exc.strerror or exc)

    def flush_now(self, timeout: float = 2.0) -> None:
        """Write what is kept, waiting up to ``timeout`` seconds (superd is exiting:
        the programs' last lines matter more than a prompt exit)."""
        deadline = time.monotonic() + timeout
        while self._pending and self.fd is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                select.select([], [self.fd], [], left)
            except (OSError, ValueError):
                break
            self._flush()
        if self._pending:
            self._drop_pending()

    def close(self) -> None:
        if self._pending:
            self.flush_now()
        if self.fd is not None and self.fd != self.target:
            self._close_fd()
        self.fd = None

