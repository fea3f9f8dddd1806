"""``memory_max``, ``cpu_max`` and ``pids_max``: cgroup v2 limits on a program's own cgroup.

At start, :func:`prepare` makes sure the controllers the config needs are on
for the cgroups superd makes, or says which one is missing and why (the
config is then refused). Enabling a controller for the cgroups below
superd's own cgroup needs that cgroup to hold no process: superd then moves
itself (and whatever shares its cgroup) into a leaf cgroup beside its
programs' (what systemd's ``Delegate=yes`` expects of a service).
:func:`apply` writes the limits into a run's cgroup before it is spawned.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any, Optional

from ..config.resources import CGROUP_LIMITS

log = logging.getLogger("superd")

#: cpu.max's period, in microseconds (the kernel's default).
CPU_PERIOD = 100_000


def needed(config: Any) -> dict[str, list[str]]:
    """controller -> the "program.NAME.key" settings that need it."""
    wanted: dict[str, list[str]] = {}
    for program in config.programs:
        for key, controller in CGROUP_LIMITS.items():
            if getattr(program, key) is not None:
                wanted.setdefault(controller, []).append(f"program.{program.name}.{key}")
    return wanted


def _read_words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enable(cgroup: str, controller: str) -> None:
    _write(os.path.join(cgroup, "cgroup.subtree_control"), f"+{controller}")


def _leave(home: str, leaf: str) -> None:
    """Move every process of ``home`` into ``leaf`` (made if need be)."""
    os.makedirs(leaf, exist_ok=True)
    for pid in _read_words(os.path.join(home, "cgroup.procs")):
        try:
            _write(os.path.join(leaf, "cgroup.procs"), pid)
        except ProcessLookupError:
            pass


def prepare(tracker: Any, config: Any) -> Optional[str]:
    """Turn on what the config's limits need; None, or why it cannot be."""
    wanted = needed(config)
    if not wanted:
        return None
    keys = ", ".join(key for keys in wanted.values() for key in keys)
    if getattr(tracker, "mode", "") != "cgroup":
        return (f"{keys}: cgroup v2 limits need superd's cgroup tracking, which is off here "
                f"({tracker.description})")
    problems = []
    home, root = tracker.home, tracker.root
    offered = _read_words(os.path.join(home, "cgroup.controllers"))
    for controller, settings in sorted(wanted.items()):
        if controller in getattr(tracker, "controllers", ()):
            continue
        if controller not in offered:
            problems.append(f"{', '.join(settings)}: the {controller} controller is not available to superd: "
                            f"its cgroup {home} offers {' '.join(offered) or 'none'} (cgroup v1 holds it, or "
                            "it is not delegated: systemd's Delegate=yes)")
            continue
        try:
            try:
                _enable(home, controller)
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                # Processes in superd's own cgroup: step aside into a leaf first.
                leaf = f"{root}-daemon"
                _leave(home, leaf)
                tracker.home = leaf
                log.info("moved superd into the leaf cgroup %s, to enable %s below it", leaf, controller)
                _enable(home, controller)
            _enable(root, controller)
            tracker.controllers = (*tracker.controllers, controller)
        except OSError as exc:
            problems.append(f"{', '.join(settings)}: cannot enable the {controller} controller for superd's "
                            f"cgroups: {exc.strerror or exc}")
    return "\n".join(problems) or None


def apply(cgroup: str, program: Any) -> None:
    """Write the program's limits into its run's ``cgroup``. Raises OSError."""
    if program.memory_max is not None:
        _write(os.path.join(cgroup, "memory.max"), str(program.memory_max))
    if program.cpu_max is not None:
        _write(os.path.join(cgroup, "cpu.max"), f"{max(1000, round(program.cpu_max * CPU_PERIOD))} {CPU_PERIOD}")
    if program.pids_max is not None:
        _write(os.path.join(cgroup, "pids.max"), str(program.pids_max))
