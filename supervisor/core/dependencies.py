"""depends_on: when a process may start, and the order its dependencies impose.

A dependent waits (STARTING without a pid) until every instance of each
dependency meets its condition; a start also starts dependencies that are
stopped, except one stopped on request (``held``), which only a start someone
asked for starts again; a dependency that failed for good fails the dependent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Optional, Sequence

from .states import ProcessState

if TYPE_CHECKING:
    from .process import Process

Members = Callable[[str], Sequence["Process"]]


class Resolution(NamedTuple):
    waiting: list[tuple[str, str]]   # (instance, condition) not met yet
    failed: Optional[str] = None     # the first dependency that failed for good, described


def resolve(process: "Process", members: Members, *, request: bool, may_start: bool,
            start: Callable[["Process"], None]) -> Resolution:
    """What ``process`` still waits for; ``start`` is called for each stopped
    dependency that this start brings up (``may_start``: superd is not
    shutting down)."""
    waiting = []
    for group, condition, _ in process.config.program.depends_on:
        for dependency in members(group):
            if dependency.satisfies(condition):
                continue
            if dependency.state is ProcessState.FATAL or (
                    dependency.state is ProcessState.EXITED and dependency.ended_for_good):
                return Resolution([], f"{dependency.name} is {dependency.state.value} ({dependency.reason})")
            if (dependency.state in (ProcessState.STOPPED, ProcessState.EXITED)
                    and (request or not dependency.held) and may_start and not dependency.retired):
                start(dependency)
                if dependency.satisfies(condition):
                    continue
            waiting.append((dependency.name, condition))
    return Resolution(waiting)


def instance_graph(processes: Iterable["Process"], members: Members) -> dict[str, list[str]]:
    """Instance -> the instances it depends on (for the shutdown order)."""
    return {
        p.name: [d.name for dependency in p.config.program.depends_on for d in members(dependency.program)]
        for p in processes if p.config.program.depends_on
    }
