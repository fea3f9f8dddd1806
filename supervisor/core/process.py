"""One supervised process: its state machine.

Pure logic: spawning, signals, timers and the clock go through a
:class:`~supervisor.core.runtime.Runtime`, so every rule is tested without
starting a process. The rules are supervisord's, minus its known flaws:

* an exit before ``startsecs`` is a failed start: BACKOFF, retried after 1 s,
  2 s, 3 s ...; ``startretries = N`` allows N + 1 attempts, then FATAL;
* an exit from RUNNING is expected when its code is in ``exitcodes``;
  ``autorestart`` decides on a restart, throttled in a crash loop
  (:mod:`~supervisor.core.policy`);
* a run is over only when nothing of it is left (its cgroup, or its process
  group and marked descendants): a stop (:class:`~supervisor.core.stopping.Stop`)
  waits for all of it, and what a process leaves behind when it exits on its
  own is stopped the same way before the exit counts;
* with a readiness check (``ready``) a process stays STARTING until it is
  ready and startsecs passed; not ready within ``ready_timeout`` is a failed
  start;
* with ``depends_on`` it is spawned only once every dependency meets its
  condition (:mod:`~supervisor.core.dependencies`); until then it is STARTING
  without a pid.
"""

from __future__ import annotations

import signal
from typing import Any, Optional

from .errors import SpawnError
from .health import Health, Watchdog
from .policy import Autorestart, RestartHistory, RestartPolicy, backoff_delay
from .readiness import Readiness
from .reporting import Reporting, describe_status, signal_name  # noqa: F401 - re-exported
from .runtime import Runtime, Timer
from .states import STARTABLE_STATES, ProcessState
from .stopping import Stop, StopStep, scaled

#: How a waiting dependent describes each depends_on condition.
_CONDITION_WORDS = {"ready": "be ready", "started": "start", "completed": "complete"}


class Process(Readiness, Reporting):
    """The state machine of one program instance. ``config`` is its
    :class:`~supervisor.config.InstanceConfig`."""

    # Slots: superd keeps one of these per instance for as long as it runs.
    __slots__ = (
        "config", "runtime", "state", "pid", "pgid", "since", "started_at", "exitstatus",
        "spawn_exit_code", "runs", "restarts", "attempts", "history", "reason", "ended_for_good",
        "health", "watchdog", "restart_at", "pending_restart",
        "retired", "waiting_for", "status_text", "held", "stopping",
        "_ready", "_not_ready_why", "_startsecs_passed", "_ready_timer", "_ready_deadline", "_timer",
    )

    def __init__(self, config: Any, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.state = ProcessState.STOPPED
        self.pid: Optional[int] = None
        self.pgid: Optional[int] = None
        self.since = runtime.wall()                 # wall time of the last state change
        self.started_at: Optional[float] = None     # monotonic time of the last spawn
        self.exitstatus: Optional[int] = None
        self.spawn_exit_code: Optional[int] = None  # set when the last spawn failed
        self.runs = 0               # times it reached RUNNING
        self.restarts = 0           # spawns superd made on its own (restarts and retries)
        self.attempts = 0           # failed start attempts in a row (BACKOFF)
        self.history = RestartHistory()  # recent automatic restarts (the restart policy)
        self.restart_at: Optional[tuple[float, str]] = None  # a waiting automatic restart: (monotonic when, why)
        self.pending_restart: Optional[str] = None  # why the stop in progress ends in a restart
        program = config.program
        self.health = Health(config.alive.failures) if config.alive is not None else None  # alive check
        self.watchdog = Watchdog(self, program.watchdog) if program.watchdog else None
        self.reason = "not started"  # why the last transition happened
        self.ended_for_good = False  # exited and will not be restarted automatically
        self.retired = False         # replaced or removed by a reload: never starts again
        self.waiting_for: tuple[str, ...] = ()  # dependencies not met yet (STARTING, no pid)
        self.status_text: Optional[str] = None  # the run's last sd_notify STATUS=
        self.held = False            # stopped on request: dependents do not start it on their own
        self.stopping: Optional[Stop] = None  # the stop in progress (STOPPING)
        self._ready = False          # the run passed its readiness check
        self._not_ready_why = ""     # why a running process said it is not ready
        self._startsecs_passed = False
        self._ready_timer: Optional[Timer] = None
        self._ready_deadline: Optional[float] = None  # monotonic
        self._timer: Optional[Timer] = None  # startsecs, or the wait before a retry

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
        self.history.reset()
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
        self.pending_restart = None
        if self.stopping is not None:
            # Asked to stop while the remains of an exit (or a run that was
            # not ready in time) are being stopped: it ends stopped.
            self.stopping.after = None
            self.stopping.failing = None
            self.stopping.tighten(self.runtime.monotonic() + budget)
            return True
        if self.state is ProcessState.STARTING and self.pid is None:
            self._cancel_timer()
            why = "its dependencies" if self.waiting_for else "its hooks"
            self.waiting_for = ()
            if self.config.program.before_start or self.config.program.after_stop:
                self.runtime.cancel_before_start(self)
            self._set(ProcessState.STOPPED, f"stopped while waiting for {why}")
            return True
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._end_readiness()
            steps = self.config.stop_plan() if sig is None else (StopStep(sig, wait=total),)
            self._begin_stop(Stop(self, scaled(steps, budget) if budget > 0 else ()))
            return True
        if self.state is ProcessState.BACKOFF:
            self._cancel_timer()
            self._set(ProcessState.STOPPED, "stopped while waiting to retry")
        return True

    def kill(self) -> None:
        """SIGKILL now (second TERM during shutdown, QUIT)."""
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self.stop(0)
        elif self.stopping is not None and not self.stopping.killed:
            self.stopping.kill()
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
        state = self.state
        self._end_readiness()
        if self.stopping is not None:
            self.stopping.leader_exited(text)
            return
        self._cancel_timer()
        if self.runtime.group_alive(self):
            # The leader ended on its own and left processes behind (workers,
            # an escaped daemon): they are stopped like the program would be,
            # and only then does the exit count (and a restart happen).
            steps = [step for step in self.config.stop_plan() if step.signal is not None]
            self._begin_stop(Stop(self, steps or [StopStep(signal.SIGTERM, wait=self.config.stop_time())],
                                  f"{text}; what it left behind outlived its leader",
                                  after=(state, code, text, lived), exit_text=text))
            return
        self._ended(state, code, text, lived)

    def group_changed(self) -> None:
        """Something of a run may have ended: a waited-for run may just be over."""
        if self.stopping is not None:
            self.stopping.rest_changed()

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
        self._set(ProcessState.EXITED, text)
        self._restart(text, lived)

    def _restart(self, text: str, lived: float) -> None:
        """An automatic restart, now or after the restart policy's wait."""
        program = self.config.program
        policy = RestartPolicy(program.restart_delay, program.restart_burst, program.restart_interval,
                               program.restart_backoff_max)
        delay, crash_loop = self.history.next_delay(policy, self.runtime.monotonic(), lived)
        if delay <= 0:
            self.restarts += 1
            self._launch()
            return
        label = f"{text}; {'crash loop' if crash_loop else 'restart_delay'}"
        self._set(ProcessState.BACKOFF, f"{label}: restarting in {delay:g} s" + (
            f" ({len(self.history.times)} restarts within {policy.interval:g} s)" if crash_loop else ""))
        self.restart_at = (self.runtime.monotonic() + delay, label)
        self._timer = self.runtime.call_later(delay, self._retry)

    # -- internals -------------------------------------------------------------

    def _set(self, state: ProcessState, reason: str) -> None:
        old = self.state
        self.state = state
        self.reason = reason
        self.since = self.runtime.wall()
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
        if self.config.program.before_start or self.config.program.after_stop:
            waiting = self.runtime.before_start(self)  # its hooks first; hook_done() when they are over
            if waiting is not None:
                self.pid = None
                if self.state is ProcessState.STARTING:
                    self.reason = waiting
                    self.runtime.reason_changed(self)
                else:
                    self._set(ProcessState.STARTING, waiting)
                return
        self._spawn()

    def hook_done(self, failure: Optional[str]) -> None:
        """What runs before a spawn (before_start) is over: spawn, or, with
        ``failure``, a failed start."""
        if self.state is not ProcessState.STARTING or self.pid is not None or self.waiting_for:
            return
        if failure is None:
            self._spawn()
        else:
            self.started_at = self.runtime.monotonic()
            self._start_failed(failure)

    def _spawn(self) -> None:
        self._ready = self._startsecs_passed = False
        self._not_ready_why = ""
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
        if self.health is not None:
            self.health.reset()
        if self.watchdog is not None:
            self.watchdog.arm()
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
        self.restart_at = None
        if self.state is ProcessState.BACKOFF:
            self.restarts += 1
            self._launch()

    def _cancel_timer(self) -> None:
        self.restart_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the stop (see supervisor.core.stopping.Stop) ---------------------------

    def _begin_stop(self, stop: Stop) -> None:
        self._cancel_timer()
        self.stopping = stop
        stop.next_step()

    def stopping_reason(self, reason: str, *, only_if_new: bool = False) -> None:
        """The stop moved on: STOPPING with ``reason`` (a new reason within it
        unless ``only_if_new``)."""
        if self.state is not ProcessState.STOPPING:
            self._set(ProcessState.STOPPING, reason)
        elif not only_if_new:
            self.reason = reason
            self.runtime.reason_changed(self)

    def stop_over(self, text: str) -> None:
        """Nothing of the run is left (or superd gave up waiting)."""
        stop, self.stopping = self.stopping, None
        self._cancel_timer()
        if stop is not None:
            stop.cancel()
            if stop.after is not None:
                state, code, exit_text, lived = stop.after
                self._ended(state, code, exit_text, lived)
                return
        self.pgid = None
        why, self.pending_restart = self.pending_restart, None
        if stop is not None and why is not None and self.runtime.restarts_allowed():
            now = self.runtime.monotonic()
            self._set(ProcessState.EXITED, f"stopped ({text}) to restart it: {why}")
            self._restart(why, now - (self.started_at or now))
            return
        if stop is not None and stop.failing is not None and self.runtime.restarts_allowed():
            self._start_failed(stop.failing)
            return
        self._set(ProcessState.STOPPED, f"stopped ({text})")
