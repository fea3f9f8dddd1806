"""What a process reports: its description, uptime and exit code, whether it
meets a dependent's condition, and how an exit status reads.

A part of :class:`~supervisor.core.process.Process` (a mixin: the state and
the slots are the process's), kept apart so each file holds one concern. It
only reads the process; every change of state is the state machine's.
"""

from __future__ import annotations

import signal
from typing import Optional

from .durations import format_duration
from .states import ACTIVE_STATES, ProcessState


def describe_status(status: int) -> tuple[int, str]:
    """Turn a waitpid status into (exitstatus, text): -N for death by signal N."""
    sig = status & 0x7F
    if sig == 0:
        code = (status >> 8) & 0xFF
    elif sig != 0x7F:
        return -sig, f"killed by {signal_name(sig)}"
    else:  # stopped: not reported without WUNTRACED
        code = status
    return code, f"exited with code {code}"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


class Reporting:
    """The views of a :class:`~supervisor.core.process.Process`."""

    __slots__ = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def ready(self) -> bool:
        """Running and ready: what dependents, rolling restarts and ``wait --state ready`` want."""
        return self.state is ProcessState.RUNNING and self._ready

    def satisfies(self, condition: str) -> bool:
        """Does it meet a dependent's ``depends_on`` condition?

        "completed": ended for good with an expected code (a one-shot job that
        did its work); "started": spawned and alive (starting or running,
        ready or not), or completed; "ready": ready, or completed.
        """
        completed = (
            self.state is ProcessState.EXITED
            and self.ended_for_good
            and self.exitstatus in self.config.program.exitcodes
        )
        if condition == "completed":
            return completed
        if condition == "started":
            spawned = self.pid is not None and self.state in (ProcessState.STARTING, ProcessState.RUNNING)
            return spawned or completed
        return self.ready or completed

    def exit_code(self) -> int:
        """The last end as a shell would report it: code, 128+N for signal N."""
        if self.spawn_exit_code is not None:
            return self.spawn_exit_code
        if self.exitstatus is None:
            return 0
        return 128 - self.exitstatus if self.exitstatus < 0 else self.exitstatus

    def uptime(self) -> Optional[float]:
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING) and self.pid is not None \
                and self.started_at is not None:
            return max(0.0, self.runtime.monotonic() - self.started_at)
        return None

    def description(self) -> str:
        if self.state is ProcessState.BACKOFF and self.restart_at is not None:
            left = max(0, -int((self.runtime.monotonic() - self.restart_at[0]) // 1))  # whole seconds, up
            return f"{self.restart_at[1]}: restarting in {left} s"
        if self.state is ProcessState.RUNNING:
            text = f"pid {self.pid}, uptime {format_duration(self.uptime() or 0)}"
            if self.health is not None and self.health.failures:
                text += f", {self.health.state}: {self.health.failures} failed checks, last: {self.health.last_error}"
            return text if self._ready else f"{text}, not ready: {self._not_ready_why}"
        if self.state is ProcessState.STARTING and self.pid is None:
            return self.reason
        if self.state is ProcessState.STARTING:
            waiting = []
            if self.config.ready is not None and not self._ready:
                waiting.append(f"ready ({self.config.ready})")
            if not self._startsecs_passed and self.config.program.startsecs > 0:
                waiting.append(f"startsecs={self.config.program.startsecs:g}")
            return f"pid {self.pid}, starting" + (f": waiting for {' and '.join(waiting)}" if waiting else "")
        if self.state is ProcessState.STOPPING and self.pid is not None:
            return f"pid {self.pid}, {self.reason}"
        return self.reason

    def _start_goal(self) -> str:
        """What turns STARTING into RUNNING, for messages."""
        startsecs = self.config.program.startsecs
        goals = [f"startsecs={startsecs:g}"] if startsecs > 0 else []
        if self.config.ready is not None:
            goals.append(f"ready ({self.config.ready})")
        return " and ".join(goals) or "spawn"
