"""A program's log file: appended to, rotated by size between lines, reopened on request.

A log file that cannot be opened or written (permission, disk full, a deleted
folder) costs the program nothing: the failure is logged once, counted, the
output is dropped (and counted) and the file is tried again every
:data:`RETRY_SECONDS`; when it works again that is logged too. Also here:
:func:`read_last_lines`, how ``tail`` reads a file's end.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Callable

from .sinks import Buffers, Sink

log = logging.getLogger("superd")

#: How long a failed log file is left alone before it is tried again.
RETRY_SECONDS = 5.0
#: How often a log file's path is checked to still name the open file (a
#: deleted folder, a rotation by a tool that did not send SIGUSR2).
CHECK_SECONDS = 5.0


class LogFile(Sink):
    """A program's log file: appended to, rotated by size, reopened on request.

    ``maxbytes`` 0 never rotates; otherwise a write that would take the file
    past ``maxbytes`` rotates it first (at a line boundary): ``path`` becomes
    ``path.1``, ``path.1`` becomes ``path.2`` ... and ``path.{backups}`` is the
    oldest kept. ``backups`` 0 truncates instead. Only regular files rotate:
    ``/dev/stdout`` or a FIFO is just written.
    """

    __slots__ = ("path", "maxbytes", "backups", "make_dirs", "clock", "size", "failures", "failing",
                 "_retry_at", "_dropped_at_failure", "_check_at", "_rotate_after", "_rotate_failing", "users", "_unended")

    #: What a failure to open or write the file costs, for the message that reports it.
    LOSS = "the output meant for it is dropped"

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
        self._unended = False      # a failed write left a line without its end in the file

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
        if self.size == 0:
            self._unended = False  # a new file: no cut line to end
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

    def clear(self) -> None:
        """Empty the file (``superctl clear``); the next line starts it again.
        Only a regular file is emptied. Raises OSError."""
        if self._pending:
            self._flush()
        if os.path.isfile(self.path):
            os.truncate(self.path, 0)
        self.size = 0
        self._unended = False

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
            log.error("%s %s: %s; %s until it works again (tried every %gs)",
                      what, self.path, exc.strerror or exc, self.LOSS, RETRY_SECONDS)

    def _recovered(self) -> None:
        """A write worked: the failure (if any) is over."""
        self.failing = False
        lost = self.dropped - self._dropped_at_failure
        log.warning("writing %s again (%d bytes of output were dropped meanwhile)", self.path, lost)

    def _failed(self, exc: OSError, nbytes: int) -> None:
        self.dropped += nbytes
        self._close_fd()
        self._fail("cannot write", exc)

    def _cut(self, buffers: Buffers, done: int) -> int:
        """The disk filled up in the middle of a line: take back the start of
        that line (it counts as dropped); when that fails, the next write
        after recovery ends it first, so no two lines are ever merged."""
        written = b"".join(buffers)[:done]
        start = len(written) - (written.rfind(b"\n") + 1)
        if not start or self.fd is None:
            return 0
        try:
            os.ftruncate(self.fd, os.fstat(self.fd).st_size - start)
        except OSError:
            self._unended = True
            return 0
        self.written -= start
        return start

    def _deleted(self) -> bool:
        """True when the open file has no name left (deleted, or its folder was)."""
        try:
            return os.fstat(self.fd).st_nlink == 0  # type: ignore[arg-type]
        except OSError:
            return True

    # -- writing

    def write(self, buffers: Buffers) -> bool:
        if self.fd is not None and self.regular and self._deleted():
            # Written to a deleted file, output is lost without a trace: not one write.
            log.warning("%s was deleted: writing a new one", self.path)
            self.open()
        elif self.fd is None or (self.regular and self.clock() >= self._check_at):
            if self.fd is not None:
                self._check_path()
        if self.fd is None:
            if not self.ensure_open():
                self.dropped += sum(len(b) for b in buffers)
                return True
        if self._unended and self.regular:
            self._append(b"\n")  # the line a failed write cut: ended before the next one
            self._unended = self.fd is None
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
