"""The restart policy, watchdog, memory, cgroup, rlimit, priority and env_file keys of a program.

``RESOURCE_KEYS`` joins the program key table (:mod:`.keys`);
:func:`check_program` checks what one key says about another.
"""

from __future__ import annotations

import os
import resource
from typing import Any

from .checks import Check, integer, is_int, number, parse_size, string
from .problems import Invalid, Problem, dotted, expected

#: Every RLIMIT_ Linux has, by its lower-case name without the prefix.
RLIMITS = {name[7:].lower(): getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}
UNLIMITED = resource.RLIM_INFINITY
_LIMIT_WHAT = 'an integer >= 0, "unlimited", or [soft, hard]'


def _positive_size(value: Any) -> int:
    size = parse_size(value)
    if size <= 0:
        raise expected('a size above 0 like "400MB"', value)
    return size


def _one_limit(value: Any) -> int:
    if isinstance(value, str) and value.lower() in ("unlimited", "infinity"):
        return UNLIMITED
    if is_int(value) and value >= 0:
        return int(value)
    raise expected(_LIMIT_WHAT, value)


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def _rlimit(name: str, value: Any) -> tuple[str, int, int]:
    if isinstance(value, list):
        if len(value) != 2:
            raise expected(_LIMIT_WHAT, value)
        soft, hard = _one_limit(value[0]), _one_limit(value[1])
    else:
        soft = hard = _one_limit(value)
    def above(a: int, b: int) -> bool:  # noqa: E306 - RLIM_INFINITY is -1
        return b != UNLIMITED and (a == UNLIMITED or a > b)
    if above(soft, hard):
        raise Invalid("the soft limit is above the hard limit")
    if name == "nofile":
        cap = _nr_open()
        if hard == UNLIMITED or hard > cap:
            raise Invalid(f"nofile can be at most {cap} (fs.nr_open), not unlimited")
    current_hard = resource.getrlimit(RLIMITS[name])[1]
    if os.geteuid() != 0 and above(hard, current_hard):
        shown = "unlimited" if current_hard == UNLIMITED else current_hard
        raise Invalid(f"raising the hard limit above {shown} needs root")
    return name, soft, hard


def rlimits(value: Any) -> tuple[tuple[str, int, int], ...]:
    """``{ nofile = 65536, core = "unlimited", stack = [8388608, "unlimited"] }``."""
    if not isinstance(value, dict):
        raise expected("a table like { nofile = 65536, core = \"unlimited\" }", value)
    items, errors = [], []
    for name, raw in value.items():
        at = "." + dotted(name)
        if name not in RLIMITS:
            errors.append((at, "unknown resource limit; expected one of " + ", ".join(sorted(RLIMITS))))
            continue
        try:
            items.append(_rlimit(name, raw))
        except Invalid as e:
            errors += [(at + sub, message) for sub, message in e.errors]
    if errors:
        raise Invalid.of(errors)
    return tuple(items)


def env_files(value: Any) -> tuple[str, ...]:
    """``".env"`` or ``[".env", "-/etc/default/app"]`` ("-": optional)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise expected('a path or an array of paths ("-" in front: optional)', value)
    paths, errors = [], []
    for i, raw in enumerate(items):
        try:
            path = string(raw)
            if path == "-":
                raise Invalid('expected a path after "-"')
            paths.append(path)
        except Invalid as e:
            errors += [(f"[{i}]" if not isinstance(value, str) else "", m) for _, m in e.errors]
    if errors:
        raise Invalid.of(errors)
    return tuple(paths)


RESOURCE_KEYS: dict[str, Check] = {
    "restart_delay": number(0),
    "restart_burst": integer(0),
    "restart_interval": number(0, above=True),
    "restart_backoff_max": number(1),
    "watchdog": number(0, above=True),
    "memory_restart": _positive_size,
    "memory_max": _positive_size,
    "cpu_max": number(0, above=True),
    "pids_max": integer(1),
    "rlimits": rlimits,
    "nice": integer(-20, 19),
    "oom_score_adj": integer(-1000, 1000),
    "env_file": env_files,
}

#: The cgroup v2 controller each limit needs.
CGROUP_LIMITS = {"memory_max": "memory", "cpu_max": "cpu", "pids_max": "pids"}


def check_program(values: dict[str, Any], where: str, file: str | None, problems: list[Problem]) -> None:
    """What one key of a program needs of another."""
    ready = values.get("ready")
    if "watchdog" in values and (ready is None or ready.kind != "notify"):
        problems.append(Problem(file, f"{where}.watchdog",
                                'needs ready = "notify" (the program sends WATCHDOG=1 with sd_notify)'))
    if values.get("nice") is not None and values["nice"] < 0 and os.geteuid() != 0:
        problems.append(Problem(file, f"{where}.nice", "a negative nice value needs root"))
