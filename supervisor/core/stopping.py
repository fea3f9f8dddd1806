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
from typing import Optional, Sequence

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
