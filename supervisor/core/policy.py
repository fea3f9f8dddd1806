"""When a process that ended is started again: autorestart and the delays.

Failed starts (an exit before ``startsecs``) back off 1 s, 2 s, 3 s ... up to
``startretries`` (supervisord's meaning). Automatic restarts of a process
that ended from RUNNING follow the program's restart policy
(:class:`RestartPolicy`): ``restart_burst`` restarts within
``restart_interval`` happen after ``restart_delay`` only; beyond that the
process is in a crash loop and each further restart waits twice the last,
from 1 s up to ``restart_backoff_max``. A run that lasted ``restart_interval``
or longer ends the crash loop and resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: The first wait of a crash loop; each further one doubles it.
FIRST_BACKOFF = 1.0


class Autorestart(str, Enum):
    """When to restart a process that exited from ``running``."""

    ALWAYS = "true"
    NEVER = "false"
    UNEXPECTED = "unexpected"   # when its exit code is not in ``exitcodes``


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before start attempt ``attempt + 1`` after ``attempt`` failures."""
    return float(attempt)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """A program's restart settings (seconds)."""

    delay: float = 0.0          # restart_delay: before every automatic restart
    burst: int = 5              # restart_burst: restarts within ``interval`` before backing off
    interval: float = 10.0      # restart_interval
    backoff_max: float = 30.0   # restart_backoff_max: the longest wait of a crash loop


class RestartHistory:
    """One process's recent automatic restarts: what the next one waits.

    ``next_delay`` is asked once per automatic restart, with the length of
    the run that just ended; the answer is (seconds to wait, in a crash loop).
    """

    __slots__ = ("times", "backoff")

    def __init__(self) -> None:
        self.times: list[float] = []   # monotonic times of the restarts within the interval
        self.backoff = 0.0                   # the last crash-loop wait; 0: not in a crash loop

    def reset(self) -> None:
        self.times.clear()
        self.backoff = 0.0

    @property
    def crash_loop(self) -> bool:
        return self.backoff > 0

    def next_delay(self, policy: RestartPolicy, now: float, lived: float) -> tuple[float, bool]:
        if lived >= policy.interval:
            self.reset()
        self.times = [t for t in self.times if t > now - policy.interval]
        self.times.append(now)
        if self.backoff <= 0 and len(self.times) <= policy.burst:
            return policy.delay, False
        self.backoff = FIRST_BACKOFF if self.backoff <= 0 else self.backoff * 2
        self.backoff = min(self.backoff, max(policy.backoff_max, 0.0)) or FIRST_BACKOFF
        return max(policy.delay, self.backoff), True
