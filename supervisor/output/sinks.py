"""Where program output goes: log files with size rotation, superd's console, nowhere.

A sink takes whole lines (see :mod:`supervisor.output`) and must never block
superd's event loop for long:

* a regular file is written with plain ``os.write``: the page cache takes it
  at once, and a disk that cannot keep up slows the loop, which slows the
  reading, which fills the program's pipe, which slows the program;
* anything else (a pipe, a terminal, a socket: superd's own stdout under
  docker or systemd, or a path like ``/dev/stdout``) is written without
  blocking. What the descriptor does not take at once is kept and written when
  it can be, and :meth:`Sink.write` answers ``False`` meanwhile: the caller
  stops reading its pipe until the sink calls it back. Memory stays bounded by
  what one read brought in.

A log file that cannot be opened or written (permission, disk full, a deleted
folder) costs the program nothing: the failure is logged once, counted, the
output is dropped (and counted) and the file is tried again every
:data:`RETRY_SECONDS`; when it works again that is logged too.
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

#: How long a failed log file is left alone before it is tried again.
RETRY_SECONDS = 5.0
#: How often a log file's path is checked to still name the open file (a
#: deleted folder, a rotation by a tool that did not send SIGUSR2).
CHECK_SECONDS = 5.0

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
        self._pending = bytearray()
        self._waiters: list[Callable[[], None]] = []
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
        self._pending += memoryview(data)[n:]
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
            self._failed(exc, total - done)
            return True
        self.written += done
        return True

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the kept bytes are written (at once if there are none)."""
        if not self._pending:
            callback()
        else:
            self._waiters.append(callback)

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
            self._pending.clear()
            self._failed(exc, pending)
            self._drained()
            return
        self.written += n
        del self._pending[:n]
        if not self._pending:
            self._drained()

    def _drop_pending(self) -> None:
        self.dropped += len(self._pending)
        self._pending.clear()
        self._drained()

    def _drained(self) -> None:
        self._unwatch()
        waiters, self._waiters = self._waiters, []
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
    """``null``: the bytes go nowhere (the in-memory ring still keeps the last lines)."""

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


class LogFile(Sink):
    """A program's log file: appended to, rotated by size, reopened on request.

    ``maxbytes`` 0 never rotates; otherwise a write that would take the file
    past ``maxbytes`` rotates it first (at a line boundary): ``path`` becomes
    ``path.1``, ``path.1`` becomes ``path.2`` ... and ``path.{backups}`` is the
    oldest kept. ``backups`` 0 truncates instead. Only regular files rotate:
    ``/dev/stdout`` or a FIFO is just written.
    """

    __slots__ = ("path", "maxbytes", "backups", "make_dirs", "clock", "size", "failures", "failing",
                 "_retry_at", "_dropped_at_failure", "_check_at", "_rotate_after", "_rotate_failing", "users")

    def __init__(self, path: str, maxbytes: int, backups: int, *, make_dirs: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(path)
        self.path = path
        self.maxbytes = maxbytes
        self.backups = backups
        self.make_dirs = make_dirs
        self.clock = clock
        self.size = 0
        self.failures = 0          # times opening, writing or rotating failed
        self.failing = False       # in a failure: output is being dropped
        self._retry_at = 0.0
        self._dropped_at_failure = 0
        self._check_at = 0.0
        self._rotate_after = 0.0   # rotation failed: not before this time
        self._rotate_failing = False
        self.users = 0             # streams writing here (files are shared by path)

    # -- opening

    def open(self) -> bool:
        """Open (or create) the file now; on failure report it and return False."""
        self._close_fd()
        try:
            if self.make_dirs:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            # O_NONBLOCK: a FIFO nobody reads must fail (ENXIO), not hang the loop.
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            self._fail("cannot open", exc)
            return False
        self._adopt(fd)
        if self.regular:
            os.set_blocking(fd, True)
        else:
            self.blocking = False
        try:
            self.size = os.fstat(fd).st_size if self.regular else 0
        except OSError:  # pragma: no cover
            self.size = 0
        self._check_at = self.clock() + CHECK_SECONDS
        return True

    def ensure_open(self) -> bool:
        """Open the file if it is not, unless a recent failure says to wait."""
        if self.fd is not None:
            return True
        if self.failing and self.clock() < self._retry_at:
            return False
        return self.open()

    def reopen(self) -> bool:
        """SIGUSR2: let go of the file (renamed by logrotate) and open the path again."""
        if self._pending:
            self._flush()
        self._drop_pending()
        return self.open()

    def close(self) -> None:
        if self._pending:
            self._flush()
        if self._pending:
            self._drop_pending()
        self._close_fd()

    # -- failures

    def _fail(self, what: str, exc: OSError) -> None:
        self.failures += 1
        self._retry_at = self.clock() + RETRY_SECONDS
        if not self.failing:
            self.failing = True
            self._dropped_at_failure = self.dropped
            log.error("%s %s: %s; the output meant for it is dropped until it works again "
                      "(tried every %gs)", what, self.path, exc.strerror or exc, RETRY_SECONDS)

    def _recovered(self) -> None:
        """A write worked: the failure (if any) is over."""
        self.failing = False
        lost = self.dropped - self._dropped_at_failure
        log.warning("writing %s again (%d bytes of output were dropped meanwhile)", self.path, lost)

    def _failed(self, exc: OSError, nbytes: int) -> None:
        self.dropped += nbytes
        self._close_fd()
        self._fail("cannot write", exc)

    # -- writing

    def write(self, buffers: Buffers) -> bool:
        if self.fd is None or (self.regular and self.clock() >= self._check_at):
            if self.fd is not None:
                self._check_path()
            if not self.ensure_open():
                self.dropped += sum(len(b) for b in buffers)
                return True
        if not self.regular:
            ok = super().write(buffers)
        else:
            nbytes = sum(len(b) for b in buffers)
            if self.maxbytes and self.size + nbytes > self.maxbytes and self.clock() >= self._rotate_after:
                ok = self._write_rotating(b"".join(buffers))
            else:
                before = self.written
                Sink.write(self, buffers)
                self.size += self.written - before
                ok = True
        if self.failing and self.fd is not None:
            self._recovered()
        return ok

    def _write_rotating(self, data: bytes) -> bool:
        pos, end = 0, len(data)
        view = memoryview(data)
        while pos < end:
            room = self.maxbytes - self.size
            if end - pos <= room:
                cut = end - pos
            else:
                newline = data.rfind(b"\n", pos, pos + room) if room > 0 else -1
                cut = newline + 1 - pos if newline >= 0 else 0
                if cut == 0 and self.size == 0:
                    cut = self.maxbytes  # one line longer than maxbytes: cut it
            if cut:
                self._append(view[pos:pos + cut])
                pos += cut
                if self.fd is None:  # the write failed: the rest is dropped too
                    self.dropped += end - pos
                    return True
            if pos < end and not self._rotate():
                self._append(view[pos:])  # could not rotate: keep the output anyway
                return True
        return True

    def _append(self, data) -> None:
        before = self.written
        Sink.write(self, [data])
        self.size += self.written - before

    def _rotate(self) -> bool:
        """Move the backups one step and start an empty file. False when it failed."""
        try:
            if self.backups > 0:
                for i in range(self.backups - 1, 0, -1):
                    try:
                        os.rename(f"{self.path}.{i}", f"{self.path}.{i + 1}")
                    except FileNotFoundError:
                        pass
                os.rename(self.path, f"{self.path}.1")
            else:
                os.ftruncate(self.fd, 0)  # type: ignore[arg-type]
                self.size = 0
                return True
        except OSError as exc:
            self.failures += 1
            self._rotate_after = self.clock() + RETRY_SECONDS
            if not self._rotate_failing:
                self._rotate_failing = True
                log.error("cannot rotate %s: %s; writing on past %d bytes and trying again every %gs",
                          self.path, exc.strerror or exc, self.maxbytes, RETRY_SECONDS)
            return False
        if self._rotate_failing:
            self._rotate_failing = False
            log.warning("rotated %s again", self.path)
        return self.open()

    def _check_path(self) -> None:
        """Is the path still our file? Reopen it when not (deleted, renamed, replaced)."""
        self._check_at = self.clock() + CHECK_SECONDS
        try:
            ours = os.fstat(self.fd)  # type: ignore[arg-type]
            there = os.stat(self.path)
            same = (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino)
        except OSError:
            same = False
        if not same:
            self.open()


def read_last_lines(path: str, count: int, limit: int = 16 << 20) -> list[bytes]:
    """The last ``count`` lines of a file (reading at most ``limit`` bytes from its end).

    A missing file has no lines; other errors raise OSError.
    """
    if count <= 0:
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        end = os.lseek(fd, 0, os.SEEK_END)
        block = 64 << 10
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= count and end - pos < limit:
            step = min(block, pos)
            pos -= step
            data = os.pread(fd, step, pos) + data
            block = min(block * 2, 4 << 20)
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if pos > 0 and lines:
        lines.pop(0)  # it started before what was read
    return lines[-count:]

