"""What each table may hold: key -> check, for ``[superd]`` and ``[program.NAME]``.

How a table is read is declared once, in ``DAEMON_KEYS`` and ``PROGRAM_KEYS``.
A check takes the raw TOML value and returns the parsed one, or raises
``Invalid``; defaults live on the dataclasses. The checks only programs use
(readiness, stop steps, dependencies, output streams) are here too.
"""

from __future__ import annotations

from typing import Any

from ..core.policy import Autorestart
from ..core.stopping import StopStep
from .checks import (Check, array, boolean, choice, command, environment, group_exists, inline_table, integer,
                     number, octal, parse_signal, parse_size, run_as, string, user_exists)
from .model import Dependency
from .naming import check_template
from .probes import alive_check, ready_check
from .resources import RESOURCE_KEYS
from .eventkeys import DAEMON_EVENT_KEYS, PROGRAM_EVENT_KEYS
from .problems import Invalid, dotted, expected, quote
from .sockets import PROGRAM_SOCKETS_KEY

LOG_LEVELS = ("debug", "info", "warning", "error")
#: Instances of one program at most (a typo of a few zeros must not cost minutes and gigabytes).
MAX_NUMPROCS = 10_000
LOG_FORMATS = ("text", "json")


# --------------------------------------------------------------------------
# Values only programs have

def _autorestart(value: Any) -> Autorestart:
    if isinstance(value, bool):
        return Autorestart.ALWAYS if value else Autorestart.NEVER
    if isinstance(value, str) and value.lower() == "unexpected":
        return Autorestart.UNEXPECTED
    raise expected('true, false or "unexpected"', value)


STREAM_WORDS = {"stdout": ("auto", "console", "null", "inherit"),
                "stderr": ("auto", "console", "null", "stdout", "inherit")}


def _stream(stream: str) -> Check:
    """``stdout``/``stderr``: a keyword or a file path (the other stream's name is neither)."""
    words = STREAM_WORDS[stream]
    what = ", ".join(map(quote, words)) + " or a file path"

    def check(value: Any) -> str:
        if (not isinstance(value, str) or not value or "\0" in value
                or (value in STREAM_WORDS and value not in words)):
            raise expected(what, value)
        return value
    return check


def _exitcodes(value: Any) -> frozenset[int]:
    return frozenset(array(integer(0, 255), "an array of exit codes")(value))


def parse_tcp_target(text: str) -> tuple[str, int]:
    """``"8000"``, ``"db:5432"``, ``"[::1]:8000"`` -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdecimal() or not 0 < int(port) < 65536:
        raise Invalid(f"expected a TCP port from 1 to 65535 in {quote(text)}")
    if sep and not host:
        raise Invalid(f"expected HOST:PORT or PORT, got {quote(text)}")
    return host or "127.0.0.1", int(port)


_STEP_WHAT = '{ signal = "TERM", wait = 10 } or { exec = "cmd", wait = 10 }'


def _stop_step(value: Any) -> StopStep:
    if isinstance(value, dict) and "exec" in value:
        values = inline_table(value, {"exec": command, "wait": number(0, above=True)}, _STEP_WHAT, ("wait",))
        return StopStep(command=values["exec"], wait=values["wait"])
    values = inline_table(value, {"signal": parse_signal, "wait": number(0)}, _STEP_WHAT, ("signal", "wait"))
    return StopStep(signal=values["signal"], wait=values["wait"])


def _stop_sequence(value: Any) -> tuple[StopStep, ...]:
    steps = array(_stop_step, "an array of steps like " + _STEP_WHAT)(value)
    if not steps:
        raise Invalid("expected at least one step (after the last one, SIGKILL)")
    return steps


CONDITIONS = ("ready", "started", "completed")
_DEPENDS_WHAT = 'an array of program names, or a table like { db = "ready", migrate = "completed" }'


def _depends_on(value: Any) -> tuple[Dependency, ...]:
    """``["db", "cache"]`` (each must be ready) or ``{ db = "ready", migrate = "completed" }``."""
    if isinstance(value, dict):
        condition = choice(*CONDITIONS)
        values = inline_table(value, {name: condition for name in value}, _DEPENDS_WHAT)
        return tuple(Dependency(name, when, f".{dotted(name)}") for name, when in values.items())
    if not isinstance(value, list):
        raise expected(_DEPENDS_WHAT, value)
    names = array(string, _DEPENDS_WHAT)(value)
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise Invalid(f"{quote(name)} is listed twice", f"[{i}]")
    return tuple(Dependency(name, "ready", f"[{i}]") for i, name in enumerate(names))


# --------------------------------------------------------------------------
# What each table may hold

_path = string

DAEMON_KEYS: dict[str, Check] = {
    "socket": lambda value: string(value, empty=True),
    "socket_mode": octal("0600"),
    "socket_group": group_exists,
    "allow_users": array(user_exists, "an array of user names"),
    "allow_groups": array(group_exists, "an array of group names"),
    "run_dir": _path,
    "shutdown_timeout": number(0, above=True),
    "client_timeout": number(0, above=True),
    "log_level": choice(*LOG_LEVELS),
    "log_format": choice(*LOG_FORMATS),
    "log_file": _path,
    "log_file_maxbytes": parse_size,
    "log_file_backups": integer(0),
    "logs_dir": _path,
    "include": array(_path, "an array of glob patterns"),
    "cgroups": choice("auto", "off"),
    "nice": integer(-20, 0),
    **DAEMON_EVENT_KEYS,
}

PROGRAM_KEYS: dict[str, Check] = {
    "command": command,
    "directory": _path,
    "environment": environment,
    "user": run_as,
    "umask": octal("022"),
    "numprocs": integer(1, MAX_NUMPROCS),
    "numprocs_start": integer(0),
    "process_name": check_template,
    "priority": integer(),
    "autostart": boolean,
    "autorestart": _autorestart,
    "exitcodes": _exitcodes,
    "startsecs": number(0),
    "startretries": integer(0),
    "stopsignal": parse_signal,
    "stopwaitsecs": number(0),
    "stopasgroup": boolean,
    "killasgroup": boolean,
    "exit_with": boolean,
    "stdout": _stream("stdout"),
    "stderr": _stream("stderr"),
    "stdout_maxbytes": parse_size,
    "stdout_backups": integer(0),
    "stderr_maxbytes": parse_size,
    "stderr_backups": integer(0),
    "ready": ready_check,
    "ready_timeout": number(0, above=True),
    "depends_on": _depends_on,
    "stop_sequence": _stop_sequence,
    "stop_command": command,
    "sockets": PROGRAM_SOCKETS_KEY,
    "alive": alive_check,
    "stdin": boolean,
    **RESOURCE_KEYS,
    **PROGRAM_EVENT_KEYS,
}

