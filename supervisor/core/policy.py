"""When a process that ended is started again: autorestart and the delays.

Failed starts (an exit before ``startsecs``) back off 1 s, 2 s, 3 s ... up to
``startretries``; exits from RUNNING restart at once unless the program keeps
exiting within ``QUICK_RUN`` of its start, which backs off to a cap instead of
spinning.
"""

from __future__ import annotations

from enum import Enum

#: A run shorter than this (seconds from spawn) counts as a quick exit. With
#: startsecs >= QUICK_RUN such an exit is already a failed start (BACKOFF), so
#: the throttle matters for programs with a shorter startsecs, 0 above all.
QUICK_RUN = 1.0
#: The longest pause between automatic restarts of a crash-looping process.
MAX_RESTART_DELAY = 10.0


class Autorestart(str, Enum):
    """When to restart a process that exited from ``running``."""

    ALWAYS = "true"
    NEVER = "false"
    UNEXPECTED = "unexpected"   # when its exit code is not in ``exitcodes``


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before start attempt ``attempt + 1`` after ``attempt`` failures."""
    return float(attempt)


def restart_delay(quick_exits: int) -> float:
    """Seconds to wait before an automatic restart after ``quick_exits`` quick exits in a row.

    The first restart is immediate; a crash loop backs off linearly to a cap.
    """
    return min(float(max(quick_exits - 1, 0)), MAX_RESTART_DELAY)
