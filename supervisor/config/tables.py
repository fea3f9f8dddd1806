"""Reading one table: ``[superd]`` into DaemonSettings, ``[program.NAME]`` into ProgramConfig.

Each key is checked against its table's key map (:mod:`.keys`); every
problem is kept, keyed by its dotted path. Keys that are accepted but change
nothing give a warning instead.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from collections.abc import Mapping
from typing import Any

from .checks import Check
from .files import SOCKET_PATH_MAX, absolute, default_paths
from .keys import DAEMON_KEYS, PROGRAM_KEYS
from .model import DaemonSettings, ProgramConfig
from .problems import Invalid, Problem, dotted, quote, show
from .naming import check_naming
from .resources import check_program
from .eventkeys import check_listener

RESERVED_NAMES = frozenset({"all"})
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: The longest program name: with "_9999" (numprocs) and "-stdout.log" its log
#: file's name still fits a file system's 255 bytes.
MAX_NAME = 200


def share(value: Any, memo: dict[Any, Any] | None) -> Any:
    """A copy of ``value`` made for the config, one for all the equal values
    ``memo`` has seen: programs that say the same thing (a command, "null",
    0.5) hold one copy of it between them.

    A copy, not the value itself: the parsed TOML is let go of once the
    config is built, and a string of it kept alive would keep the memory
    around it from going back for reuse (superd would carry the holes of the
    whole TOML document for as long as it runs).

    Equal means of the same types all the way down (1, 1.0 and True are
    three values; -0.0 is not 0.0): strings, numbers, tuples (named too),
    frozensets of ints and dataclasses (ReadyCheck, StopStep) of such. Anything
    else is returned as it is.
    """
    if memo is None:
        return value
    key = _identity(value)
    if key is None:
        return value
    copy = memo.get(key)
    if copy is None:
        copy = memo[key] = _copy(value, memo)
    return copy


def _identity(value: Any) -> Any:
    """A key equal only for values of the same types and value; None: not shared."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return (kind, value.hex())
    if kind is int or kind is bool or value is None or isinstance(value, enum.Enum):
        return (kind, value)
    if kind is frozenset:
        return (kind, value) if all(type(item) is int for item in value) else None
    if isinstance(value, tuple):  # a tuple, or a named tuple (Dependency)
        items = tuple(_identity(item) for item in value)
        return None if any(item is None for item in items) else (kind, items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = tuple(_identity(getattr(value, f.name)) for f in dataclasses.fields(value))
        return None if any(item is None for item in items) else (kind, items)
    return None


def _copy(value: Any, memo: dict[Any, Any]) -> Any:
    """A new object equal to ``value`` (its parts shared), where Python makes one."""
    kind = type(value)
    if kind is str:
        return (value + "\0")[:-1]  # a new string (a slice of the whole would be the same one)
    if kind is float:
        return value * 1.0
    if kind is int:
        return value + 0  # small ints are one object anyway
    if kind is frozenset:
        return frozenset(list(value))
    if kind is tuple:
        return tuple(share(item, memo) for item in value)
    if isinstance(value, tuple):
        return kind._make(share(item, memo) for item in value)  # type: ignore[attr-defined]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: share(getattr(value, f.name), memo)
                                             for f in dataclasses.fields(value) if f.init})
    return value  # bool, None, an enum member: one object each


#: Program keys accepted (for configurations written for supervisord) that change nothing.
NO_EFFECT = {"killasgroup": "a stop always ends every process of the program (its group and descendants)"}


def _read_table(table: dict[str, Any], keys: Mapping[str, Check], prefix: str,
                file: str | None, problems: list[Problem]) -> dict[str, Any]:
    """Check each key of ``table`` against ``keys``; return the good values."""
    values = {}
    for key, raw in table.items():
        check = keys.get(key)
        if check is None:
            from .suggest import did_you_mean
            problems.append(Problem(file, f"{prefix}.{dotted(key)}", "unknown key" + did_you_mean(key, keys)
                                    + "; expected one of " + ", ".join(keys)))
            continue
        try:
            values[key] = check(raw)
        except Invalid as e:
            where = f"{prefix}.{dotted(key)}"
            problems += [Problem(file, where + at, message) for at, message in e.errors]
    return values


def check_top_level(data: dict[str, Any], allowed: tuple[str, ...], file: str | None,
                    problems: list[Problem]) -> None:
    """A file holds only the ``allowed`` tables."""
    for key, value in data.items():
        if key == "superd" and key not in allowed:
            problems.append(Problem(file, key, "[superd] is only allowed in the main config file"))
        elif key not in allowed:
            names = [f"[{name}.NAME]" if name in ("program", "group", "socket") else f"[{name}]" for name in allowed]
            tables = " and ".join(filter(None, (", ".join(names[:-1]), names[-1])))
            from .suggest import did_you_mean
            problems.append(Problem(file, dotted(key), f"unknown key{did_you_mean(key, allowed)}; "
                                    f"expected only {tables} tables"))
        elif not isinstance(value, dict):
            problems.append(Problem(file, key, f"expected a table, got {show(value)}"))


def read_daemon(table: dict[str, Any], base: str, file: str | None,
                environ: Mapping[str, str], problems: list[Problem]) -> DaemonSettings:
    """``[superd]``, with the default paths for what it does not say; paths made absolute."""
    defaults = default_paths(environ=environ)
    values = defaults | _read_table(table, DAEMON_KEYS, "superd", file, problems)
    for key in ("socket", "run_dir", "logs_dir", "log_file"):
        if values.get(key):
            values[key] = absolute(values[key], base)
    if "run_dir" not in table:  # one per instance: only the same socket (or file) collides
        from .rundir import instance_run_dir
        values["run_dir"] = instance_run_dir(defaults["run_dir"], defaults["socket"], values["socket"], file)
    if len(os.fsencode(values["socket"])) > SOCKET_PATH_MAX:
        problems.append(Problem(file, "superd.socket", f"the path {quote(values['socket'])} is longer than "
                                f"the {SOCKET_PATH_MAX} bytes a Unix socket address can hold"))
    values["include"] = tuple(absolute(pattern, base) for pattern in values.get("include", ()))
    return DaemonSettings(**values)


def read_program(name: str, table: dict[str, Any], file: str | None,
                 problems: list[Problem], warnings: list[Problem],
                 shared: dict[Any, Any] | None = None) -> ProgramConfig | None:
    """``[program.NAME]``, or None when it has problems; keys with no effect go to ``warnings``.

    ``shared``: a memo of the values of the programs read so far (see :func:`share`).
    """
    where = f"program.{dotted(name)}"
    if not isinstance(table, dict):
        problems.append(Problem(file, where, f"expected a table, got {show(table)}"))
        return None
    count = len(problems)
    if not NAME_RE.fullmatch(name):
        problems.append(Problem(file, where, "invalid program name: expected letters, digits, "
                                '"_", "." or "-", starting with a letter or digit'))
    elif name in RESERVED_NAMES:
        problems.append(Problem(file, where, f"{quote(name)} is reserved (it means every program)"))
    elif len(name) > MAX_NAME:
        problems.append(Problem(file, where, f"a program name of {len(name)} characters is too long: at most "
                                f"{MAX_NAME} (its log files are named after it, and a file name has 255 bytes)"))
    values = _read_table(table, PROGRAM_KEYS, where, file, problems)
    warnings += [Problem(file, f"{where}.{key}", f"has no effect: {why}")
                 for key, why in NO_EFFECT.items() if key in table]
    if "command" not in table:
        problems.append(Problem(file, where + ".command", "missing; every program needs a command"))
    if "stop_sequence" in values:
        for key in ("stopsignal", "stopwaitsecs", "stop_command"):
            if key in values:
                hint = ('add it as a first step { exec = ..., wait = ... }' if key == "stop_command"
                        else "the sequence says which signals and how long")
                problems.append(Problem(file, f"{where}.{key}", f"not with stop_sequence: {hint}"))
    check_program(values, where, file, problems)
    check_naming(values, where, file, problems)
    check_listener(values, where, file, problems)
    values.setdefault("killasgroup", values.get("stopasgroup", False))
    if len(problems) > count and "command" not in values:
        return None
    # With problems, the good keys still make a program, so that the checks
    # across programs (depends_on, ready) report in the same pass.
    if shared is not None:
        values = {key: share(value, shared) for key, value in values.items()}
    return ProgramConfig(name=share(name, shared), source=file, **values)
