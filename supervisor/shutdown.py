"""The shutdown plan: which processes stop together, and how long each phase may take.

Pure arithmetic, no processes. Programs stop by descending priority; all
processes of one priority stop in parallel. One ``shutdown_timeout`` bounds the
whole shutdown: when the phases' wishes (their longest ``stopwaitsecs``) add up
to more than the time left, each phase gets a share of the time left in
proportion to its wish. Budgets are recomputed at the start of every phase, so
time a fast phase did not use goes to the phases after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Iterable, Sequence

#: Part of shutdown_timeout kept for the leftovers' TERM/KILL and for exiting.
RESERVE_FRACTION = 0.1
RESERVE_MAX = 1.0
#: Time allowed after SIGKILL for the kernel to deliver and superd to reap.
KILL_MARGIN = 0.05


@dataclass(frozen=True)
class StopItem:
    name: str
    priority: int
    stopwaitsecs: float


@dataclass(frozen=True)
class Phase:
    priority: int
    names: tuple[str, ...]
    want: float  # the longest stopwaitsecs in the phase


def plan(items: Iterable[StopItem]) -> list[Phase]:
    """Group the items into phases, highest priority number first."""
    ordered = sorted(items, key=lambda item: (-item.priority, item.name))
    phases = []
    for priority, members in groupby(ordered, key=lambda item: item.priority):
        members = list(members)
        phases.append(
            Phase(priority, tuple(m.name for m in members), max(m.stopwaitsecs for m in members))
        )
    return phases


def reserve(timeout: float) -> float:
    """Seconds of the shutdown_timeout kept back for leftovers and exit."""
    return min(RESERVE_MAX, timeout * RESERVE_FRACTION)


def phase_budget(want: float, later: Sequence[float], remaining: float) -> float:
    """How long the current phase may wait before SIGKILL.

    ``want`` is this phase's longest stopwaitsecs, ``later`` the wants of the
    phases after it, ``remaining`` the time left for all of them (the reserve
    already taken off). Each phase also keeps a small margin for its kill.
    """
    if remaining <= 0:
        return 0.0
    margins = KILL_MARGIN * (1 + len(later))
    total = want + sum(later)
    usable = max(0.0, remaining - margins)
    if total <= usable:
        return want
    if total <= 0:
        return 0.0
    return usable * want / total
