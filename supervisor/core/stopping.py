"""How a process is stopped: the steps, their scaling, and the stop in progress.

A stop is a sequence of steps (a signal or a command, then a wait for the
program to be gone), SIGKILL after the last; ``stopsignal`` and
``stopwaitsecs`` are the one-step form. A shorter time (shutdown compression)
shrinks every step's wait in proportion. The config builds a program's plan;
:class:`Stop` is one stop being carried out.
"""

from __future__ import annotations

import shlex
import signal
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

#: A stop signal is followed by SIGCONT, so that a stopped (paused) program
#: can act on it; not after these: SIGCONT would discard a pending job-control
#: signal (POSIX), and a SIGTSTP step must reach the program's handler.
NO_CONT_AFTER = frozenset({signal.SIGKILL, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
#: How long a run may take to empty after SIGKILL before superd stops waiting.
KILL_GRACE = 5.0
#: Where the runtime cannot announce that a run emptied, that is polled, only
#: while a stop waits for it: from 5 ms doubling to 100 ms.
POLL_MIN = 0.005
POLL_MAX = 0.1


@dataclass(frozen=True, slots=True)
class StopStep:
    """One step of a stop: send ``signal`` (or run ``command``), then wait up to
    ``wait`` seconds for the program to be gone before the next step."""

    signal: Optional[signal.Signals] = None
    command: tuple[str, ...] = ()
    wait: float = 10.0

    def __str__(self) -> str:
        what = self.signal.name if self.signal is not None else shlex.join(self.command)
        return f"{what}, wait {self.wait:g}s"

    @property
    def what(self) -> str:
        """The signal's name or the command, for messages."""
        return self.signal.name if self.signal is not None else " ".join(self.command)


def total_wait(steps: Sequence[StopStep]) -> float:
    return sum(step.wait for step in steps)


def scaled(steps: Sequence[StopStep], budget: float) -> tuple[StopStep, ...]:
    """The steps with their waits shrunk alike to add up to at most ``budget``."""
    total = total_wait(steps)
    if total <= budget:
        return tuple(steps)
    factor = max(0.0, budget) / total
    return tuple(StopStep(step.signal, step.command, step.wait * factor) for step in steps)


class Stoppable(Protocol):
    """What a stop needs of the process it stops (see :class:`~supervisor.core.process.Process`)."""

    runtime: Any
    pid: Optional[int]
    pgid: Optional[int]
    state: Any
    reason: str

    def stopping_reason(self, reason: str, *, only_if_new: bool = False) -> None: ...
    def stop_over(self, text: str) -> None: ...


class Stop:
    """One stop being carried out: the steps left, the current step's deadline,
    what it sent, and the run's end.

    The leader's exit arrives through :meth:`leader_exited`; what is left of
    the run after it is waited for (announced by the runtime, or polled) until
    it is gone, the step's time runs out (next step) or, after SIGKILL,
    ``KILL_GRACE`` passes. Then the process hears :meth:`Stoppable.stop_over`.
    """

    __slots__ = ("owner", "steps", "why", "deadline", "kill_deadline", "killed", "signal", "command", "timer",
                 "poll", "exit_text", "after", "failing")

    def __init__(self, owner: Stoppable, steps: Sequence[StopStep], why: str = "", after: Any = None,
                 exit_text: str = "") -> None:
        self.owner = owner
        self.steps = list(steps)      # the steps after the current one
        self.why = why                # what the stop is about, when not a request
        self.deadline: Optional[float] = None       # monotonic; the current step ends
        self.kill_deadline: Optional[float] = None  # monotonic; give up waiting after SIGKILL
        self.killed = False
        self.signal: Optional[int] = None  # the last signal this stop sent
        self.command: Any = None           # the running command of a command step
        self.timer: Any = None
        self.poll = POLL_MIN
        self.exit_text = exit_text    # how the leader ended, while the rest is waited for
        self.after = after            # an exit on its own whose remains this stop ends
        self.failing: Optional[str] = None  # the stop's end is a failed start: why

    # -- the steps ---------------------------------------------------------------

    def next_step(self) -> None:
        """Carry out the next step, or SIGKILL when none is left."""
        self.cancel()
        owner, runtime = self.owner, self.owner.runtime
        if not self.steps:
            owner.stopping_reason("; ".join(filter(None, (self.why, "stopping: SIGKILL"))), only_if_new=True)
            self.kill()
            return
        step = self.steps.pop(0)
        self.deadline = runtime.monotonic() + step.wait
        count = len(self.steps)
        more = f", then {count} more step{'s' if count != 1 else ''}" if count else ""
        reason = f"stopping with {step.what}, up to {step.wait:.3g}s{more}"
        owner.stopping_reason(f"{self.why}; {reason}" if self.why else reason)
        stopasgroup = owner.config.program.stopasgroup  # type: ignore[attr-defined]
        if step.signal is not None:
            self.signal = step.signal
            if owner.pid is not None:
                self._send(step.signal, stopasgroup)
                if step.signal not in NO_CONT_AFTER:
                    self._send(signal.SIGCONT, stopasgroup)
            else:
                self.signal_rest(step.signal, False)
        else:
            self.signal = None
            self.command = runtime.run_command(owner, step.command, step.wait)
        if step.wait <= 0:
            self.next_step()
        elif owner.pid is None:
            self.wait_rest(fresh=True)
        else:
            self.timer = runtime.call_later(step.wait, self._step_over)

    def tighten(self, end: float) -> None:
        """The whole stop must be over by ``end``: every step left shrinks alike."""
        if self.killed or self.deadline is None:
            return
        now = self.owner.runtime.monotonic()
        current = max(0.0, self.deadline - now)
        later = total_wait(self.steps)
        budget = max(0.0, end - now)
        if budget >= current + later:
            return
        factor = budget / (current + later) if current + later > 0 else 0.0
        self.deadline = now + current * factor
        self.steps = list(scaled(self.steps, later * factor))
        if self.owner.pid is None:
            self.wait_rest()  # only the rest is left: it checks the deadline
        else:
            self._cancel_timer()
            self.timer = self.owner.runtime.call_later(current * factor, self._step_over)

    def _step_over(self) -> None:
        self.timer = None
        if not self.killed:
            self.next_step()

    def kill(self) -> None:
        """SIGKILL everything of the run now."""
        self.cancel()
        owner, runtime = self.owner, self.owner.runtime
        self.killed = True
        self.steps = []
        self.kill_deadline = runtime.monotonic() + KILL_GRACE
        runtime.kill_group(owner)
        if owner.pid is not None:
            runtime.send(owner.pid, signal.SIGKILL, False)
        else:
            self.wait_rest(fresh=True)  # only the rest was left

    def _send(self, sig: int, group: bool) -> None:
        target = self.owner.pgid if group else self.owner.pid
        if target is not None:
            self.owner.runtime.send(target, sig, group)

    def signal_rest(self, sig: int, group_done: bool) -> None:
        runtime = self.owner.runtime
        runtime.signal_rest(self.owner, sig, group_done)
        if sig not in NO_CONT_AFTER:
            runtime.signal_rest(self.owner, signal.SIGCONT, group_done)

    # -- the end of the run ------------------------------------------------------

    def leader_exited(self, text: str) -> None:
        """The process itself was reaped; the run is over once the rest is gone."""
        owner = self.owner
        self.exit_text = text
        if not owner.runtime.group_alive(owner):
            owner.stop_over(text)
            return
        owner.reason = f"{text}; waiting for the rest of its processes to end"
        if not self.killed and self.signal is not None:
            # The rest of the run gets the stop signal now (the group had it
            # already with stopasgroup). After SIGKILL, or during a command
            # step (which sent no signal), the rest has the step's time.
            self.signal_rest(self.signal, owner.config.program.stopasgroup)  # type: ignore[attr-defined]
        self.wait_rest(fresh=True)

    def wait_rest(self, fresh: bool = False) -> None:
        """Look again whether the rest is gone at the next deadline (when the
        runtime announces the end) or after a poll interval."""
        self._cancel_timer()
        runtime = self.owner.runtime
        if fresh:
            self.poll = POLL_MIN
        deadline = self.kill_deadline if self.killed else self.deadline
        left = None if deadline is None else max(0.0, deadline - runtime.monotonic())
        if runtime.group_watched(self.owner) and left is not None:
            delay = left
        else:
            delay = self.poll if left is None else min(self.poll, left)
            self.poll = min(self.poll * 2, POLL_MAX)
        self.timer = runtime.call_later(delay, self._check_rest)

    def _check_rest(self) -> None:
        self.timer = None
        owner = self.owner
        if owner.pid is not None:
            return
        if not owner.runtime.group_alive(owner):
            owner.stop_over(self.exit_text)
            return
        now = owner.runtime.monotonic()
        if not self.killed and self.deadline is not None and now >= self.deadline:
            self.next_step()
        elif self.killed and self.kill_deadline is not None and now >= self.kill_deadline:
            owner.stop_over(f"{self.exit_text}; its group did not empty after SIGKILL")
        else:
            self.wait_rest()

    def rest_changed(self) -> None:
        """Something of a run may have ended: if only the rest was waited for, look now."""
        owner = self.owner
        if owner.pid is None and self.timer is not None and not owner.runtime.group_alive(owner):
            owner.stop_over(self.exit_text)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def cancel(self) -> None:
        """The stop's timer and command end (a command must not outlive its step)."""
        self._cancel_timer()
        if self.command is not None:
            self.command.cancel()
            self.command = None
