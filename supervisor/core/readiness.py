"""A run's readiness and health: when STARTING becomes RUNNING, and when a
running process is unwell (its ``alive`` check, its watchdog) and is restarted.

A part of :class:`~supervisor.core.process.Process` (a mixin: the state and
the slots are the process's), kept apart so each file holds one concern.
"""

from __future__ import annotations

from .states import ProcessState
from .stopping import Stop


class Readiness:
    """The readiness and health rules of a :class:`~supervisor.core.process.Process`."""

    __slots__ = ()

    def mark_ready(self, how: str = "") -> None:
        """The run's readiness check passed (or it sent READY=1 again)."""
        if self.pid is None or self.state not in (ProcessState.STARTING, ProcessState.RUNNING):
            return
        was, self._ready = self._ready, True
        self._not_ready_why = ""
        if self.state is ProcessState.STARTING:
            self._maybe_running(how)
        elif not was:
            self.reason = f"pid {self.pid} ready again" + (f" ({how})" if how else "")
            self.runtime.reason_changed(self)

    def alive_result(self, ok: bool, why: str = "") -> None:
        """The ``alive`` check of the running process passed, or failed with ``why``."""
        health = self.health
        if health is None or self.state is not ProcessState.RUNNING or self.stopping is not None:
            return
        old = health.state
        if ok:
            if health.passed():
                self.runtime.health_changed(self, old, f"{self.config.alive}: passed")
        elif health.failed(why):
            unhealthy = f"{health.failures} failed checks in a row ({self.config.alive}); last: {why}"
            self.runtime.health_changed(self, old, unhealthy)
            self.restart_because(f"unhealthy: {unhealthy}")

    def watchdog_ping(self, trigger: bool = False) -> None:
        """sd_notify WATCHDOG=1 (or WATCHDOG=trigger: restart now)."""
        if self.watchdog is None or self.pid is None:
            return
        if trigger:
            self.restart_because("watchdog: the program sent WATCHDOG=trigger")
        else:
            self.watchdog.ping()

    def restart_because(self, why: str) -> None:
        """Restart a run that is unwell (alive check, watchdog, memory) through
        its normal stop; then the restart policy decides when it starts again."""
        if (self.pid is None or self.stopping is not None or not self.runtime.restarts_allowed()
                or self.state not in (ProcessState.STARTING, ProcessState.RUNNING)):
            return
        self._end_readiness()
        self.pending_restart = why
        steps = self.config.stop_plan() if self.config.stop_time() > 0 else ()
        self._begin_stop(Stop(self, steps, why))

    def mark_not_ready(self, why: str) -> None:
        """A running program said it is not ready (reloading, stopping)."""
        if self.state is ProcessState.RUNNING and self._ready:
            self._ready = False
            self._not_ready_why = why
            self.reason = f"pid {self.pid} not ready: {why}"
            self.runtime.reason_changed(self)

    def extend_ready_timeout(self, seconds: float) -> None:
        """sd_notify EXTEND_TIMEOUT_USEC: a starting program asks for ``seconds``
        more from now; a deadline further away stays."""
        if self.state is not ProcessState.STARTING or self._ready_timer is None or self._ready_deadline is None:
            return
        deadline = self.runtime.monotonic() + seconds
        if deadline > self._ready_deadline:
            self._ready_deadline = deadline
            self._ready_timer.cancel()
            self._ready_timer = self.runtime.call_later(seconds, self._ready_timeout)

    def _startsecs_done(self) -> None:
        self._timer = None
        if self.state is ProcessState.STARTING and self.pid is not None:
            self._startsecs_passed = True
            if self.config.ready is None:
                self._ready = True
            self._maybe_running()

    def _maybe_running(self, how: str = "") -> None:
        if self.state is ProcessState.STARTING and self._startsecs_passed and self._ready:
            if self._ready_timer is not None:
                self._ready_timer.cancel()
                self._ready_timer = None
            self.attempts = 0
            self.runs += 1
            self._set(ProcessState.RUNNING, f"pid {self.pid} running" + (f", ready ({how})" if how else ""))
            if self.state is ProcessState.RUNNING and (self.health is not None or self.config.program.memory_restart):
                self.runtime.watch_running(self)

    def _ready_timeout(self) -> None:
        self._ready_timer = None
        if self.state is ProcessState.STARTING and self.pid is not None and not self._ready:
            why = f"not ready within ready_timeout={self.config.program.ready_timeout:g}s ({self.config.ready})"
            self.stop()
            if self.stopping is not None:
                self.stopping.failing = why

    def _end_readiness(self) -> None:
        """The run can no longer become ready: its check stops."""
        if self._ready_timer is not None:
            self._ready_timer.cancel()
            self._ready_timer = None
        if self.config.ready is not None:
            self.runtime.unwatch_ready(self)
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.health is not None or self.config.program.memory_restart:
            self.runtime.unwatch_running(self)
