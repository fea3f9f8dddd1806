"""What a process's state machine needs from the world, as a protocol.

The daemon provides the real one (:mod:`supervisor.daemon.runtime`); the unit
tests provide a fake with a clock they move by hand.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

# The names in quotes are supervisor.core.process.Process, .states.ProcessState
# and .dependencies.Resolution; not imported, as those modules import this one.


class Timer(Protocol):
    def cancel(self) -> None: ...


class Runtime(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> float:
        """Wall-clock time (for "since" and uptimes shown to people)."""
    def spawn(self, process: "Process") -> int: ...
    def send(self, pid: int, sig: int, group: bool) -> None: ...
    def group_alive(self, process: "Process") -> bool:
        """Is anything of the process's run left besides its (reaped) leader?"""
    def group_watched(self, process: "Process") -> bool:
        """Will the runtime call ``process.group_changed()`` as soon as the run
        may have emptied? Then nothing needs polling."""
    def signal_rest(self, process: "Process", sig: int, group_done: bool) -> None:
        """``sig`` to what is left of the run; ``group_done``: not to the
        members of the process group, which have had it already."""
    def kill_group(self, process: "Process") -> None:
        """SIGKILL everything of the run."""
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...
    def restarts_allowed(self) -> bool: ...
    def state_changed(self, process: "Process", old: "ProcessState") -> None: ...
    def reason_changed(self, process: "Process") -> None:
        """What the process is doing changed without a new state: it reported
        itself (not) ready, or its stop went on to the next step."""
    def health_changed(self, process: "Process", old: str, why: str) -> None:
        """The run's ``alive`` check made it healthy or unhealthy (``old``: the
        health before, "unknown" for a new run); ``why``: the check's last result."""
    def watch_ready(self, process: "Process") -> None:
        """Start the readiness check of the run just spawned; it calls
        ``process.mark_ready()`` once the check passes."""
    def unwatch_ready(self, process: "Process") -> None:
        """The run's readiness no longer matters (ready, stopping or gone)."""
    def dependencies(self, process: "Process", request: bool) -> "Resolution":
        """Which dependencies are not met yet, or which failed for good (see
        :func:`supervisor.core.dependencies.resolve`); ``request``: this is a
        start someone asked for."""
    def before_start(self, process: "Process") -> Optional[str]:
        """Only for a program with hooks, before each spawn: None to spawn
        now, else why it waits (its before_start, or the last run's
        after_stop); ``process.hook_done(failure)`` follows."""
    def cancel_before_start(self, process: "Process") -> None:
        """The start is called off: its before_start is killed."""
    def run_command(self, process: "Process", command: tuple[str, ...], timeout: float) -> Optional[Timer]:
        """Run a stop step's command (killed after ``timeout`` seconds);
        ``cancel()`` on the handle kills it sooner."""
