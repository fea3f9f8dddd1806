"""superd's own log beyond stderr: its ``log_file`` and the lines ``maintail`` shows.

:mod:`.ownlog` writes each line of superd's log to stderr. :class:`MainLog`
is a second handler of the same loggers ("superd" and asyncio's), in the same
format, that

* appends each line to ``[superd] log_file`` when the config names one: a
  :class:`~supervisor.output.logfile.LogFile`, as a program's log file is,
  rotated by size with backups (``log_file_maxbytes``, ``log_file_backups``),
  reopened on SIGUSR2 and when its path no longer names it (logrotate), and
  switched by a reload that changes it. A file that cannot be opened or
  written (permission, full disk) is reported once, on stderr, and tried
  again later: the log goes on on stderr meanwhile;
* keeps the last :data:`~supervisor.output.streams.RING_BYTES` of the log in
  memory, with or without a file, and hands new lines to ``maintail -f``
  followers through the bounded backlog program followers share
  (:mod:`supervisor.output.follow`).

A regular file is written at once (the page cache takes it, as for program
logs); a FIFO or terminal named as ``log_file`` is never waited for: what it
does not take while it is full is dropped and counted on the file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from . import ownlog
from ..config import DaemonSettings
from ..output.logfile import LogFile, read_last_lines
from ..output.sinks import NullSink
from ..output.streams import Stream

log = logging.getLogger("superd")

#: Keys of ``[superd]`` whose change a reload passes to :meth:`MainLog.configure`.
LOG_FILE_KEYS = frozenset({"log_file", "log_file_maxbytes", "log_file_backups"})


class OwnLogFile(LogFile):
    """superd's own log file: a failure leaves its lines on stderr alone."""

    __slots__ = ()
    LOSS = "superd's log goes to stderr only"


class MainLog(logging.Handler):
    """superd's log file (if any), its recent lines, and their ``maintail -f`` followers."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = Stream("superd", "log", NullSink(), ring=True)  # the ring and the followers
        self.file: Optional[OwnLogFile] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._writing = False           # a line is being written to the file
        self._later: list[bytes] = []   # lines logged meanwhile (by the file itself), written next

    # -- life

    def attach(self, settings: DaemonSettings) -> None:
        """Take superd's log lines from now on, and open ``settings.log_file``."""
        self.setFormatter(ownlog.formatter(settings.log_format))
        for name in ("superd", "asyncio"):
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
        self.configure(settings)

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that waits for a non-regular file (a FIFO) to take more."""
        self.loop = loop
        if self.file is not None:
            self.file.loop = loop

    def configure(self, settings: DaemonSettings) -> None:
        """Write to ``settings.log_file`` (none: stderr only); a reload changed it."""
        path, current = settings.log_file, self.file
        if current is not None and current.path == path:
            current.maxbytes, current.backups = settings.log_file_maxbytes, settings.log_file_backups
            return
        if current is not None:
            log.info("superd's log goes to %s from now on", path or "stderr only")
            self.file = None
            current.close()
        if path:
            fresh = OwnLogFile(path, settings.log_file_maxbytes, settings.log_file_backups)
            fresh.loop = self.loop
            self.file = fresh
            fresh.open()  # a failure is reported once; later lines try again

    def reopen(self) -> int:
        """SIGUSR2: open the path again (logrotate renamed the file); 1 when it is open."""
        return int(self.file is not None and self.file.reopen())

    def close(self) -> None:
        for name in ("superd", "asyncio"):
            logging.getLogger(name).removeHandler(self)
        if self.file is not None:
            self.file.close()
            self.file = None
        super().close()

    # -- lines

    def emit(self, record: logging.LogRecord) -> None:
        line = ownlog.encode(self, record)
        if line is None:
            return
        self.stream.emit([line])  # the ring, and once for all maintail -f followers
        if self.file is not None:
            self._to_file(line)

    def _to_file(self, line: bytes) -> None:
        # The file logs its own troubles (cannot open, rotated again) while it
        # writes: those lines wait for the write in progress, never recurse.
        if self._writing:
            self._later.append(line)
            return
        self._writing = True
        try:
            self._write(line)
            while self._later and self.file is not None:
                self._write(self._later.pop(0))
        finally:
            self._writing = False
            self._later.clear()

    def _write(self, line: bytes) -> None:
        file = self.file
        assert file is not None
        if file.full:  # a FIFO or terminal that takes nothing now: never waited for
            file.dropped += len(line)
        else:
            file.write([line])

    def last_lines(self, count: int) -> list[bytes]:
        """The last ``count`` lines: from the log file while it is written, else
        from memory (this run's lines, since superd started)."""
        file = self.file
        if file is not None and file.fd is not None and file.regular:
            try:
                return read_last_lines(file.path, count)
            except OSError:
                pass
        return self.stream.last_lines(count)
