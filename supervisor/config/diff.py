"""What a config reload changes: pure comparison of two configs, instance by instance.

An instance is *changed* when anything that shapes its process differs (its
command, environment, user, stop settings, output …). Untouched instances keep
running with the same pid; a reload with no change restarts nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.daemon_changed)

    def as_dict(self) -> dict:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}


def _shape(instance: InstanceConfig) -> InstanceConfig:
    """The instance without what does not touch its process (where it was declared)."""
    return dataclasses.replace(instance, program=dataclasses.replace(instance.program, source=None))


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
    return Difference(added, removed, tuple(changed), tuple(unchanged), daemon_changes(old.daemon, new.daemon))


def daemon_changes(old: DaemonSettings, new: DaemonSettings) -> tuple[str, ...]:
    return tuple(
        field.name
        for field in dataclasses.fields(DaemonSettings)
        if getattr(old, field.name) != getattr(new, field.name)
    )
