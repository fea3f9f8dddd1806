"""The checks across programs: dependencies and names.

``depends_on`` must name programs that exist, wait for ``completed`` only on
a program that can complete, and make no cycle; no name may stand for two
things (a program and another program's instance, two instances, a group and
an instance it does not hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..core.policy import Autorestart
from .model import GroupConfig, InstanceConfig, ProgramConfig
from .problems import Problem, dotted, quote

def check_names(instances: Sequence[InstanceConfig], groups: Iterable[GroupConfig],
                problems: list[Problem]) -> None:
    """No name may stand for two things: a program and another program's instance,
    two instances, or a group and an instance it does not hold."""
    owner: dict[str, InstanceConfig] = {}
    for inst in instances:
        program = inst.program.name
        for name in dict.fromkeys((program, inst.name)):
            first = owner.setdefault(name, inst)
            if first.program.name != program or (first is not inst and first.name == inst.name == name):
                problems.append(Problem(inst.program.source, f"program.{dotted(program)}",
                                        f"the name {quote(name)} is used twice: by "
                                        f"{_role(first, name)} and by {_role(inst, name)}"))
    for group in groups:
        inst = owner.get(group.name)
        if inst is not None and inst.group != group.name:
            problems.append(Problem(group.source, f"group.{dotted(group.name)}",
                                    f"the name {quote(group.name)} is used twice: by this group and by "
                                    f"{_role(inst, group.name)}, which is not in it"))


def check_dependencies(programs: Mapping[str, ProgramConfig], problems: list[Problem]) -> None:
    """``depends_on`` names programs that exist, and no program waits for itself."""
    for program in programs.values():
        for name, condition, at in program.depends_on:
            where = f"program.{dotted(program.name)}.depends_on{at}"
            if name not in programs:
                known = ", ".join(sorted(programs)) or "none"
                problems.append(Problem(program.source, where, f"no program named {quote(name)} (programs: {known})"))
            elif condition == "completed" and programs[name].autorestart is Autorestart.ALWAYS:
                problems.append(Problem(program.source, where, f"{quote(name)} has autorestart = true: it never "
                                        'completes (give it autorestart = false or "unexpected")'))
    seen: set[str] = set()
    for start in sorted(programs):
        cycle = _find_cycle(start, programs, seen)
        if cycle:
            seen.update(cycle)  # one report a cycle
            first = programs[cycle[0]]
            problems.append(Problem(first.source, f"program.{dotted(first.name)}.depends_on",
                                    "dependency cycle: " + " -> ".join(cycle)))


def _find_cycle(start: str, programs: Mapping[str, ProgramConfig], done: set[str]) -> list[str]:
    """A dependency cycle reachable from ``start`` (``[a, b, a]``), or ``[]``.

    Depth first, without recursion; programs in ``done`` were searched already.
    """
    path: list[str] = []
    on_path: set[str] = set()
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        name, index = stack.pop()
        if index == 0:
            if name in on_path:
                return path[path.index(name):] + [name]
            if name in done or name not in programs:
                continue
            path.append(name)
            on_path.add(name)
        deps = [dependency.program for dependency in programs[name].depends_on]
        if index < len(deps):
            stack.append((name, index + 1))
            stack.append((deps[index], 0))
        else:
            path.pop()
            on_path.discard(name)
            done.add(name)
    return []


def _role(inst: InstanceConfig, name: str) -> str:
    if inst.name == name and name != inst.program.name:
        return f"instance {name} of program {quote(inst.program.name)}"
    return f"program {quote(inst.program.name)}"

