"""What a config reload changes: pure comparison of two configs, instance by instance.

An instance is *changed* when anything that shapes its process differs (its
command, environment, user, stop settings, output …). Untouched instances keep
running with the same pid, those *regrouped* (moved to another
``[group.NAME]``) too; a reload with no change restarts nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.errors import NoSuchName
from ..core.names import grouped, matches
from .model import Config, DaemonSettings, InstanceConfig
from .sockets import changed_sockets

#: Daemon settings that only take effect when superd starts again.
RESTART_ONLY = ("socket", "socket_mode", "socket_group", "run_dir", "cgroups")


@dataclass(frozen=True)
class Difference:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    daemon_changed: tuple[str, ...]   # [superd] keys whose value changed
    regrouped: tuple[str, ...] = ()   # unchanged, but now in another [group.NAME]: they keep running

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.daemon_changed or self.regrouped)

    def as_dict(self) -> dict:
        """What superd answers a reload: ``regrouped`` only when some are."""
        result = {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}
        if self.regrouped:
            result["regrouped"] = list(self.regrouped)
        return result


def _shape(instance: InstanceConfig) -> InstanceConfig:
    """The instance without what does not touch its process (where it was declared,
    its group: a running process changes group without a restart)."""
    return dataclasses.replace(instance, group="", program=dataclasses.replace(instance.program, source=None))


def compare(old: Config, new: Config) -> Difference:
    before = {i.name: i for i in old.instances}
    after = {i.name: i for i in new.instances}
    added = tuple(name for name in after if name not in before)
    removed = tuple(name for name in before if name not in after)
    changed, unchanged = [], []
    rebound = changed_sockets(old.sockets, new.sockets)  # their programs restart on the new socket
    for name, instance in after.items():
        if name in before:
            (changed if _shape(before[name]) != _shape(instance) or rebound.intersection(instance.program.sockets)
             else unchanged).append(name)
    regrouped = tuple(name for name in unchanged if before[name].group != after[name].group)
    return Difference(added, removed, tuple(changed), tuple(unchanged), daemon_changes(old.daemon, new.daemon),
                      regrouped)


def daemon_changes(old: DaemonSettings, new: DaemonSettings) -> tuple[str, ...]:
    return tuple(
        field.name
        for field in dataclasses.fields(DaemonSettings)
        if getattr(old, field.name) != getattr(new, field.name)
    )


def group_changes(old: Config, new: Config, difference: Difference) -> dict[str, list[str]]:
    """The difference by group (supervisord's unit, ``superctl update``):
    ``{"added", "changed", "removed"}``, each a sorted list of group names.
    A group is changed when it stays and any of its instances is added,
    removed or changed."""
    before = {i.name: i.group for i in old.instances}
    after = {i.name: i.group for i in new.instances}
    old_groups, new_groups = set(before.values()), set(after.values())
    touched = ({before[name] for name in difference.removed + difference.changed}
               | {after[name] for name in difference.added + difference.changed})
    return {"added": sorted(new_groups - old_groups), "changed": sorted(touched & old_groups & new_groups),
            "removed": sorted(old_groups - new_groups)}


def groups_named(old: Config, new: Config, names: list[str]) -> set[str]:
    """The groups ``names`` mean (``superctl update NAME...``), each name read
    as every other command reads it (:mod:`supervisor.core.names`: ``all``,
    a group, ``GROUP:*``, ``GROUP:``, ``group:GROUP``, ``GROUP:NAME``, an
    instance or a program) against the old config and the new one: a name
    may mean what only one of them has (a program added or removed). Each
    instance named stands for its whole group. Raises NoSuchName for a name
    neither config knows."""
    chosen: set[str] = set()
    indexes = (_name_index(old), _name_index(new))
    for name in names:
        matched = [i for index in indexes for i in matches(*index, name)]
        if not matched:
            raise NoSuchName(name)
        chosen.update(i.group for i in matched)
    return chosen


def _name_index(config: Config) -> tuple[dict[str, InstanceConfig], dict[str, list[InstanceConfig]],
                                          dict[str, list[InstanceConfig]]]:
    """A config's instances by name, by group and by program: what
    :func:`supervisor.core.names.matches` reads."""
    instances = config.instances
    return ({i.name: i for i in instances}, grouped(instances, lambda i: i.group),
            grouped(instances, lambda i: i.program.name))
