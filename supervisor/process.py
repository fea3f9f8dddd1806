"""One supervised process: its state machine.

The machine is pure logic. Everything that touches the system (spawning,
signals, timers, the clock) goes through a :class:`Runtime`, so the rules can be
tested without starting a single process; the supervisor provides the real one.

The rules are supervisord's, minus its known flaws:

* a process that dies before ``startsecs`` goes to BACKOFF and is retried after
  1 s, 2 s, 3 s ...; ``startretries = N`` allows N + 1 attempts, then FATAL;
* an exit from RUNNING is expected when its code is in ``exitcodes``;
  ``autorestart`` decides whether it is started again;
* a restart after a process that ran for a while is immediate, but a process
  that keeps exiting within ``QUICK_RUN`` seconds of its start is throttled
  (1 s, 2 s, ... up to ``MAX_RESTART_DELAY``) instead of spinning;
* a stop is complete only when the process is reaped and, when the stop or the
  kill goes to the group, when its process group is empty.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Optional, Protocol

from .config import Autorestart, InstanceConfig
from .states import ACTIVE_STATES, STARTABLE_STATES, ProcessState

#: A run shorter than this (in seconds, past startsecs) counts as a quick exit.
QUICK_RUN = 1.0
#: The longest pause between automatic restarts of a crash-looping process.
MAX_RESTART_DELAY = 10.0
#: How long a group may take to empty after SIGKILL before superd stops waiting.
KILL_GRACE = 5.0
#: Group emptiness is polled only while a stop waits for it: from 5 ms to 100 ms.
GROUP_POLL_MIN = 0.005
GROUP_POLL_MAX = 0.1


class SpawnError(Exception):
    """The command could not be started at all (missing, not executable, ...).

    ``exit_code`` is what a shell would report: 127 not found, 126 not executable.
    """

    def __init__(self, message: str, exit_code: int = 127) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Timer(Protocol):
    def cancel(self) -> None: ...


class Runtime(Protocol):
    """What a process needs from the outside world."""

    def monotonic(self) -> float: ...
    def spawn(self, process: "Process") -> int: ...
    def send(self, pid: int, sig: int, group: bool) -> None: ...
    def group_alive(self, pgid: int) -> bool: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...
    def stop_group(self, pgid: int, sig: int, waitsecs: float, kill: bool) -> None: ...
    def state_changed(self, process: "Process", old: ProcessState) -> None: ...


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before start attempt ``attempt + 1`` after ``attempt`` failures."""
    return float(attempt)


def restart_delay(quick_exits: int) -> float:
    """Seconds to wait before an automatic restart after ``quick_exits`` quick exits in a row.

    The first restart is immediate; a crash loop backs off linearly to a cap.
    """
    return min(float(max(quick_exits - 1, 0)), MAX_RESTART_DELAY)


def describe_status(status: int) -> tuple[int, str]:
    """Turn a waitpid status into (exitstatus, text): -N for death by signal N."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return -sig, f"killed by {signal_name(sig)}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return code, f"exited with code {code}"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


class Process:
    """The state machine of one program instance."""

    def __init__(self, config: InstanceConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.state = ProcessState.STOPPED
        self.pid: Optional[int] = None
        self.pgid: Optional[int] = None
        self.since = time.time()
        self.started_at: Optional[float] = None     # monotonic time of the last spawn
        self.started_wall: Optional[float] = None   # wall time of the last spawn
        self.exitstatus: Optional[int] = None
        self.spawn_exit_code: Optional[int] = None  # set when the last spawn failed
        self.runs = 0               # times it reached RUNNING
        self.restarts = 0           # spawns superd made on its own (restarts and retries)
        self.attempts = 0           # failed start attempts in a row (BACKOFF)
        self.quick_exits = 0        # quick exits from RUNNING in a row
        self.reason = "not started"  # why the last transition happened
        self.ended_for_good = False  # exited and will not be restarted automatically
        self._timer: Optional[Timer] = None
        self._stop_deadline: Optional[float] = None  # monotonic; SIGKILL when reached
        self._kill_deadline: Optional[float] = None  # monotonic; give up waiting after SIGKILL
        self._killed = False
        self._poll = GROUP_POLL_MIN

    # -- names -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def group(self) -> str:
        return self.config.group

    def __repr__(self) -> str:
        return f"<Process {self.name} {self.state.value} pid={self.pid}>"

    # -- requests ------------------------------------------------------------

    def start(self) -> bool:
        """Start on request. Returns False when it is already starting or running."""
        if self.state not in STARTABLE_STATES:
            return False
        self._cancel_timer()
        self.attempts = 0
        self.quick_exits = 0
        self.ended_for_good = False
        self._spawn()
        return True

    def stop(self, waitsecs: Optional[float] = None, sig: Optional[int] = None) -> bool:
        """Stop on request; ``waitsecs`` caps stopwaitsecs (shutdown compression),
        ``sig`` replaces stopsignal (single-program mode forwards what it got).

        Returns True when the process is (or already was) on its way to STOPPED.
        """
        program = self.config.program
        wait = program.stopwaitsecs if waitsecs is None else max(0.0, min(waitsecs, program.stopwaitsecs))
        if self.state is ProcessState.STOPPING:
            # Already stopping: a tighter deadline (shutdown compression) wins.
            deadline = self.runtime.monotonic() + wait
            if not self._killed and self._stop_deadline is not None and deadline < self._stop_deadline:
                self._stop_deadline = deadline
                self._arm_stop_timer()
            return True
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._cancel_timer()
            self._stop_deadline = self.runtime.monotonic() + wait
            self._killed = False
            stopsignal = program.stopsignal if sig is None else sig
            self._set(ProcessState.STOPPING, f"stopping with {signal_name(stopsignal)}")
            self._send(stopsignal, program.stopasgroup)
            if stopsignal not in (signal.SIGKILL, signal.SIGCONT):
                self._send(signal.SIGCONT, program.stopasgroup)
            if wait <= 0:
                self._kill()
            else:
                self._arm_stop_timer()
            return True
        if self.state is ProcessState.BACKOFF:
            self._cancel_timer()
            self._set(ProcessState.STOPPED, "stopped while waiting to retry")
        return True

    def kill(self) -> None:
        """SIGKILL now (second TERM during shutdown, QUIT)."""
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self.stop(0)
        elif self.state is ProcessState.STOPPING and not self._killed:
            self._kill()
        elif self.state is ProcessState.BACKOFF:
            self.stop()

    def signal(self, sig: int) -> bool:
        """Send an arbitrary signal to the process (not its group)."""
        if self.pid is None:
            return False
        self.runtime.send(self.pid, sig, False)
        return True

    # -- events --------------------------------------------------------------

    def exited(self, status: int) -> None:
        """The reaper collected this process's exit status."""
        code, text = describe_status(status)
        self.exitstatus = code
        pid, self.pid = self.pid, None
        now = self.runtime.monotonic()
        lived = now - (self.started_at or now)
        program = self.config.program
        state = self.state

        if state is ProcessState.STOPPING:
            if self._group_to_wait():
                self.reason = f"{text}; waiting for its process group to empty"
                self._poll = GROUP_POLL_MIN
                self._arm_group_poll()
                return
            self._stopped(text)
            return

        self._cancel_timer()
        if self._group_to_wait():
            # The leader ended on its own and left group members behind: they
            # are stopped like the program would be, while it moves on.
            self.runtime.stop_group(self.pgid, program.stopsignal, program.stopwaitsecs, program.killasgroup)
        self.pgid = None
        if state is ProcessState.STARTING:
            self._start_failed(f"{text} after {lived:.1f}s, before startsecs={program.startsecs:g}")
            return
        if state is not ProcessState.RUNNING:  # pragma: no cover - defensive
            return

        expected = code in program.exitcodes
        text = f"{text}, {'expected' if expected else 'unexpected'}"
        restart = program.autorestart is Autorestart.ALWAYS or (
            program.autorestart is Autorestart.UNEXPECTED and not expected
        )
        if not restart:
            self.ended_for_good = True
            self._set(ProcessState.EXITED, text)
            return
        self.quick_exits = self.quick_exits + 1 if lived < QUICK_RUN else 0
        delay = restart_delay(self.quick_exits)
        self._set(ProcessState.EXITED, text)
        if delay <= 0:
            self.restarts += 1
            self._spawn()
        else:
            self._set(ProcessState.BACKOFF, f"{text}; exited {self.quick_exits} times within {QUICK_RUN:g}s, restarting in {delay:g}s")
            self._timer = self.runtime.call_later(delay, self._retry)

    # -- internals -------------------------------------------------------------

    def _set(self, state: ProcessState, reason: str) -> None:
        old = self.state
        self.state = state
        self.reason = reason
        self.since = time.time()
        self.runtime.state_changed(self, old)

    def _spawn(self) -> None:
        try:
            pid = self.runtime.spawn(self)
        except SpawnError as exc:
            self.pid = None
            self.spawn_exit_code = exc.exit_code
            self.started_at = self.runtime.monotonic()
            self._start_failed(f"spawn error: {exc}")
            return
        self.spawn_exit_code = None
        self.pid = self.pgid = pid
        self.started_at = self.runtime.monotonic()
        self.started_wall = time.time()
        startsecs = self.config.program.startsecs
        if startsecs <= 0:
            self._set(ProcessState.STARTING, f"spawned pid {pid}")
            self._running()
        else:
            self._set(ProcessState.STARTING, f"spawned pid {pid}; running after {startsecs:g}s")
            self._timer = self.runtime.call_later(startsecs, self._running)

    def _running(self) -> None:
        self._timer = None
        if self.state is ProcessState.STARTING:
            self.attempts = 0
            self.runs += 1
            self._set(ProcessState.RUNNING, f"pid {self.pid} running")

    def _start_failed(self, why: str) -> None:
        program = self.config.program
        self.attempts += 1
        if self.attempts > program.startretries:
            self.ended_for_good = True
            tries = "attempt" if self.attempts == 1 else "attempts"
            self._set(ProcessState.FATAL, f"{why}; gave up after {self.attempts} {tries}")
            return
        delay = backoff_delay(self.attempts)
        self._set(
            ProcessState.BACKOFF,
            f"{why}; retry {self.attempts} of {program.startretries} in {delay:g}s",
        )
        self._timer = self.runtime.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if self.state is ProcessState.BACKOFF:
            self.restarts += 1
            self._spawn()

    def _stopped(self, text: str) -> None:
        self._cancel_timer()
        self._stop_deadline = self._kill_deadline = None
        self.pgid = None
        self._set(ProcessState.STOPPED, f"stopped ({text})")

    def _group_to_wait(self) -> bool:
        program = self.config.program
        return (program.stopasgroup or program.killasgroup) and self.pgid is not None and self.runtime.group_alive(self.pgid)

    def _send(self, sig: int, group: bool) -> None:
        target = self.pgid if group else self.pid
        if target is not None:
            self.runtime.send(target, sig, group)

    def _kill(self) -> None:
        self._cancel_timer()
        self._killed = True
        self._kill_deadline = self.runtime.monotonic() + KILL_GRACE
        program = self.config.program
        if self.pid is not None:
            self.runtime.send(self.pid, signal.SIGKILL, False)
        if program.killasgroup and self.pgid is not None:
            self.runtime.send(self.pgid, signal.SIGKILL, True)
        if self.pid is None:
            # Only the group was left; keep polling until it is empty.
            self._poll = GROUP_POLL_MIN
            self._arm_group_poll()

    def _arm_stop_timer(self) -> None:
        self._cancel_timer()
        assert self._stop_deadline is not None
        delay = max(0.0, self._stop_deadline - self.runtime.monotonic())
        self._timer = self.runtime.call_later(delay, self._stop_timeout)

    def _stop_timeout(self) -> None:
        self._timer = None
        if self.state is ProcessState.STOPPING and not self._killed:
            self._kill()

    def _arm_group_poll(self) -> None:
        self._cancel_timer()
        self._timer = self.runtime.call_later(self._poll, self._check_group)
        self._poll = min(self._poll * 2, GROUP_POLL_MAX)

    def _check_group(self) -> None:
        """Only the group is left (the leader is reaped): is it empty yet?"""
        self._timer = None
        if self.state is not ProcessState.STOPPING or self.pid is not None:
            return
        code_text = self.reason.split(";")[0]
        if self.pgid is None or not self.runtime.group_alive(self.pgid):
            self._stopped(code_text)
            return
        now = self.runtime.monotonic()
        if not self._killed and self._stop_deadline is not None and now >= self._stop_deadline:
            self._kill()
            return
        if self._killed and self._kill_deadline is not None and now >= self._kill_deadline:
            self._stopped(f"{code_text}; process group {self.pgid} did not empty after SIGKILL")
            return
        self._arm_group_poll()

    def group_changed(self) -> None:
        """The reaper collected something: a waited-for group may just have emptied."""
        if self.state is ProcessState.STOPPING and self.pid is None and self._timer is not None:
            if self.pgid is None or not self.runtime.group_alive(self.pgid):
                self._stopped(self.reason.split(";")[0])

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- views -----------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def exit_code(self) -> int:
        """The last end as a shell would report it: code, 128+N for signal N."""
        if self.spawn_exit_code is not None:
            return self.spawn_exit_code
        if self.exitstatus is None:
            return 0
        return 128 - self.exitstatus if self.exitstatus < 0 else self.exitstatus

    def uptime(self) -> Optional[float]:
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING) and self.started_wall:
            return max(0.0, time.time() - self.started_wall)
        return None

    def description(self) -> str:
        if self.state is ProcessState.RUNNING:
            return f"pid {self.pid}, uptime {format_duration(self.uptime() or 0)}"
        if self.state is ProcessState.STARTING:
            return f"pid {self.pid}, starting"
        if self.state is ProcessState.STOPPING and self.pid is not None:
            return f"pid {self.pid}, {self.reason}"
        return self.reason


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} day{'s' if days != 1 else ''}, {text}" if days else text
