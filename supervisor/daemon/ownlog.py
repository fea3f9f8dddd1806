"""superd's own log: one line per event on stderr, as text or JSON lines.

The log must never stop superd: a container's log pipeline that stalls, a
terminal paused with Ctrl-S, a full pipe. Lines go to a descriptor of superd's
own (stderr opened again through ``/proc/self/fd/2``, non-blocking, so the
descriptor its parent and its programs share keeps its mode; a socket is
written with ``MSG_DONTWAIT``). What the descriptor does not take at once
waits in a bounded buffer and is written when the descriptor is writable;
what does not fit is dropped, counted, and said once the log flows again.
Messages of asyncio itself go through the same handler and format; so do
superd's log file and the lines ``maintail`` shows (:mod:`.mainlog`).
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import stat
import time
from typing import Optional

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
#: Log bytes kept while stderr does not take them; more is dropped.
BUFFER_MAX = 256 << 10


class TextFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a burst of lines formats its date once
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
        line = f"{self._stamp}.{int(record.msecs):03d} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def encode(handler: logging.Handler, record: logging.LogRecord) -> Optional[bytes]:
    """``record`` as one line of bytes in ``handler``'s format (UTF-8, what
    cannot be encoded replaced); None, after ``handler.handleError``, when it
    cannot be formatted: a bad record must not break logging. Formatted once
    per format: every handler of superd's log with the same format gets the
    same bytes."""
    kind = type(handler.formatter)
    done = record.__dict__.get("_superd_line")
    if done is not None and done[0] is kind:  # stderr and the log file/maintail ring share one format
        return done[1]
    try:
        line = (handler.format(record) + "\n").encode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a bad record must not break logging
        handler.handleError(record)
        return None
    record._superd_line = (kind, line)
    return line


class NonBlockingHandler(logging.Handler):
    """Writes formatted lines to a descriptor without ever blocking for long."""

    def __init__(self, fd: int, limit: int = BUFFER_MAX) -> None:
        super().__init__()
        self.limit = limit
        self.pending = bytearray()
        self.dropped = 0          # lines dropped since the last notice
        self.dropped_total = 0
        self._sock: Optional[socket.socket] = None
        self._watching = None  # the event loop watching the descriptor, while lines wait
        self.fd = self._open(fd)

    def _open(self, fd: int) -> int:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return -1
        if stat.S_ISREG(mode):
            return fd  # a file takes what it is given at once
        if stat.S_ISSOCK(mode):
            try:
                self._sock = socket.socket(fileno=os.dup(fd))
                return self._sock.fileno()
            except OSError:
                return fd
        try:
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            return fd

    def emit(self, record: logging.LogRecord) -> None:
        line = encode(self, record)
        if line is None:
            return
        if self.pending and not self._write_pending():
            self._keep(line)
            return
        self._keep(line)
        self._write_pending()

    def _keep(self, line: bytes) -> None:
        if len(self.pending) + len(line) > self.limit:
            self.dropped += 1
            self.dropped_total += 1
        else:
            self.pending += line

    def _write_pending(self) -> bool:
        """Write what is kept; True when all of it went."""
        while self.pending and self.fd >= 0:
            try:
                if self._sock is not None:
                    n = self._sock.send(self.pending, socket.MSG_DONTWAIT)
                else:
                    n = os.write(self.fd, self.pending)
            except (BlockingIOError, InterruptedError):
                self._watch()
                return False
            except OSError:
                self.dropped_total += self.pending.count(b"\n")
                self.pending.clear()
                return True
            del self.pending[:n]
        if self.fd < 0:
            self.pending.clear()
        self._unwatch()
        if self.dropped:
            notice = f"superd: {self.dropped} log line(s) dropped: stderr was not being read\n".encode()
            self.dropped = 0
            self.pending += notice
            return self._write_pending()
        return True

    def _watch(self) -> None:
        if self._watching is not None or self.fd < 0:
            return
        import asyncio  # loaded by then: not imported before superd keeps ssl out of it

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the next line tries again
        loop.add_writer(self.fd, self._write_pending)
        self._watching = loop

    def _unwatch(self) -> None:
        if self._watching is not None:
            try:
                self._watching.remove_writer(self.fd)
            except (ValueError, OSError, RuntimeError):
                pass
            self._watching = None

    def flush_now(self, timeout: float = 1.0) -> None:
        """Write what is kept, waiting up to ``timeout`` seconds (superd is exiting)."""
        deadline = time.monotonic() + timeout
        while self.pending and self.fd >= 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                select.select([], [self.fd], [], left)
            except (OSError, ValueError):
                break
            self._write_pending()

    def close(self) -> None:
        self.flush_now()
        self._unwatch()
        if self._sock is not None:
            self._sock.close()
        elif self.fd > 2:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = -1
        super().close()


def formatter(fmt: str) -> logging.Formatter:
    """The line format of ``log_format``: "text" or "json"."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup(level: str = "info", fmt: str = "text", stream=None) -> logging.Logger:
    """Configure the "superd" logger (and asyncio's, with the same handler);
    safe to call again: a reload may change the level or the format, which
    applies to every handler of the log (superd's log file too, see
    :mod:`.mainlog`)."""
    # No line shows where it was logged from, nor the thread or process: the
    # logging HOWTO's optimisations (no stack walk, no lookups per record).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logger = logging.getLogger("superd")
    aio = logging.getLogger("asyncio")
    handler: Optional[logging.Handler] = None
    for old in list(logger.handlers):
        if isinstance(old, NonBlockingHandler) and stream is None:
            handler = old  # keep the descriptor and whatever it still holds
        elif isinstance(old, (NonBlockingHandler, logging.StreamHandler)):
            logger.removeHandler(old)
            aio.removeHandler(old)
    if handler is None:
        handler = NonBlockingHandler(2) if stream is None else logging.StreamHandler(stream)
        logger.addHandler(handler)
    for each in logger.handlers:
        each.setFormatter(formatter(fmt))
    logger.setLevel(LEVELS.get(level, logging.INFO))
    logger.propagate = False
    if handler not in aio.handlers:
        aio.addHandler(handler)
    aio.propagate = False
    return logger


def close() -> None:
    """superd is exiting: write what the log still holds (briefly)."""
    for handler in logging.getLogger("superd").handlers:
        if isinstance(handler, NonBlockingHandler):
            handler.flush_now()


def loop_error(loop, context: dict) -> None:
    """The event loop's exception handler: what asyncio reports (a callback
    that raised, a transport that failed) goes to superd's own log, with its
    traceback unless it is an OSError, instead of to the ``asyncio`` logger,
    which superd does not configure."""
    exc = context.get("exception")
    logging.getLogger("superd").error(
        "%s%s", context.get("message", "event loop error"), f": {exc!r}" if exc else "",
        exc_info=exc if isinstance(exc, BaseException) and not isinstance(exc, OSError) else None)
