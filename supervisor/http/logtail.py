"""supervisord's streaming URLs, so that its ``supervisorctl tail -f NAME
[stderr]`` and ``maintail -f`` work against superd.

``GET /logtail/NAME``, ``/logtail/NAME/stdout``, ``/logtail/NAME/stderr``:
the last :data:`HEAD_BYTES` of the process's output, then its new lines as
they come, as ``text/plain;charset=utf-8`` in chunks, until the client hangs
up (or the process is removed by a reload). NAME is supervisord's
(``group:name``, or ``name`` alone) or superd's instance name. ``GET
/mainlogtail``: superd's own log the same way. As supervisord, 404 when
there is nothing to tail: no such process, output that goes to no file
superd reads (``null``, ``inherit``), no ``[superd] log_file``.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from typing import Optional

from ..core.errors import Failed
from ..core.process import Process
from .response import Response, StreamingResponse, text
from .streaming import OutputFollower

#: How much of what is already written a follow starts with (supervisord's 1024
#: bytes), from the last lines at most.
HEAD_BYTES, HEAD_LINES = 1024, 100
CONTENT_TYPE = "text/plain;charset=utf-8"


def find_process(sv, spec: str) -> Optional[Process]:
    """The process ``spec`` names: ``group:name`` or an instance name; None for none."""
    group, sep, name = spec.partition(":")
    process = sv.processes.get(name if sep else spec)
    if process is None or (sep and process.group != group):
        return None
    return process


def last_bytes(lines: list[bytes], limit: int = HEAD_BYTES) -> bytes:
    """The end of ``lines`` within ``limit`` bytes, from a line's start when one fits."""
    data = b"".join(line + b"\n" for line in lines)
    if len(data) <= limit:
        return data
    data = data[-limit:]
    cut = data.find(b"\n")
    return data[cut + 1:] if 0 <= cut < len(data) - 1 else data


def http_date(when: float) -> str:
    """RFC 9110's date (``Sun, 06 Nov 1994 08:49:37 GMT``), whatever the locale."""
    t = time.gmtime(when)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[t.tm_wday]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[t.tm_mon - 1]
    return f"{day}, {t.tm_mday:02d} {month} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"


def _modified(path: Optional[str]) -> list[tuple[str, str]]:
    """A Last-Modified header for the file at ``path``, as supervisord sends."""
    try:
        return [("Last-Modified", http_date(os.stat(path).st_mtime))] if path else []
    except OSError:
        return []


class LogTail:
    """``/logtail/...`` and ``/mainlogtail`` for one supervisor."""

    def __init__(self, supervisor) -> None:
        self.sv = supervisor

    def process_log(self, path: str) -> Response | StreamingResponse:
        """``path`` is what follows ``/logtail/``: ``NAME`` or ``NAME/CHANNEL``."""
        spec, _, channel = urllib.parse.unquote(path).strip("/").partition("/")
        channel = channel or "stdout"
        process = find_process(self.sv, spec)
        if process is None:
            return text(404, f"no such process: {spec}")
        if channel not in ("stdout", "stderr"):
            return text(404, f"no such channel: {channel} (stdout or stderr)")
        sv = self.sv
        try:
            lines = sv.commands.tail(process, channel, HEAD_LINES, False, None)
        except Failed as exc:
            return text(404, str(exc))
        stream = sv.outputs.stream(process.config, channel, sv.config.daemon.logs_dir)
        first = last_bytes([line.encode("utf-8", "replace") for line in lines])
        timeout = sv.config.daemon.client_timeout

        def open_body(body):
            return first, OutputFollower(stream, body, timeout, events=False)

        return StreamingResponse(CONTENT_TYPE, open_body, _modified(stream.path))

    def main_log(self) -> Response | StreamingResponse:
        path = self.sv.config.daemon.log_file
        if not path or not os.path.exists(path):
            return text(404, f"no log file: {path}" if path else
                        "superd logs to stderr only ([superd] log_file is not set)")
        mainlog = self.sv.mainlog
        first = last_bytes(mainlog.last_lines(HEAD_LINES))
        timeout = self.sv.config.daemon.client_timeout

        def open_body(body):
            return first, OutputFollower(mainlog.stream, body, timeout, events=False)

        return StreamingResponse(CONTENT_TYPE, open_body, _modified(path))
