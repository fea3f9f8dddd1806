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
  never runs next to the remains of the run before it;
* a stop is a sequence of steps (a signal or a command, then a wait for the
  program to be gone), SIGKILL after the last; stopsignal and stopwaitsecs
  are the one-step form. A shorter time (shutdown compression) shrinks every
  step's wait in proportion;
* a program with a readiness check (``ready``) stays STARTING until it is
  ready and startsecs has passed; not ready within ``ready_timeout`` is a
  failed start (stopped, then BACKOFF like any failed start). Without a check
  it is ready once RUNNING. A running program may report itself not ready
  (sd_notify RELOADING=1 or STOPPING=1) and ready again (READY=1);
* a program with ``depends_on`` is spawned only once every dependency meets
  its condition (ready; started; or completed: exited for good with an
  expected code, the one-shot job); until then it is STARTING without a pid,
  and a dependency that fails for good makes it FATAL.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Optional, Protocol

from ..config.model import Autorestart, InstanceConfig, StopStep
from .states import ACTIVE_STATES, STARTABLE_STATES, ProcessState

#: A run shorter than this (seconds from spawn) counts as a quick exit. With
#: startsecs >= QUICK_RUN such an exit is already a failed start (BACKOFF), so
#: the throttle matters for programs with a shorter startsecs, 0 above all.
QUICK_RUN = 1.0
#: The longest pause between automatic restarts of a crash-looping process.
MAX_RESTART_DELAY = 10.0
#: A stop signal is followed by SIGCONT, so that a stopped (paused) program
#: can act on it; not after these: SIGCONT would discard a pending job-control
#: signal (POSIX), and a SIGTSTP step must reach the program's handler.
NO_CONT_AFTER = frozenset({signal.SIGKILL, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
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
    def reason_changed(self, process: "Process") -> None:
        """What the process is doing changed without a new state: it reported
        itself (not) ready, or its stop went on to the next step."""
    def watch_ready(self, process: "Process") -> None:
        """Start the readiness check of the run just spawned; it calls
        ``process.mark_ready()`` once the check passes."""
    def unwatch_ready(self, process: "Process") -> None:
        """The run's readiness no longer matters (ready, stopping or gone)."""
    def dependencies(self, process: "Process", request: bool) -> tuple[list[tuple[str, str]], Optional[str]]:
        """([(dependency, condition) not met yet], the first that failed for
        good or None). Starts the dependencies that are stopped, except those
        stopped on request (``held``) unless ``request``: this is a start
        someone asked for."""
    def run_command(self, process: "Process", command: tuple[str, ...], timeout: float) -> Optional[Timer]:
        """Run a stop step's command (killed after ``timeout`` seconds);
        ``cancel()`` on the handle kills it sooner."""


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

    # Slots: superd keeps one of these per instance for as long as it runs.
    __slots__ = (
        "config", "runtime", "state", "pid", "pgid", "since", "started_at", "started_wall", "exitstatus",
        "spawn_exit_code", "runs", "restarts", "attempts", "quick_exits", "reason", "ended_for_good",
        "retired", "waiting_for", "status_text", "_ready", "_startsecs_passed", "_ready_timer", "_ready_deadline",
        "_timer",
        "_steps", "_stop_deadline", "_kill_deadline", "_killed", "_poll", "_stop_signal", "_exit_text",
        "_after", "_failing", "_why", "_command", "held",
    )

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
        self.waiting_for: tuple[str, ...] = ()  # dependencies not ready yet (STARTING, no pid)
        self.status_text: Optional[str] = None  # the run's last sd_notify STATUS=
        self._ready = False          # the run passed its readiness check
        self._startsecs_passed = False
        self._ready_timer: Optional[Timer] = None
        self._ready_deadline: Optional[float] = None  # monotonic
        self._timer: Optional[Timer] = None
        self._steps: list[StopStep] = []  # the stop's steps after the current one
        self._stop_deadline: Optional[float] = None  # monotonic; the current step ends
        self._kill_deadline: Optional[float] = None  # monotonic; give up waiting after SIGKILL
        self._killed = False
        self._poll = GROUP_POLL_MIN
        self._stop_signal: Optional[int] = None  # the last signal the current stop sent
        self._exit_text = ""        # how the leader ended, while the rest is waited for
        # An exit on its own whose remains are being stopped: (state, code,
        # text, lived), handled as an exit once nothing of the run is left.
        self._after: Optional[tuple[ProcessState, int, str, float]] = None
        # A stop whose end counts as a failed start (not ready in time): why.
        self._failing: Optional[str] = None
        self._why = ""              # what the current stop is about, when not a request
        self._command: Optional[Timer] = None  # the running command of a stop step
        self.held = False           # stopped on request: dependents do not start it on their own

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
        self.held = False
        self._launch(request=True)
        return True

    def stop(self, waitsecs: Optional[float] = None, sig: Optional[int] = None) -> bool:
        """Stop on request; ``waitsecs`` caps the stop's time before SIGKILL
        (shutdown compression), ``sig`` replaces the stop's signals
        (single-program mode forwards what it got).

        Returns True when the process is (or already was) on its way to STOPPED.
        """
        total = self.config.stop_time()
        budget = total if waitsecs is None else max(0.0, min(waitsecs, total))
        if self.state is ProcessState.STOPPING:
            # Asked to stop while the remains of an exit (or a run that was
            # not ready in time) are being stopped: it ends stopped.
            self._after = None
            self._failing = None
            if not self._killed and self._stop_deadline is not None:
                self._tighten(self.runtime.monotonic() + budget)
            return True
        if self.state is ProcessState.STARTING and self.pid is None:
            self._cancel_timer()
            self.waiting_for = ()
            self._set(ProcessState.STOPPED, "stopped while waiting for its dependencies")
            return True
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._end_readiness()
            self._after = None
            steps = self.config.stop_plan() if sig is None else (StopStep(sig, wait=total),)
            self._begin_stop(_scaled(steps, budget) if budget > 0 else ())
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
        self.pid = None
        now = self.runtime.monotonic()
        lived = now - (self.started_at or now)
        program = self.config.program
        state = self.state
        self._end_readiness()

        if state is ProcessState.STOPPING:
            self._exit_text = text
            if self.runtime.group_alive(self):
                self.reason = f"{text}; waiting for the rest of its processes to end"
                if self._killed or self._stop_signal is None:
                    # After SIGKILL, or during a command step (which sent no
                    # signal): the rest has the step's time to end.
                    self._wait_group(fresh=True)
                else:
                    # The rest of the run gets the stop signal now (the group
                    # had it already with stopasgroup).
                    self._signal_rest(self._stop_signal, program.stopasgroup)
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
            steps = [step for step in self.config.stop_plan() if step.signal is not None]
            self._begin_stop(steps or [StopStep(signal.SIGTERM, wait=self.config.stop_time())],
                             f"{text}; what it left behind outlived its leader")
            return
        self._ended(state, code, text, lived)

    def mark_ready(self, how: str = "") -> None:
        """The run's readiness check passed (or it sent READY=1 again)."""
        if self.pid is None or self.state not in (ProcessState.STARTING, ProcessState.RUNNING):
            return
        was, self._ready = self._ready, True
        if self.state is ProcessState.STARTING:
            self._maybe_running(how)
        elif not was:
            self.reason = f"pid {self.pid} ready again" + (f" ({how})" if how else "")
            self.runtime.reason_changed(self)

    def mark_not_ready(self, why: str) -> None:
        """A running program said it is not ready (reloading, stopping)."""
        if self.state is ProcessState.RUNNING and self._ready:
            self._ready = False
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

    def dependencies_changed(self) -> None:
        """A process changed state: a waiting process may start now."""
        if (self.state is ProcessState.STARTING and self.pid is None and self.waiting_for
                and self.runtime.restarts_allowed()):  # shutting down: it only waits to be stopped
            self._launch()

    def _ended(self, state: ProcessState, code: int, text: str, lived: float) -> None:
        """The run is over (leader reaped, nothing of it left): what comes next."""
        program = self.config.program
        self.pgid = None
        if state is ProcessState.STARTING and not self.runtime.restarts_allowed():
            self._set(ProcessState.EXITED, f"{text} while superd is shutting down")
            return
        if state is ProcessState.STARTING:
            self._start_failed(f"{text} after {lived:.1f}s, before {self._start_goal()}")
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
            self._launch()
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

    def _launch(self, request: bool = False) -> None:
        """Spawn, once every dependency is ready; until then wait, STARTING without a pid.

        ``request``: a start someone asked for, which starts held dependencies too."""
        if self.config.program.depends_on:
            waiting, failed = self.runtime.dependencies(self, request)
            if failed is not None:
                self.waiting_for = ()
                self.ended_for_good = True
                self._set(ProcessState.FATAL, f"not started: its dependency {failed}")
                return
            if waiting:
                names = tuple(name for name, _ in waiting)
                changed = names != self.waiting_for or self.state is not ProcessState.STARTING
                self.waiting_for = names
                if changed:
                    self.pid = None
                    what = ", ".join(f"{name} to {_CONDITION_WORDS.get(c, c)}" for name, c in waiting)
                    self._set(ProcessState.STARTING, f"waiting for {what}")
                return
            self.waiting_for = ()
        self._spawn()

    def _spawn(self) -> None:
        self._ready = self._startsecs_passed = False
        self.status_text = None
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
        if self.config.ready is not None:
            self._ready_deadline = self.started_at + self.config.program.ready_timeout
            self._ready_timer = self.runtime.call_later(self.config.program.ready_timeout, self._ready_timeout)
            self.runtime.watch_ready(self)
        self._set(ProcessState.STARTING, f"spawned pid {pid}; running after {self._start_goal()}")
        startsecs = self.config.program.startsecs
        if startsecs <= 0:
            self._startsecs_done()
        else:
            self._timer = self.runtime.call_later(startsecs, self._startsecs_done)

    def _start_goal(self) -> str:
        """What turns STARTING into RUNNING, for messages."""
        startsecs = self.config.program.startsecs
        goals = [f"startsecs={startsecs:g}"] if startsecs > 0 else []
        if self.config.ready is not None:
            goals.append(f"ready ({self.config.ready})")
        return " and ".join(goals) or "spawn"

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

    def _ready_timeout(self) -> None:
        self._ready_timer = None
        if self.state is ProcessState.STARTING and self.pid is not None and not self._ready:
            why = f"not ready within ready_timeout={self.config.program.ready_timeout:g}s ({self.config.ready})"
            self.stop()
            self._failing = why

    def _end_readiness(self) -> None:
        """The run can no longer become ready: its check stops."""
        if self._ready_timer is not None:
            self._ready_timer.cancel()
            self._ready_timer = None
        if self.config.ready is not None:
            self.runtime.unwatch_ready(self)

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
            self._launch()

    def _stopped(self, text: str) -> None:
        """Nothing of the run is left (or superd gave up waiting)."""
        self._cancel_timer()
        self._cancel_command()
        self._stop_deadline = self._kill_deadline = None
        self._steps = []
        after, self._after = self._after, None
        failing, self._failing = self._failing, None
        if after is not None:
            state, code, exit_text, lived = after
            self._ended(state, code, exit_text, lived)
            return
        self.pgid = None
        if failing is not None and self.runtime.restarts_allowed():
            self._start_failed(failing)
            return
        self._set(ProcessState.STOPPED, f"stopped ({text})")

    # -- the steps of a stop ---------------------------------------------------

    def _begin_stop(self, steps, why: str = "") -> None:
        self._cancel_timer()
        self._killed = False
        self._stop_signal = None
        self._steps = list(steps)
        self._why = why
        self._next_step()

    def _next_step(self) -> None:
        """Carry out the stop's next step, or SIGKILL when none is left."""
        self._cancel_timer()
        self._cancel_command()
        if not self._steps:
            if self.state is not ProcessState.STOPPING:
                self._set(ProcessState.STOPPING, "; ".join(filter(None, (self._why, "stopping: SIGKILL"))))
            self._kill()
            return
        step = self._steps.pop(0)
        program = self.config.program
        self._stop_deadline = self.runtime.monotonic() + step.wait
        what = signal_name(step.signal) if step.signal is not None else " ".join(step.command)
        more = f", then {len(self._steps)} more step{'s' if len(self._steps) != 1 else ''}" if self._steps else ""
        reason = f"stopping with {what}, up to {step.wait:.3g}s{more}"
        if self._why:
            reason = f"{self._why}; {reason}"
        if self.state is ProcessState.STOPPING:
            self.reason = reason
            self.runtime.reason_changed(self)
        else:
            self._set(ProcessState.STOPPING, reason)
        if step.signal is not None:
            self._stop_signal = step.signal
            if self.pid is not None:
                self._send(step.signal, program.stopasgroup)
                if step.signal not in NO_CONT_AFTER:
                    self._send(signal.SIGCONT, program.stopasgroup)
            else:
                self._signal_rest(step.signal, False)
        else:
            self._stop_signal = None
            self._command = self.runtime.run_command(self, step.command, step.wait)
        if step.wait <= 0:
            self._next_step()
        elif self.pid is None:
            self._wait_group(fresh=True)
        else:
            self._timer = self.runtime.call_later(step.wait, self._step_timeout)

    def _tighten(self, end: float) -> None:
        """The whole stop must be over by ``end``: every step left shrinks alike."""
        now = self.runtime.monotonic()
        assert self._stop_deadline is not None
        current = max(0.0, self._stop_deadline - now)
        left = current + sum(step.wait for step in self._steps)
        budget = max(0.0, end - now)
        if budget >= left:
            return
        factor = budget / left if left > 0 else 0.0
        self._stop_deadline = now + current * factor
        self._steps = list(_scaled(self._steps, sum(s.wait for s in self._steps) * factor))
        if self.pid is None:
            self._wait_group()  # only the rest is left: it checks the deadline
        else:
            self._cancel_timer()
            self._timer = self.runtime.call_later(current * factor, self._step_timeout)

    def _step_timeout(self) -> None:
        self._timer = None
        if self.state is ProcessState.STOPPING and not self._killed:
            self._next_step()

    def _send(self, sig: int, group: bool) -> None:
        target = self.pgid if group else self.pid
        if target is not None:
            self.runtime.send(target, sig, group)

    def _signal_rest(self, sig: int, group_done: bool) -> None:
        self.runtime.signal_rest(self, sig, group_done)
        if sig not in NO_CONT_AFTER:
            self.runtime.signal_rest(self, signal.SIGCONT, group_done)

    def _kill(self) -> None:
        self._cancel_timer()
        self._cancel_command()
        self._killed = True
        self._steps = []
        self._kill_deadline = self.runtime.monotonic() + KILL_GRACE
        self.runtime.kill_group(self)
        if self.pid is not None:
            self.runtime.send(self.pid, signal.SIGKILL, False)
        if self.pid is None:
            # Only the rest was left; wait until it is gone.
            self._wait_group(fresh=True)

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
            self._next_step()
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

    def _cancel_command(self) -> None:
        """A stop step's command is over once its step is (it must not run next to a new run)."""
        if self._command is not None:
            self._command.cancel()
            self._command = None

    # -- views -----------------------------------------------------------------

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
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING) and self.pid is not None and self.started_wall:
            return max(0.0, time.time() - self.started_wall)
        return None

    def description(self) -> str:
        if self.state is ProcessState.RUNNING and not self._ready:
            return f"pid {self.pid}, uptime {format_duration(self.uptime() or 0)}, not ready: {self.reason.split('not ready: ', 1)[-1]}"
        if self.state is ProcessState.RUNNING:
            return f"pid {self.pid}, uptime {format_duration(self.uptime() or 0)}"
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


#: How a waiting dependent describes each depends_on condition.
_CONDITION_WORDS = {"ready": "be ready", "started": "start", "completed": "complete"}


def _scaled(steps, budget: float) -> tuple[StopStep, ...]:
    """The steps with their waits shrunk alike to add up to at most ``budget``."""
    total = sum(step.wait for step in steps)
    if total <= budget:
        return tuple(steps)
    factor = max(0.0, budget) / total
    return tuple(StopStep(step.signal, step.command, step.wait * factor) for step in steps)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} day{'s' if days != 1 else ''}, {text}" if days else text
