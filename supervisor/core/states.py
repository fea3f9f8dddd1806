"""The states a supervised process and superd itself can be in."""

from __future__ import annotations

import enum


class ProcessState(str, enum.Enum):
    """supervisord's process states, lower case on the wire."""

    STOPPED = "stopped"      # never started, or stopped on request
    STARTING = "starting"    # spawned, startsecs not yet passed
    RUNNING = "running"      # alive past startsecs
    BACKOFF = "backoff"      # waiting before another attempt to start
    STOPPING = "stopping"    # stop signal sent, waiting for it (and its group) to go
    EXITED = "exited"        # ended on its own from running
    FATAL = "fatal"          # could not be started; superd gave up

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


#: States in which the process has a live pid (or a group being waited for).
ACTIVE_STATES = frozenset({ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING})

#: States from which ``start`` spawns a new process.
STARTABLE_STATES = frozenset(
    {ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL, ProcessState.BACKOFF}
)


class DaemonState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RELOADING = "reloading"
    SHUTTING_DOWN = "shutting_down"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value
