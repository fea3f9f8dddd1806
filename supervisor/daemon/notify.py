"""sd_notify: tell systemd (or anything listening on $NOTIFY_SOCKET) how superd is doing.

A datagram to a Unix socket; the address is a path or, with a leading '@', an
abstract socket name. Without $NOTIFY_SOCKET every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping, Optional

log = logging.getLogger("superd")


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self.watchdog_usec = _watchdog_usec(environ)
        self.address: Optional[str] = None
        self._sock: Optional[socket.socket] = None
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never wait on systemd from the event loop
            except OSError as exc:  # pragma: no cover
                log.warning("sd_notify disabled: %s", exc)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: object) -> bool:
        """Send ``KEY=value`` lines, e.g. ``send(READY=1, STATUS="3 running")``."""
        if self._sock is None or self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(message.encode(), self.address)
            return True
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it in MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _watchdog_usec(environ: Mapping[str, str]) -> Optional[int]:
    """systemd's watchdog interval for this process, if it asked for pings."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec
