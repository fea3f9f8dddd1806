"""Which processes a name means: an instance, a program, ``group:*`` or ``all``."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence, TypeVar

from .errors import NoSuchName

P = TypeVar("P")


def select(processes: Mapping[str, P], groups: Mapping[str, Sequence[P]], names: Iterable[str]) -> list[P]:
    """The processes named, each once, in the order the names list them.

    Raises :class:`NoSuchName` for a name that matches nothing."""
    chosen: dict[int, P] = {}
    for name in names:
        if name == "all":
            matched: Sequence[P] = list(processes.values())
        elif name in processes:
            matched = [processes[name]]
        else:
            matched = groups.get(name[:-2] if name.endswith(":*") else name, ())
        if not matched:
            raise NoSuchName(name)
        for process in matched:
            chosen.setdefault(id(process), process)
    return list(chosen.values())


def by_group(processes: Iterable[P]) -> dict[str, list[P]]:
    """Program (group) name -> its instances, in order."""
    groups: dict[str, list[P]] = {}
    for process in processes:
        groups.setdefault(process.group, []).append(process)  # type: ignore[attr-defined]
    return groups
