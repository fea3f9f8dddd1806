"""Which processes a name means: an instance, a program, a group or ``all``.

A name is, in this order: ``all``; supervisord's ``GROUP:*`` or ``GROUP:``
(the whole group), ``GROUP:NAME`` (a process or a program of the group) or
``group:GROUP``; a process's own name; a program's name (its instances); a
group's name (its processes).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from .errors import NoSuchName

P = TypeVar("P")

#: ``group:web`` names the group "web" (when no group "group" holds a "web").
GROUP_PREFIX = "group"


def matches(processes: Mapping[str, P], groups: Mapping[str, Sequence[P]],
            programs: Mapping[str, Sequence[P]], name: str) -> list[P]:
    """The processes one name means (none for an unknown name): ``processes``
    by name, ``groups`` and ``programs`` by their names, members in order."""
    if name == "all":
        return list(processes.values())
    group, sep, member = name.partition(":")
    if sep:
        members = groups.get(group, ())
        if member in ("", "*"):
            return list(members)
        inside = [p for p in members if p is processes.get(member)] or \
            [p for p in programs.get(member, ()) if any(p is q for q in members)]
        if inside or group != GROUP_PREFIX:
            return inside
        return list(groups.get(member, ()))
    if name in processes:
        return [processes[name]]
    return list(programs.get(name) or groups.get(name, ()))


def select(processes: Mapping[str, P], groups: Mapping[str, Sequence[P]],
           programs: Mapping[str, Sequence[P]], names: Iterable[str]) -> list[P]:
    """The processes named, each once, in the order the names list them.

    Raises :class:`NoSuchName` for a name that matches nothing."""
    chosen: dict[int, P] = {}
    for name in names:
        matched = matches(processes, groups, programs, name)
        if not matched:
            raise NoSuchName(name)
        for process in matched:
            chosen.setdefault(id(process), process)
    return list(chosen.values())


def grouped(processes: Iterable[P], key: Callable[[P], str]) -> dict[str, list[P]]:
    """``key(process)`` -> the processes with it, in order."""
    result: dict[str, list[P]] = {}
    for process in processes:
        result.setdefault(key(process), []).append(process)
    return result
