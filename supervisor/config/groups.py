"""``[group.NAME]``: supervisord's group of several programs.

A group lists programs; their processes then belong to it instead of to a
group named after their own program, so ``web:*`` and supervisord's
``web:gunicorn`` name them. A program is in one group at most; a group
lists at least one program, only programs that exist and are not event
listeners (supervisord's groups cannot hold listeners either), and does not
take the name of a program it does not list. ``priority`` is the priority
of its programs that do not set their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .checks import Check, array, integer, string
from .model import GroupConfig, ProgramConfig
from .problems import Invalid, Problem, dotted, quote, show
from .suggest import did_you_mean
from .tables import MAX_NAME, NAME_RE, RESERVED_NAMES

_PROGRAMS_WHAT = 'an array of program names, like ["gunicorn", "nginx"]'


def _program_names(value: Any) -> tuple[str, ...]:
    names = array(string, _PROGRAMS_WHAT)(value)
    if not names:
        raise Invalid("an empty group: list at least one program, like programs = [\"gunicorn\"]")
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise Invalid(f"{quote(name)} is listed twice", f"[{i}]")
    return names


GROUP_KEYS: dict[str, Check] = {
    "programs": _program_names,
    "priority": integer(),
}


def read_group(name: str, table: Any, file: str | None, problems: list[Problem]) -> GroupConfig | None:
    """``[group.NAME]`` on its own, or None when it has problems."""
    where = f"group.{dotted(name)}"
    if not isinstance(table, dict):
        problems.append(Problem(file, where, f"expected a table, got {show(table)}"))
        return None
    count = len(problems)
    if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        problems.append(Problem(file, where, "invalid group name: expected at most "
                                f'{MAX_NAME} letters, digits, "_", "." or "-", starting with a letter or digit'))
    elif name in RESERVED_NAMES:
        problems.append(Problem(file, where, f"{quote(name)} is reserved (it means every program)"))
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in GROUP_KEYS:
            problems.append(Problem(file, f"{where}.{dotted(key)}", "unknown key" + did_you_mean(key, GROUP_KEYS)
                                    + "; expected one of " + ", ".join(GROUP_KEYS)))
            continue
        try:
            values[key] = GROUP_KEYS[key](raw)
        except Invalid as e:
            problems += [Problem(file, f"{where}.{key}{at}", message) for at, message in e.errors]
    if "programs" not in table:
        problems.append(Problem(file, f"{where}.programs", f"missing; expected {_PROGRAMS_WHAT}"))
    if len(problems) > count:
        return None
    return GroupConfig(name=name, source=file, **values)


def read_groups(sources: Iterable[tuple[str | None, str, Mapping[str, Any]]],
                programs: Mapping[str, ProgramConfig], defined: Iterable[str],
                problems: list[Problem]) -> dict[str, GroupConfig]:
    """Every ``[group.NAME]`` of the files, checked against the programs.

    ``defined`` names every program written, those with problems too (a
    group naming one of them is not told that it does not exist)."""
    defined = set(defined)
    groups: dict[str, GroupConfig] = {}
    defined_in: dict[str, str | None] = {}
    member_of: dict[str, str] = {}
    for file, _, data in sources:
        tables = data.get("group")
        if not isinstance(tables, dict):
            continue
        for name, table in tables.items():
            if name in defined_in:
                problems.append(Problem(file, f"group.{dotted(name)}", "defined twice: in "
                                        f"{defined_in[name] or 'the main config'} and in {file}"))
                continue
            defined_in[name] = file
            group = read_group(name, table, file, problems)
            if group is not None and _check_members(group, programs, defined, member_of, problems):
                groups[name] = group
    return groups


def _check_members(group: GroupConfig, programs: Mapping[str, ProgramConfig], defined: set[str],
                   member_of: dict[str, str], problems: list[Problem]) -> bool:
    where = f"group.{dotted(group.name)}"
    count = len(problems)
    for i, name in enumerate(group.programs):
        at = f"{where}.programs[{i}]"
        if name not in defined:
            problems.append(Problem(group.source, at, f"no program named {quote(name)}"
                                    + did_you_mean(name, defined)
                                    + f" (programs: {', '.join(sorted(defined)) or 'none'})"))
        elif name in member_of:
            problems.append(Problem(group.source, at, f"{quote(name)} is in group {quote(member_of[name])} "
                                    "already: a program belongs to one group"))
        elif name in programs and programs[name].events is not None:
            problems.append(Problem(group.source, at, f"{quote(name)} is an event listener (it has events): "
                                    "a group holds programs only, as supervisord's does"))
        else:
            member_of[name] = group.name
    if group.name in defined and group.name not in group.programs:
        problems.append(Problem(group.source, where, f"the name {quote(group.name)} is a program's, and this "
                                "group does not list it: name the group otherwise, or list the program in it"))
    return len(problems) == count


def membership(groups: Iterable[GroupConfig]) -> dict[str, str]:
    """Program name -> the group that lists it."""
    return {program: group.name for group in groups for program in group.programs}


def with_group_priority(programs: dict[str, ProgramConfig], groups: Iterable[GroupConfig],
                        written: Mapping[str, Mapping[str, Any]]) -> None:
    """A group's ``priority`` given to its programs that do not set their own."""
    for group in groups:
        if group.priority is None:
            continue
        for name in group.programs:
            if name in programs and "priority" not in written.get(name, {}):
                programs[name] = dataclasses.replace(programs[name], priority=group.priority)
