"""superd's configuration: read the TOML files, check them, build the instances.

``load()`` reads the main file and its includes and returns a :class:`Config`;
``single_program()`` builds the embedded config of ``superd -- cmd ...``.
Anything wrong raises :class:`ConfigError`, which lists *every* problem found,
each with its file, the key's dotted path, what was expected and what was given.

How a table is read is declared once, in ``DAEMON_KEYS`` and ``PROGRAM_KEYS``:
key -> check. A check takes the raw TOML value and returns the parsed one, or
raises ``Invalid``. Defaults live on the dataclasses.

This module is imported by superctl: keep it stdlib-only and cheap to import.
"""

from __future__ import annotations

import glob
from collections import ChainMap
import grp
import math
import os
import pwd
import re
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import Any, NamedTuple

from ..core.policy import Autorestart
from ..core.stopping import StopStep

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "Autorestart",
    "Dependency",
    "ReadyCheck",
    "StopStep",
    "Config",
    "ConfigError",
    "DaemonSettings",
    "InstanceConfig",
    "Invalid",
    "Problem",
    "ProgramConfig",
    "default_paths",
    "expand",
    "find_config_file",
    "load",
    "parse",
    "parse_signal",
    "parse_size",
    "parse_tcp_target",
    "read_socket_path",
    "single_program",
]

# Where superd looks for its config without -c or $SUPERD_CONFIG, in order.
CONFIG_SEARCH_PATH = ("superd.toml", "/etc/superd/superd.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
RESERVED_NAMES = frozenset({"all"})
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


# --------------------------------------------------------------------------
# Problems

class Problem(NamedTuple):
    """One thing wrong with the config."""

    file: str | None
    key: str        # dotted path, e.g. "program.web.command[2]"; "" for the whole file
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in self if part)


class ConfigError(Exception):
    """The config is invalid; ``problems`` lists everything found (one per line in str())."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(dict.fromkeys(problems))  # drop repeats, keep order
        super().__init__("\n".join(map(str, self.problems)))


class Invalid(ValueError):
    """A value was refused. ``errors`` holds (key suffix, message) pairs."""

    def __init__(self, message: str, at: str = "") -> None:
        self.errors: list[tuple[str, str]] = [(at, message)]
        super().__init__(message)

    @classmethod
    def of(cls, errors: list[tuple[str, str]]) -> Invalid:
        invalid = cls(errors[0][1], errors[0][0])
        invalid.errors = errors
        return invalid


# --------------------------------------------------------------------------
# Showing values in messages, the way they are written in TOML

_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {
    ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t"}


def _quote(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _dotted(key: str) -> str:
    """A key as written in a TOML dotted path: bare when it can be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _quote(key)


def _show(value: Any) -> str:
    """Describe a TOML value for 'got ...': ``"ten" (string)``, ``true (boolean)``, ``an array``."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return f"{str(value).lower()} (boolean)"
    if isinstance(value, str):
        text, kind = _quote(value), "string"
    elif isinstance(value, int):
        text, kind = str(value), "integer"
    elif isinstance(value, float):
        text, kind = str(value), "float"
    else:  # TOML dates and times, or whatever a caller of parse() passed
        text, kind = str(value), type(value).__name__
    if len(text) > 60:
        text = text[:56] + "..." + text[-1]
    return f"{text} ({kind})"


def _expected(what: str, value: Any, hint: str = "") -> Invalid:
    return Invalid(f"expected {what}, got {_show(value)}{hint}")


# --------------------------------------------------------------------------
# Checks: raw TOML value -> parsed value, or Invalid

Check = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    if minimum is not None and maximum is not None:
        what = f"an integer from {minimum} to {maximum}"
    else:
        what = "an integer" + (f" >= {minimum}" if minimum is not None else "")

    def check(value: Any) -> int:
        if (not _is_int(value) or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            raise _expected(what, value)
        return int(value)
    return check


def _number(minimum: float, *, above: bool = False) -> Check:
    what = f"a number {'>' if above else '>='} {minimum:g}"

    def check(value: Any) -> float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and (value > minimum if above else value >= minimum))
        if not ok:
            raise _expected(what, value)
        return float(value)
    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected("true or false", value)
    return value


def _string(value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or "\0" in value:
        raise _expected("a string" if empty else "a non-empty string", value)
    return value


def _choice(*choices: str) -> Check:
    what = "one of " + ", ".join(map(_quote, choices))

    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise _expected(what, value)
        return value.lower()
    return check


def _octal(example: str) -> Check:
    what = f'an octal string like "{example}"'

    def check(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"(0o)?[0-7]{1,4}", value.lower()):
            mode = int(value.lower().removeprefix("0o"), 8)
            if mode <= 0o777:
                return mode
        hint = "; octal modes must be quoted" if _is_int(value) else ""
        raise _expected(what, value, hint)
    return check


def _array(item: Check, what: str) -> Check:
    """An array whose items all pass ``item``; item problems are keyed ``[i]``."""
    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _expected(what, value)
        items, errors = [], []
        for i, raw in enumerate(value):
            try:
                items.append(item(raw))
            except Invalid as e:
                errors += [(f"[{i}]{at}", message) for at, message in e.errors]
        if errors:
            raise Invalid.of(errors)
        return tuple(items)
    return check


def _user_exists(value: Any) -> str:
    name = _string(value)
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise Invalid(f"no such user {_quote(name)}") from None
    return name


def _run_as(value: Any) -> str:
    """``user``: an existing user, and superd must be root unless it is superd's own."""
    name = _user_exists(value)
    euid = os.geteuid()
    if euid != 0 and pwd.getpwnam(name).pw_uid != euid:
        raise Invalid(f"running as user {_quote(name)} needs root (superd runs as uid {euid})")
    return name


def _group_exists(value: Any) -> str:
    name = _string(value)
    try:
        grp.getgrnam(name)
    except KeyError:
        raise Invalid(f"no such group {_quote(name)}") from None
    return name


def _command(value: Any) -> tuple[str, ...]:
    """An array of strings, or one string split like a POSIX shell does."""
    if isinstance(value, str):
        try:
            argv = tuple(shlex.split(value))
        except ValueError as e:  # unbalanced quotes, trailing backslash
            raise Invalid(f"cannot split the command string: {e}") from None
    elif isinstance(value, list):
        argv = _array(lambda item: _string(item, empty=True), "")(value)
    else:
        argv = ()
    if not argv or not argv[0]:
        raise _expected("a non-empty array of strings, or a command string", value)
    return argv


def _environment(value: Any) -> tuple[tuple[str, str], ...]:
    """A table NAME = value; numbers become strings."""
    if not isinstance(value, dict):
        raise _expected("a table of NAME = \"value\"", value)
    pairs, errors = [], []
    for name, raw in value.items():
        at = "." + _dotted(name)
        if not name or "=" in name or "\0" in name:
            errors.append((at, 'invalid variable name (empty, or has "=" or NUL)'))
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            pairs.append((name, str(raw)))
        elif isinstance(raw, str) and "\0" not in raw:
            pairs.append((name, raw))
        else:
            errors.append((at, f"expected a string or a number, got {_show(raw)}"))
    if errors:
        raise Invalid.of(errors)
    return tuple(pairs)


def _autorestart(value: Any) -> Autorestart:
    if isinstance(value, bool):
        return Autorestart.ALWAYS if value else Autorestart.NEVER
    if isinstance(value, str) and value.lower() == "unexpected":
        return Autorestart.UNEXPECTED
    raise _expected('true, false or "unexpected"', value)


STREAM_WORDS = {"stdout": ("auto", "console", "null"),
                "stderr": ("auto", "console", "null", "stdout")}


def _stream(stream: str) -> Check:
    """``stdout``/``stderr``: a keyword or a file path (the other stream's name is neither)."""
    words = STREAM_WORDS[stream]
    what = ", ".join(map(_quote, words)) + " or a file path"

    def check(value: Any) -> str:
        if (not isinstance(value, str) or not value or "\0" in value
                or (value in STREAM_WORDS and value not in words)):
            raise _expected(what, value)
        return value
    return check


def _exitcodes(value: Any) -> frozenset[int]:
    return frozenset(_array(_integer(0, 255), "an array of exit codes")(value))


def _table(value: Any, keys: Mapping[str, Check], what: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """An inline table whose keys are all known; problems are keyed ``.key``."""
    if not isinstance(value, dict):
        raise _expected(what, value)
    values, errors = {}, []
    for key, raw in value.items():
        if key not in keys:
            errors.append((f".{_dotted(key)}", "unknown key; expected one of " + ", ".join(keys)))
            continue
        try:
            values[key] = keys[key](raw)
        except Invalid as e:
            errors += [(f".{_dotted(key)}{at}", message) for at, message in e.errors]
    errors += [(f".{key}", "missing") for key in required if key not in value]
    if errors:
        raise Invalid.of(errors)
    return values


_READY_WHAT = ('"notify", "tcp:PORT", "tcp:HOST:PORT", { exec = "cmd", interval = 1, timeout = 5 } '
               'or { tcp = "HOST:PORT", interval = 0.1, timeout = 1 }')
_PROBE_KEYS: dict[str, Check] = {"interval": _number(0, above=True), "timeout": _number(0, above=True)}


def _tcp_target(value: Any) -> str:
    """A tcp readiness target as written: a port or "HOST:PORT" (checked once expanded)."""
    if _is_int(value):
        return str(value)
    return _string(value)


def _ready(value: Any) -> ReadyCheck:
    """``ready``: how superd knows the program is ready (strings expanded later)."""
    if isinstance(value, str):
        if value.lower() == "notify":
            return ReadyCheck("notify")
        if value.lower().startswith("tcp:") and value[4:]:
            return ReadyCheck("tcp", target=value[4:], interval=TCP_INTERVAL, timeout=TCP_TIMEOUT)
        raise _expected(_READY_WHAT, value)
    if isinstance(value, dict) and "exec" in value:
        values = _table(value, {"exec": _command, **_PROBE_KEYS}, _READY_WHAT)
        return ReadyCheck("exec", command=values["exec"], interval=values.get("interval", EXEC_INTERVAL),
                          timeout=values.get("timeout", EXEC_TIMEOUT))
    if isinstance(value, dict) and "tcp" in value:
        values = _table(value, {"tcp": _tcp_target, **_PROBE_KEYS}, _READY_WHAT)
        return ReadyCheck("tcp", target=values["tcp"], interval=values.get("interval", TCP_INTERVAL),
                          timeout=values.get("timeout", TCP_TIMEOUT), key="ready.tcp")
    raise _expected(_READY_WHAT, value)


def parse_tcp_target(text: str) -> tuple[str, int]:
    """``"8000"``, ``"db:5432"``, ``"[::1]:8000"`` -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdecimal() or not 0 < int(port) < 65536:
        raise Invalid(f"expected a TCP port from 1 to 65535 in {_quote(text)}")
    if sep and not host:
        raise Invalid(f"expected HOST:PORT or PORT, got {_quote(text)}")
    return host or "127.0.0.1", int(port)


_STEP_WHAT = '{ signal = "TERM", wait = 10 } or { exec = "cmd", wait = 10 }'


def _stop_step(value: Any) -> StopStep:
    if isinstance(value, dict) and "exec" in value:
        values = _table(value, {"exec": _command, "wait": _number(0, above=True)}, _STEP_WHAT, ("wait",))
        return StopStep(command=values["exec"], wait=values["wait"])
    values = _table(value, {"signal": parse_signal, "wait": _number(0)}, _STEP_WHAT, ("signal", "wait"))
    return StopStep(signal=values["signal"], wait=values["wait"])


def _stop_sequence(value: Any) -> tuple[StopStep, ...]:
    steps = _array(_stop_step, "an array of steps like " + _STEP_WHAT)(value)
    if not steps:
        raise Invalid("expected at least one step (after the last one, SIGKILL)")
    return steps


CONDITIONS = ("ready", "started", "completed")
_DEPENDS_WHAT = 'an array of program names, or a table like { db = "ready", migrate = "completed" }'


def _depends_on(value: Any) -> tuple[Dependency, ...]:
    """``["db", "cache"]`` (each must be ready) or ``{ db = "ready", migrate = "completed" }``."""
    if isinstance(value, dict):
        condition = _choice(*CONDITIONS)
        values = _table(value, {name: condition for name in value}, _DEPENDS_WHAT)
        return tuple(Dependency(name, when, f".{_dotted(name)}") for name, when in values.items())
    if not isinstance(value, list):
        raise _expected(_DEPENDS_WHAT, value)
    names = _array(_string, _DEPENDS_WHAT)(value)
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise Invalid(f"{_quote(name)} is listed twice", f"[{i}]")
    return tuple(Dependency(name, "ready", f"[{i}]") for i, name in enumerate(names))


# --------------------------------------------------------------------------
# Public value parsers

_SIZE_RE = re.compile(r"\s*([0-9]+)\s*(?:([kmg])(?:i?b)?|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(value: Any) -> int:
    """Bytes from ``512``, ``"512"``, ``"10 KB"``, ``"50MB"``, ``"1g"`` (powers of 1024).

    0 means "no rotation". Raises ``ValueError`` (an ``Invalid``) with a readable message.
    """
    if _is_int(value) and value >= 0:
        return int(value)
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise _expected('a size like "50MB" (B, KB, MB or GB)', value)
    unit = match[2].lower() if match[2] else None
    return int(match[1]) * _SIZE_UNITS[unit]


_SIGNAL_NUMBERS = {int(sig): sig for sig in signal.Signals}


def parse_signal(value: Any, *, allow_stop: bool = False) -> signal.Signals:
    """A signal from ``"TERM"``, ``"SIGTERM"``, ``"term"``, ``"15"`` or ``15``.

    SIGSTOP is refused unless ``allow_stop`` (a process cannot act on it, so it
    is useless as a stop signal; ``superctl signal STOP`` may still want it).
    Raises ``ValueError`` (an ``Invalid``) with a readable message.
    """
    sig = None
    if _is_int(value) or (isinstance(value, str) and value.strip().isdecimal()):
        sig = _SIGNAL_NUMBERS.get(int(value))
    elif isinstance(value, str):
        name = value.strip().upper()
        sig = signal.Signals.__members__.get(name if name.startswith("SIG") else "SIG" + name)
    if sig is None:
        raise _expected('a signal name like "TERM" or a signal number', value)
    if sig == signal.SIGSTOP and not allow_stop:
        raise Invalid("SIGSTOP cannot be handled by a process; use another signal")
    return sig


# --------------------------------------------------------------------------
# ${VAR} expansion

_REF_RE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY_RE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` (used when VAR is unset or empty) and ``$$``.

    A bare ``$VAR`` is left alone, so shell snippets keep working. Raises
    ``Invalid`` for an undefined variable without default or a malformed ``${``.
    """
    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        body = match["body"]
        ref = _BODY_RE.fullmatch(body) if body is not None else None
        if ref is None:
            raise Invalid(f"bad variable reference {_quote(match[0])}: expected ${{NAME}} "
                          'or ${NAME:-default}; write "$$" for a literal "$"')
        value = variables.get(ref["name"])
        if ref["default"] is not None and not value:
            return ref["default"]
        if value is None:
            raise Invalid(f"undefined variable ${{{ref['name']}}} (set it in superd's "
                          f"environment, or give a default: ${{{ref['name']}:-value}})")
        return value
    return _REF_RE.sub(replace, text)


# --------------------------------------------------------------------------
# The config objects

#: Probe defaults: a TCP connect is cheap and quick, a command less so.
TCP_INTERVAL, TCP_TIMEOUT = 0.1, 1.0
EXEC_INTERVAL, EXEC_TIMEOUT = 1.0, 5.0


@dataclass(frozen=True, slots=True)
class ReadyCheck:
    """``ready``: "notify" (sd_notify READY=1), "tcp" (a connect succeeds) or
    "exec" (a command exits 0). In a program, ``target`` and ``command`` are as
    written; in an instance they are expanded and ``host``/``port`` are set."""

    kind: str
    target: str = ""                   # tcp: "PORT" or "HOST:PORT"
    command: tuple[str, ...] = ()      # exec
    interval: float = 0.0              # seconds between probes (tcp, exec)
    timeout: float = 0.0               # seconds one probe may take
    host: str = ""
    port: int = 0
    key: str = field(default="ready", compare=False, repr=False)  # where it was written, for messages

    def __str__(self) -> str:
        if self.kind == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp:{host}:{self.port}" if self.port else f"tcp:{self.target}"
        if self.kind == "exec":
            return "exec " + shlex.join(self.command)
        return self.kind


class Dependency(NamedTuple):
    """A ``depends_on`` entry: start only once ``program`` is ``condition``:
    "ready" (running and ready, or exited for good with an expected code),
    "started" (running, ready or not) or "completed" (exited for good with an
    expected code: a one-shot job that did its work)."""

    program: str
    condition: str = "ready"
    key: str = ""          # where it was written: "[0]" or ".db", for messages


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The ``[superd]`` table; paths are absolute. ``socket == ""``: no control socket."""

    socket: str
    socket_mode: int = 0o600
    socket_group: str | None = None
    allow_users: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()
    run_dir: str
    shutdown_timeout: float = 25.0
    client_timeout: float = 60.0       # control connections: seconds to send a whole request line
    log_level: str = "info"
    log_format: str = "text"
    logs_dir: str
    include: tuple[str, ...] = ()      # absolute glob patterns
    cgroups: str = "auto"              # "auto": a cgroup v2 per program where usable; "off": never


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """One ``[program.NAME]`` table: values checked, strings not yet ${}-expanded.

    ``directory``, ``stdout`` and ``stderr`` are as written (relative paths are
    made absolute, against ``source``'s folder, in the instances).
    """

    name: str
    command: tuple[str, ...]
    directory: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    umask: int | None = None
    numprocs: int = 1
    priority: int = 999
    autostart: bool = True
    autorestart: Autorestart = Autorestart.UNEXPECTED
    exitcodes: frozenset[int] = frozenset({0})
    startsecs: float = 1.0
    startretries: int = 3
    stopsignal: signal.Signals = signal.SIGTERM
    stopwaitsecs: float = 10.0
    stopasgroup: bool = False
    killasgroup: bool = False          # the parser defaults it to stopasgroup
    exit_with: bool = False
    stdout: str = "auto"
    stderr: str = "auto"
    stdout_maxbytes: int = 50 << 20
    stdout_backups: int = 10
    stderr_maxbytes: int = 50 << 20
    stderr_backups: int = 10
    ready: ReadyCheck | None = None    # None: ready once running (after startsecs)
    ready_timeout: float = 60.0        # not ready by then: a failed start
    depends_on: tuple[Dependency, ...] = ()  # programs this one waits for before it starts
    stop_sequence: tuple[StopStep, ...] = ()   # empty: the one step (stopsignal, stopwaitsecs)
    stop_command: tuple[str, ...] = ()  # run first when stopping, like systemd's ExecStop
    source: str | None = None          # the file it came from


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """One process to run: a program's settings with its strings expanded."""

    name: str                    # "web", or "web_0", "web_1", ... when numprocs > 1
    group: str                   # the program's name
    num: int
    program: ProgramConfig
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]   # the program's own, not superd's
    directory: str | None        # absolute
    stdout: str                  # "auto" | "console" | "null" | absolute path
    stderr: str                  # same, or "stdout"
    ready: ReadyCheck | None = None       # expanded, tcp host and port parsed
    stop_steps: tuple[StopStep, ...] = ()  # expanded; empty: (stopsignal, stopwaitsecs)

    def stop_plan(self) -> tuple[StopStep, ...]:
        """The steps of a stop, SIGKILL after the last."""
        return self.stop_steps or (StopStep(self.program.stopsignal, wait=self.program.stopwaitsecs),)

    def stop_time(self) -> float:
        """The longest a stop waits before SIGKILL."""
        return sum(step.wait for step in self.stop_plan())


@dataclass(frozen=True)
class Config:
    """Everything superd runs from."""

    path: str | None             # the main file; None in single-program mode
    daemon: DaemonSettings
    programs: tuple[ProgramConfig, ...]     # by name
    instances: tuple[InstanceConfig, ...]   # by priority, then name (numbers in order)

    @cached_property
    def _index(self) -> tuple[dict[str, ProgramConfig], dict[str, InstanceConfig]]:
        return ({p.name: p for p in self.programs}, {i.name: i for i in self.instances})

    def program(self, name: str) -> ProgramConfig | None:
        return self._index[0].get(name)

    def instance(self, name: str) -> InstanceConfig | None:
        return self._index[1].get(name)


# --------------------------------------------------------------------------
# What each table may hold

_path = _string

DAEMON_KEYS: dict[str, Check] = {
    "socket": lambda value: _string(value, empty=True),
    "socket_mode": _octal("0600"),
    "socket_group": _group_exists,
    "allow_users": _array(_user_exists, "an array of user names"),
    "allow_groups": _array(_group_exists, "an array of group names"),
    "run_dir": _path,
    "shutdown_timeout": _number(0, above=True),
    "client_timeout": _number(0, above=True),
    "log_level": _choice(*LOG_LEVELS),
    "log_format": _choice(*LOG_FORMATS),
    "logs_dir": _path,
    "include": _array(_path, "an array of glob patterns"),
    "cgroups": _choice("auto", "off"),
}

PROGRAM_KEYS: dict[str, Check] = {
    "command": _command,
    "directory": _path,
    "environment": _environment,
    "user": _run_as,
    "umask": _octal("022"),
    "numprocs": _integer(1),
    "priority": _integer(),
    "autostart": _boolean,
    "autorestart": _autorestart,
    "exitcodes": _exitcodes,
    "startsecs": _number(0),
    "startretries": _integer(0),
    "stopsignal": parse_signal,
    "stopwaitsecs": _number(0),
    "stopasgroup": _boolean,
    "killasgroup": _boolean,
    "exit_with": _boolean,
    "stdout": _stream("stdout"),
    "stderr": _stream("stderr"),
    "stdout_maxbytes": parse_size,
    "stdout_backups": _integer(0),
    "stderr_maxbytes": parse_size,
    "stderr_backups": _integer(0),
    "ready": _ready,
    "ready_timeout": _number(0, above=True),
    "depends_on": _depends_on,
    "stop_sequence": _stop_sequence,
    "stop_command": _command,
}


# --------------------------------------------------------------------------
# Reading

def default_paths(uid: int | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Default ``socket``, ``run_dir`` and ``logs_dir`` for a superd running as ``uid``.

    Root gets the system places; anyone else ``$XDG_RUNTIME_DIR`` (when it is an
    absolute path), else ``/tmp/superd-$UID``.
    """
    uid = os.geteuid() if uid is None else uid
    environ = os.environ if environ is None else environ
    if uid == 0:
        return {"socket": "/run/superd.sock", "run_dir": "/run/superd", "logs_dir": "/var/log/superd"}
    base = environ.get("XDG_RUNTIME_DIR", "")
    if not os.path.isabs(base):
        base = f"/tmp/superd-{uid}"
    return {"socket": f"{base}/superd.sock", "run_dir": f"{base}/superd",
            "logs_dir": f"{base}/superd/logs"}


def find_config_file(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The config file to use: ``-c``, then ``$SUPERD_CONFIG`` (even if missing,
    so that ``load()`` reports it), then the first of ``CONFIG_SEARCH_PATH`` that exists."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get("SUPERD_CONFIG"):
        return environ["SUPERD_CONFIG"]
    for candidate in CONFIG_SEARCH_PATH:
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return None


def _read_toml(path: str, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        problems.append(Problem(path, "", f"cannot read the file: {e.strerror or e}"))
    except UnicodeDecodeError as e:
        problems.append(Problem(path, "", f"not UTF-8 text: {e}"))
    except tomllib.TOMLDecodeError as e:
        problems.append(Problem(path, "", f"invalid TOML: {e}"))
    return None


def load(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, check and expand the config file at ``path`` and its includes."""
    path = os.path.abspath(path)
    problems: list[Problem] = []
    data = _read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    return parse(data, path, environ)


def read_socket_path(path: str, environ: Mapping[str, str] | None = None) -> str:
    """``[superd].socket`` of the file at ``path``, resolved as ``load()`` would.

    Cheap and lenient (for superctl): the rest of the file is not checked, and
    a missing or unusable ``socket`` gives the default. Raises ``ConfigError``
    only when the file cannot be read or is not TOML.
    """
    path = os.path.abspath(path)
    problems: list[Problem] = []
    data = _read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    daemon = data.get("superd")
    socket = daemon.get("socket") if isinstance(daemon, dict) else None
    if isinstance(socket, str) and "\0" not in socket:
        return _absolute(socket, os.path.dirname(path)) if socket else ""
    return default_paths(environ=environ)["socket"]


def _absolute(path: str, base: str) -> str:
    return os.path.abspath(os.path.join(base, path))


def _read_table(table: dict[str, Any], keys: Mapping[str, Check], prefix: str,
                file: str | None, problems: list[Problem]) -> dict[str, Any]:
    """Check each key of ``table`` against ``keys``; return the good values."""
    values = {}
    for key, raw in table.items():
        where = f"{prefix}.{_dotted(key)}"
        if key not in keys:
            problems.append(Problem(file, where, "unknown key; expected one of " + ", ".join(keys)))
            continue
        try:
            values[key] = keys[key](raw)
        except Invalid as e:
            problems += [Problem(file, where + at, message) for at, message in e.errors]
    return values


def _check_top_level(data: dict[str, Any], allowed: tuple[str, ...], file: str | None,
                     problems: list[Problem]) -> None:
    for key, value in data.items():
        if key == "superd" and key not in allowed:
            problems.append(Problem(file, key, "[superd] is only allowed in the main config file"))
        elif key not in allowed:
            tables = " and ".join("[program.NAME]" if name == "program" else f"[{name}]"
                                  for name in allowed)
            problems.append(Problem(file, _dotted(key), f"unknown key; expected only {tables} tables"))
        elif not isinstance(value, dict):
            problems.append(Problem(file, key, f"expected a table, got {_show(value)}"))


#: The longest path a Unix socket address holds (sun_path less its final NUL).
SOCKET_PATH_MAX = 107


def _read_daemon(table: dict[str, Any], base: str, file: str | None,
                 environ: Mapping[str, str], problems: list[Problem]) -> DaemonSettings:
    values = default_paths(environ=environ) | _read_table(table, DAEMON_KEYS, "superd", file, problems)
    for key in ("socket", "run_dir", "logs_dir"):
        if values[key]:
            values[key] = _absolute(values[key], base)
    if len(os.fsencode(values["socket"])) > SOCKET_PATH_MAX:
        problems.append(Problem(file, "superd.socket", f"the path {_quote(values['socket'])} is longer than "
                                f"the {SOCKET_PATH_MAX} bytes a Unix socket address can hold"))
    values["include"] = tuple(_absolute(pattern, base) for pattern in values.get("include", ()))
    return DaemonSettings(**values)


def _read_program(name: str, table: dict[str, Any], file: str | None,
                  problems: list[Problem]) -> ProgramConfig | None:
    where = f"program.{_dotted(name)}"
    if not isinstance(table, dict):
        problems.append(Problem(file, where, f"expected a table, got {_show(table)}"))
        return None
    count = len(problems)
    if not NAME_RE.fullmatch(name):
        problems.append(Problem(file, where, "invalid program name: expected letters, digits, "
                                '"_", "." or "-", starting with a letter or digit'))
    elif name in RESERVED_NAMES:
        problems.append(Problem(file, where, f"{_quote(name)} is reserved (it means every program)"))
    values = _read_table(table, PROGRAM_KEYS, where, file, problems)
    if "command" not in table:
        problems.append(Problem(file, where + ".command", "missing; every program needs a command"))
    if "stop_sequence" in values:
        for key in ("stopsignal", "stopwaitsecs", "stop_command"):
            if key in values:
                hint = ('add it as a first step { exec = ..., wait = ... }' if key == "stop_command"
                        else "the sequence says which signals and how long")
                problems.append(Problem(file, f"{where}.{key}", f"not with stop_sequence: {hint}"))
    if len(problems) > count:
        return None
    values.setdefault("killasgroup", values.get("stopasgroup", False))
    return ProgramConfig(name=name, source=file, **values)


def _included_files(patterns: Sequence[str], main: str | None) -> list[str]:
    """Files matched by the include globs, each once, sorted within each glob."""
    files = {os.path.abspath(f): None for pattern in patterns
             for f in sorted(glob.glob(pattern)) if os.path.isfile(f)}
    files.pop(main or "", None)
    return list(files)


def _instance(program: ProgramConfig, num: int, base: str, environ: Mapping[str, str],
              problems: list[Problem]) -> InstanceConfig:
    """Process ``num`` of ``program``, with ${} expanded and paths made absolute."""
    name = program.name if program.numprocs == 1 else f"{program.name}_{num}"
    # A view, not a copy of the whole environment for every instance.
    variables = ChainMap({"SUPERD_PROCESS_NAME": name, "SUPERD_PROCESS_NUM": str(num),
                          "SUPERD_GROUP": program.name}, environ)
    where = f"program.{_dotted(program.name)}"

    def x(text: str, key: str, required: bool = True) -> str:
        try:
            value = expand(text, variables)
        except Invalid as e:
            problems.append(Problem(program.source, f"{where}.{key}", str(e)))
            return text
        if required and not value:
            problems.append(Problem(program.source, f"{where}.{key}",
                                    f"{_quote(text)} expands to an empty string"))
        return value

    def output(stream: str) -> str:
        value = x(getattr(program, stream), stream)
        return value if value in STREAM_WORDS[stream] else _absolute(value, base)

    def argv(command: tuple[str, ...], key: str) -> tuple[str, ...]:
        return tuple(x(arg, f"{key}[{i}]", required=i == 0) for i, arg in enumerate(command))

    ready = program.ready
    if ready is not None and ready.kind == "tcp":
        try:
            host, port = parse_tcp_target(x(ready.target, ready.key))
        except Invalid as e:
            problems.append(Problem(program.source, f"{where}.{ready.key}", str(e)))
            host, port = "", 0
        ready = replace(ready, host=host, port=port)
    elif ready is not None and ready.kind == "exec":
        ready = replace(ready, command=argv(ready.command, "ready.exec"))
    steps = program.stop_sequence
    if program.stop_command:
        steps = (StopStep(command=program.stop_command, wait=program.stopwaitsecs),
                 StopStep(program.stopsignal, wait=program.stopwaitsecs))
    steps = tuple(replace(step, command=argv(step.command, f"stop_sequence[{i}].exec"))
                  if step.command and program.stop_sequence else
                  replace(step, command=argv(step.command, "stop_command")) if step.command else step
                  for i, step in enumerate(steps))

    return InstanceConfig(
        name=name, group=program.name, num=num, program=program,
        command=tuple(x(arg, f"command[{i}]", required=i == 0)
                      for i, arg in enumerate(program.command)),
        environment=tuple((key, x(value, f"environment.{_dotted(key)}", required=False))
                          for key, value in program.environment),
        directory=None if program.directory is None else _absolute(
            x(program.directory, "directory"), base),
        stdout=output("stdout"), stderr=output("stderr"), ready=ready, stop_steps=steps)


def _check_names(instances: Sequence[InstanceConfig], problems: list[Problem]) -> None:
    """No name may stand for two things: a program and another program's instance."""
    owner: dict[str, InstanceConfig] = {}
    for inst in instances:
        for name in dict.fromkeys((inst.group, inst.name)):
            first = owner.setdefault(name, inst)
            if first.group != inst.group:
                problems.append(Problem(inst.program.source, f"program.{_dotted(inst.group)}",
                                        f"the name {_quote(name)} is used twice: by "
                                        f"{_role(first, name)} and by {_role(inst, name)}"))


def _check_dependencies(programs: Mapping[str, ProgramConfig], problems: list[Problem]) -> None:
    """``depends_on`` names programs that exist, and no program waits for itself."""
    for program in programs.values():
        for name, condition, at in program.depends_on:
            where = f"program.{_dotted(program.name)}.depends_on{at}"
            if name not in programs:
                known = ", ".join(sorted(programs)) or "none"
                problems.append(Problem(program.source, where, f"no program named {_quote(name)} (programs: {known})"))
            elif condition == "completed" and programs[name].autorestart is Autorestart.ALWAYS:
                problems.append(Problem(program.source, where, f"{_quote(name)} has autorestart = true: it never "
                                        'completes (give it autorestart = false or "unexpected")'))
    seen: set[str] = set()
    for start in sorted(programs):
        cycle = _find_cycle(start, programs, seen)
        if cycle:
            seen.update(cycle)  # one report a cycle
            first = programs[cycle[0]]
            problems.append(Problem(first.source, f"program.{_dotted(first.name)}.depends_on",
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
    if inst.name == name and inst.program.numprocs > 1:
        return f"instance {name} of program {_quote(inst.group)}"
    return f"program {_quote(inst.group)}"


def parse(data: dict[str, Any], path: str | None, environ: Mapping[str, str] | None = None,
          *, base_dir: str | None = None) -> Config:
    """Check an already-parsed main file (``path`` names it in messages and, unless
    ``base_dir`` is given, its folder anchors relative paths) and read its includes."""
    environ = os.environ if environ is None else environ
    path = os.path.abspath(path) if path else None
    base = os.path.abspath(base_dir or (os.path.dirname(path) if path else os.getcwd()))
    problems: list[Problem] = []

    _check_top_level(data, ("superd", "program"), path, problems)
    daemon_table = data.get("superd")
    daemon = _read_daemon(daemon_table if isinstance(daemon_table, dict) else {},
                          base, path, environ, problems)

    # (file, folder its relative paths start from, its data)
    sources: list[tuple[str | None, str, dict[str, Any]]] = [(path, base, data)]
    for included_file in _included_files(daemon.include, path):
        included = _read_toml(included_file, problems)
        if included is not None:
            _check_top_level(included, ("program",), included_file, problems)
            sources.append((included_file, os.path.dirname(included_file), included))

    programs: dict[str, ProgramConfig] = {}
    defined_in: dict[str, str | None] = {}
    folders: dict[str, str] = {}
    for file, folder, table in sources:
        program_tables = table.get("program")
        if not isinstance(program_tables, dict):
            continue
        for name, program_table in program_tables.items():
            if name in defined_in:
                problems.append(Problem(file, f"program.{_dotted(name)}", "defined twice: in "
                                        f"{defined_in[name] or 'the main config'} and in {file}"))
                continue
            defined_in[name] = file
            folders[name] = folder
            program = _read_program(name, program_table, file, problems)
            if program is not None:
                programs[name] = program

    _check_dependencies(programs, problems)
    instances = [_instance(program, num, folders[program.name], environ, problems)
                 for program in sorted(programs.values(), key=lambda p: p.name)
                 for num in range(program.numprocs)]
    _check_names(instances, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        path=path, daemon=daemon,
        programs=tuple(programs[name] for name in sorted(programs)),
        instances=tuple(sorted(instances, key=lambda i: (i.program.priority, i.group, i.num))))


def single_program(argv: Sequence[str], *, stopwaitsecs: float = 10, socket: str | None = None,
                   environ: Mapping[str, str] | None = None) -> Config:
    """The embedded config of ``superd -- cmd args...``: one program, run like an init.

    ``argv`` is used verbatim (no expansion). No control socket unless ``socket``.
    """
    problems = []
    if not argv or not argv[0]:
        problems.append(Problem(None, "command", "expected a command to run after --"))
    try:
        stopwaitsecs = _number(0)(stopwaitsecs)
    except Invalid as e:
        problems.append(Problem(None, "--stopwaitsecs", str(e)))
    if problems:
        raise ConfigError(problems)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(argv[0])).lstrip("_.-")
    if not name or name in RESERVED_NAMES:
        name = "main"
    program = ProgramConfig(
        name=name, command=tuple(argv), autorestart=Autorestart.NEVER, exit_with=True,
        startsecs=0.0, startretries=0, stopwaitsecs=stopwaitsecs, stopasgroup=False,
        killasgroup=True, stdout="console", stderr="console")
    instance = InstanceConfig(
        name=name, group=name, num=0, program=program, command=program.command,
        environment=(), directory=None, stdout="console", stderr="console")
    paths = default_paths(environ=environ)
    daemon = DaemonSettings(
        socket=os.path.abspath(socket) if socket else "", run_dir=paths["run_dir"],
        logs_dir=paths["logs_dir"], shutdown_timeout=stopwaitsecs + 5)
    return Config(path=None, daemon=daemon, programs=(program,), instances=(instance,))
