"""The shutdown plan: which processes stop together, and how long each phase may take.

Pure arithmetic, no processes. Programs stop by descending priority; all
processes of one priority stop in parallel. ``depends_on`` comes on top: a
process stops only after everything that depends on it has stopped, so a
dependency whose priority would stop it earlier moves to the phase after its
last dependent (dependencies that are not running pass the order on). One ``shutdown_timeout`` bounds the
whole shutdown: when the phases' wishes (their longest ``stopwaitsecs``) add up
to more than the time left, each phase gets a share of the time left in
proportion to its wish. Budgets are recomputed at the start of every phase, so
time a fast phase did not use goes to the phases after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

#: Part of shutdown_timeout kept for the leftovers' TERM/KILL and for exiting.
RESERVE_FRACTION = 0.1
RESERVE_MAX = 1.0
#: Time allowed after SIGKILL for the kernel to deliver and superd to reap.
KILL_MARGIN = 0.05


@dataclass(frozen=True)
class StopItem:
    name: str
    priority: int
    stopwaitsecs: float  # the longest its stop waits before SIGKILL (all its steps)


@dataclass(frozen=True)
class Phase:
    priority: int        # the priority the phase stands for (its highest, when moved dependencies join it)
    names: tuple[str, ...]
    want: float          # the longest stop in the phase


def plan(items: Iterable[StopItem], depends_on: Mapping[str, Sequence[str]] | None = None) -> list[Phase]:
    """Group the items into phases, highest priority number first.

    ``depends_on`` maps a name to the names it depends on; it may name
    processes that are not among the items (not running): the order passes
    through them.
    """
    items = {item.name: item for item in items}
    priorities = sorted({item.priority for item in items.values()}, reverse=True)
    rank = {priority: index for index, priority in enumerate(priorities)}
    phase = {name: rank[item.priority] for name, item in items.items()}
    if depends_on:
        after = _stop_after(items, depends_on)  # name -> the items that must stop after it
        # Longest path, dependents first (Kahn's order on "stops before").
        waiting = {name: 0 for name in items}
        for later in after.values():
            for name in later:
                waiting[name] += 1
        ready = sorted(name for name, count in waiting.items() if count == 0)
        while ready:
            name = ready.pop()
            for dependency in after[name]:
                phase[dependency] = max(phase[dependency], phase[name] + 1)
                waiting[dependency] -= 1
                if waiting[dependency] == 0:
                    ready.append(dependency)
    phases = []
    for index in sorted(set(phase.values())):
        members = sorted((items[name] for name in items if phase[name] == index), key=lambda m: m.name)
        priority = priorities[index] if index < len(priorities) and any(
            m.priority == priorities[index] for m in members) else max(m.priority for m in members)
        phases.append(Phase(priority, tuple(m.name for m in members), max(m.stopwaitsecs for m in members)))
    return phases


def _stop_after(items: Mapping[str, StopItem], depends_on: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For each item, the items it depends on, directly or through names that are not items."""
    result: dict[str, set[str]] = {}
    for name in items:
        found: set[str] = set()
        seen: set[str] = set()
        stack = list(depends_on.get(name, ()))
        while stack:
            other = stack.pop()
            if other in seen or other == name:
                continue
            seen.add(other)
            if other in items:
                found.add(other)
            else:
                stack.extend(depends_on.get(other, ()))
        result[name] = found
    return result


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
