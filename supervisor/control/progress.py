"""Progress notifications: the steps of a long start, stop or restart, sent
on the asking connection while the request runs.

A client opts in with the request's ``progress`` param, a number of seconds:
nothing is sent until the request has run that long (a quick restart stays
quiet), then the steps so far and every later one go out at once, each as a
``progress`` notification (``{"name", "step"}``) before the response. A client
that does not ask gets nothing new.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

from . import protocol

#: The most notifications one request holds back before its delay ends.
MAX_HELD = 1000


class ProgressSender:
    """Held back ``delay`` seconds, then written as they come; ``close()``
    when the request is answered (nothing is sent after its response)."""

    def __init__(self, writer: Any, delay: float) -> None:
        self.writer = writer
        self._held: Optional[list[bytes]] = []
        self._timer: Optional[asyncio.TimerHandle] = None
        if delay <= 0:
            self._held = None
        else:
            self._timer = asyncio.get_running_loop().call_later(delay, self._release)
        self._closed = False

    def __call__(self, process: Any, step: str) -> None:
        if self._closed:
            return
        message = {"jsonrpc": "2.0", "method": protocol.PROGRESS, "params": {"name": process.name, "step": step}}
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if self._held is None:
            self._write(line)
        elif len(self._held) < MAX_HELD:
            self._held.append(line)

    def _release(self) -> None:
        held, self._held = self._held or [], None
        self._timer = None
        for line in held:
            self._write(line)

    def _write(self, line: bytes) -> None:
        # A few short lines per process: no drain (the response's own send
        # drops a peer that does not read).
        if not self.writer.is_closing():
            self.writer.write(line)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
