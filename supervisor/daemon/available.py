"""What is configured, running or not: ``superctl avail`` and XML-RPC
``getAllConfigInfo``.

Every instance of the config superd runs ("in use"), then those the config
file on disk has that a reload would add ("avail"), as supervisord lists
what its configuration holds after a re-read. The file is read at each ask
(a few ms, on the loop, as a reload reads it); when it is invalid, the
instances in use are still listed, with the problem.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..config import ConfigError, GroupConfig, InstanceConfig, load


class Configured(NamedTuple):
    instances: list[tuple[InstanceConfig, bool]]  # (instance, in use), in use ones first
    problem: Optional[str]  # why the file on disk could not be read
    groups_on_disk: dict[str, GroupConfig] = {}  # the [group.NAME] tables of the file on disk, by name


def configured(sv: "Supervisor") -> Configured:
    in_use = [(process.config, True) for process in sv.processes.values()]
    if sv.single or sv.config.path is None:
        return Configured(in_use, None)
    try:
        on_disk = load(sv.config.path, sv.environ)
    except ConfigError as exc:
        return Configured(in_use, f"{sv.config.path} cannot be read: {exc}")
    added = [(instance, False) for instance in on_disk.instances if instance.name not in sv.processes]
    return Configured(in_use + added, None, {group.name: group for group in on_disk.groups})
