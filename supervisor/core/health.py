"""Is a running process still well: its ``alive`` check's results and its watchdog.

Pure bookkeeping. The daemon runs the probes and reads the memory
(:mod:`supervisor.daemon.health`) and reports here; what a process does about
it (a restart through its normal stop) is :meth:`Process.restart_because
<supervisor.core.process.Process.restart_because>`.
"""

from __future__ import annotations

from typing import Any, Optional

UNKNOWN, HEALTHY, UNHEALTHY = "unknown", "healthy", "unhealthy"


class Health:
    """The results of one run's ``alive`` check: ``state`` is "unknown" until
    the first result, then "healthy", or "unhealthy" once ``limit``
    consecutive checks failed."""

    __slots__ = ("state", "failures", "last_error", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.state = UNKNOWN
        self.failures = 0
        self.last_error = ""

    def reset(self) -> None:
        """A new run: nothing known yet."""
        self.state, self.failures, self.last_error = UNKNOWN, 0, ""

    def passed(self) -> bool:
        """A check passed; True when that changed the state."""
        changed = self.state != HEALTHY
        self.state, self.failures = HEALTHY, 0
        return changed

    def failed(self, why: str) -> bool:
        """A check failed; True when this failure made it unhealthy."""
        self.failures += 1
        self.last_error = why
        if self.failures >= self.limit and self.state != UNHEALTHY:
            self.state = UNHEALTHY
            return True
        return False


class Watchdog:
    """systemd's WatchdogSec for a child: ``WATCHDOG=1`` at least every
    ``seconds``, else ``owner.restart_because`` (a Process)."""

    __slots__ = ("owner", "seconds", "_timer")

    def __init__(self, owner: Any, seconds: float) -> None:
        self.owner = owner
        self.seconds = seconds
        self._timer: Optional[Any] = None

    def arm(self) -> None:
        """(Re)start the countdown: the run was spawned, or it pinged."""
        self.cancel()
        self._timer = self.owner.runtime.call_later(self.seconds, self._missed)

    def ping(self) -> None:
        if self._timer is not None:
            self.arm()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _missed(self) -> None:
        self._timer = None
        self.owner.restart_because(f"watchdog: no WATCHDOG=1 within {self.seconds:g}s")
