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
* a run is over only when nothing of it is left: the runtime knows what
  belongs to it (its cgroup, or its process group and the descendants that
  carry its run id). A stop signals the process (or its group, with
  ``stopasgroup``); once the process is gone the rest gets the stop signal
  too; at the deadline everything is killed;
* what a process leaves behind when it exits on its own is stopped the same
  way (stopsignal, stopwaitsecs, SIGKILL) before the exit counts: a restart
  never runs next to the remains of the run before it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Optional, Protocol

from .config import Autorestart, InstanceConfig
from .states import ACTIVE_STATES, STARTABLE_STATES, ProcessState

#: A run shorter than this (seconds from spawn) counts as a quick exit. With
#: startsecs >= QUICK_RUN such an exit is already a failed start (BACKOFF), so
#: the throttle matters for programs with a shorter startsecs, 0 above all.
QUICK_RUN = 1.0
#: The longest pause between automatic restarts of a crash-looping process.
MAX_RESTART_DELAY = 10.0
#: How long a group may take to empty after SIGKILL before superd stops waiting.
KILL_GRACE = 5.0
#: Where the runtime cannot announce that a group emptied, that is polled, only
#: while a stop waits for it: from 5 ms to 100 ms.
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
        self.retired = False         # replaced or removed by a reload: never starts again
        self._timer: Optional[Timer] = None
        self._stop_deadline: Optional[float] = None  # monotonic; SIGKILL when reached
        self._kill_deadline: Optional[float] = None  # monotonic; give up waiting after SIGKILL
        self._killed = False
        self._poll = GROUP_POLL_MIN
        self._stop_signal = signal.SIGTERM  # what the current stop sends
        self._exit_text = ""        # how the leader ended, while the rest is waited for
        # An exit on its own whose remains are being stopped: (state, code,
        # text, lived), handled as an exit once nothing of the run is left.
        self._after: Optional[tuple[ProcessState, int, str, float]] = None

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
        if self.state not in STARTABLE_STATES or self.retired:
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
            # Stopping the remains of an exit: asked to stop, it ends stopped.
            self._after = None
            # Already stopping: a tighter deadline (shutdown compression) wins.
            deadline = self.runtime.monotonic() + wait
            if not self._killed and self._stop_deadline is not None and deadline < self._stop_deadline:
                self._stop_deadline = deadline
                if self.pid is None:
                    self._wait_group()  # only the rest is left: it checks the deadline
                else:
                    self._arm_stop_timer()
            return True
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._cancel_timer()
            self._stop_deadline = self.runtime.monotonic() + wait
            self._killed = False
            self._after = None
            stopsignal = program.stopsignal if sig is None else sig
            self._stop_signal = stopsignal
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
            self._exit_text = text
            if self.runtime.group_alive(self):
                if not self._killed:
                    # The rest of the run gets the stop signal now (the group
                    # had it already with stopasgroup).
                    self._signal_rest(self._stop_signal, program.stopasgroup)
                self.reason = f"{text}; waiting for the rest of its processes to end"
                self._wait_group(fresh=True)
                return
            self._stopped(text)
            return

        self._cancel_timer()
        if self.runtime.group_alive(self):
            # The leader ended on its own and left processes behind (workers,
            # an escaped daemon): they are stopped like the program would be,
            # and only then does the exit count (and a restart happen).
            self._after = (state, code, text, lived)
            self._exit_text = text
            self._stop_signal = program.stopsignal
            self._killed = False
            self._stop_deadline = now + program.stopwaitsecs
            self._set(
                ProcessState.STOPPING,
                f"{text}; what it left behind outlived its leader: stopping it with {signal_name(program.stopsignal)}",
            )
            self._signal_rest(program.stopsignal, False)
            if program.stopwaitsecs <= 0:
                self._kill()
            else:
                self._wait_group(fresh=True)
            return
        self._ended(state, code, text, lived)

    def _ended(self, state: ProcessState, code: int, text: str, lived: float) -> None:
        """The run is over (leader reaped, nothing of it left): what comes next."""
        program = self.config.program
        self.pgid = None
        if state is ProcessState.STARTING and not self.runtime.restarts_allowed():
            self._set(ProcessState.EXITED, f"{text} while superd is shutting down")
            return
        if state is ProcessState.STARTING:
            self._start_failed(f"{text} after {lived:.1f}s, before startsecs={program.startsecs:g}")
            return
        if state is not ProcessState.RUNNING:  # pragma: no cover - defensive
            return

        expected = code in program.exitcodes
        text = f"{text}, {'expected' if expected else 'unexpected'}"
        restart = self.runtime.restarts_allowed() and (
            program.autorestart is Autorestart.ALWAYS
            or (program.autorestart is Autorestart.UNEXPECTED and not expected)
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
        """Nothing of the run is left (or superd gave up waiting)."""
        self._cancel_timer()
        self._stop_deadline = self._kill_deadline = None
        after, self._after = self._after, None
        if after is not None:
            state, code, exit_text, lived = after
            self._ended(state, code, exit_text, lived)
            return
        self.pgid = None
        self._set(ProcessState.STOPPED, f"stopped ({text})")

    def _send(self, sig: int, group: bool) -> None:
        target = self.pgid if group else self.pid
        if target is not None:
            self.runtime.send(target, sig, group)

    def _signal_rest(self, sig: int, group_done: bool) -> None:
        self.runtime.signal_rest(self, sig, group_done)
        if sig not in (signal.SIGKILL, signal.SIGCONT):
            self.runtime.signal_rest(self, signal.SIGCONT, group_done)

    def _kill(self) -> None:
        self._cancel_timer()
        self._killed = True
        self._kill_deadline = self.runtime.monotonic() + KILL_GRACE
        self.runtime.kill_group(self)
        if self.pid is not None:
            self.runtime.send(self.pid, signal.SIGKILL, False)
        if self.pid is None:
            # Only the rest was left; wait until it is gone.
            self._wait_group(fresh=True)

    def _arm_stop_timer(self) -> None:
        self._cancel_timer()
        assert self._stop_deadline is not None
        delay = max(0.0, self._stop_deadline - self.runtime.monotonic())
        self._timer = self.runtime.call_later(delay, self._stop_timeout)

    def _stop_timeout(self) -> None:
        self._timer = None
        if self.state is ProcessState.STOPPING and not self._killed:
            self._kill()

    def _wait_group(self, fresh: bool = False) -> None:
        """The leader is reaped, the rest of the run is not gone yet: look again
        at the next deadline (when the runtime announces the end) or poll."""
        self._cancel_timer()
        if fresh:
            self._poll = GROUP_POLL_MIN
        deadline = self._kill_deadline if self._killed else self._stop_deadline
        left = None if deadline is None else max(0.0, deadline - self.runtime.monotonic())
        if self.runtime.group_watched(self) and left is not None:
            delay = left
        else:
            delay = self._poll if left is None else min(self._poll, left)
            self._poll = min(self._poll * 2, GROUP_POLL_MAX)
        self._timer = self.runtime.call_later(delay, self._check_group)

    def _check_group(self) -> None:
        """Only the rest of the run is left (the leader is reaped): is it gone yet?"""
        self._timer = None
        if self.state is not ProcessState.STOPPING or self.pid is not None:
            return
        if not self.runtime.group_alive(self):
            self._stopped(self._exit_text)
            return
        now = self.runtime.monotonic()
        if not self._killed and self._stop_deadline is not None and now >= self._stop_deadline:
            self._kill()
            return
        if self._killed and self._kill_deadline is not None and now >= self._kill_deadline:
            self._stopped(f"{self._exit_text}; its group did not empty after SIGKILL")
            return
        self._wait_group()

    def group_changed(self) -> None:
        """Something of a run may have ended: a waited-for run may just be over."""
        if self.state is ProcessState.STOPPING and self.pid is None and self._timer is not None:
            if not self.runtime.group_alive(self):
                self._stopped(self._exit_text)

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
