"""Signals as event-loop callbacks: none lost, however many arrive at once.

asyncio's ``add_signal_handler`` learns which signal came from one byte per
delivery on its wake-up socket. When a thousand programs end together, their
SIGCHLDs fill that socket while the loop is busy: Python prints a traceback
for every byte it cannot write, and a SIGTERM or SIGQUIT arriving then is
lost with its byte.

Here the byte only wakes the loop (its value is never read, and a full
socket already means a wake-up is due); which signals came is recorded by
the Python-level handler, which CPython runs for every signal it caught.
The callbacks then run from the loop, in the order the handlers ran. Two
deliveries of one signal that both arrive before its handler runs are one
(CPython keeps a flag per signal, as the kernel does for a pending signal),
and signals that arrive together are handled in signal-number order.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Callable, Optional


class SignalQueue:
    """Owns superd's signal handlers while the loop runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handlers: dict[int, tuple[Callable[..., object], tuple]] = {}
        self._pending: list[int] = []
        self._scheduled = False
        self._wake_read, self._wake_write = socket.socketpair()
        for sock in (self._wake_read, self._wake_write):
            sock.setblocking(False)
        self._previous_wakeup: Optional[int] = None
        self._open = False

    def open(self) -> None:
        """Start waking the loop on signals (before any handler is added)."""
        self._previous_wakeup = signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)
        self._loop.add_reader(self._wake_read.fileno(), self._drain)
        self._open = True

    def add(self, sig: int, callback: Callable[..., object], *args: object) -> None:
        """``callback(*args)`` runs in the loop after each delivery of ``sig``."""
        self._handlers[sig] = (callback, args)
        signal.signal(sig, self._caught)
        signal.siginterrupt(sig, False)  # other system calls go on; the wake-up byte ends the wait

    def close(self) -> None:
        """Back to the default handlers; the loop is no longer woken."""
        for sig in self._handlers:
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):  # pragma: no cover
                pass
        self._handlers.clear()
        if self._open:
            signal.set_wakeup_fd(-1 if self._previous_wakeup is None else self._previous_wakeup)
            self._loop.remove_reader(self._wake_read.fileno())
            self._open = False
        self._wake_read.close()
        self._wake_write.close()

    # -- inside the signal handler: as little as possible ------------------------

    def _caught(self, signum: int, frame: object) -> None:
        self._pending.append(signum)
        if not self._scheduled and not self._loop.is_closed():
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._dispatch)

    # -- in the loop ------------------------------------------------------------

    def _drain(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _dispatch(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        reaped = False
        for signum in pending:
            if signum == signal.SIGCHLD:
                if reaped:
                    continue  # one reap collects every child that ended
                reaped = True
            entry = self._handlers.get(signum)
            if entry is None:
                continue
            callback, args = entry
            try:
                callback(*args)
            except Exception as exc:  # the signals after it still count
                self._loop.call_exception_handler(
                    {"message": f"error in the handler of signal {signum}", "exception": exc})
