"""Listening sockets superd holds: ``[socket.NAME]`` tables and a program's ``sockets``.

A socket is bound by superd (see :mod:`supervisor.daemon.sockets`) and handed
to the programs that list it, as descriptors 3, 4, ... in their order, the way
systemd's socket activation does. This module only reads and checks: the
address as written, its backlog and, for Unix sockets, the file's mode and
owner; which programs name which sockets; the ``${SUPERD_FD_NAME}`` variables
a program's strings may use; and which tables a reload changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .checks import Check, array, group_exists, integer, octal, string, user_exists
from .files import SOCKET_PATH_MAX, absolute
from .problems import Invalid, Problem, dotted, quote, show

#: The first descriptor a program's sockets get (systemd's SD_LISTEN_FDS_START).
FIRST_FD = 3
DEFAULT_BACKLOG = 1024
#: A Unix socket's file mode when the table gives none (systemd's SocketMode= default).
DEFAULT_MODE = 0o666
#: Letters, digits and "_": the name is also part of ``${SUPERD_FD_NAME}``.
SOCKET_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
FD_VARIABLE = "SUPERD_FD_"

LISTEN_WHAT = '"tcp://HOST:PORT", "tcp://[::1]:PORT", "tcp://:PORT" (every address) or "unix:///path"'


@dataclass(frozen=True, slots=True)
class SocketConfig:
    """One ``[socket.NAME]`` table, checked; a Unix socket's path is absolute."""

    name: str
    listen: str                    # as written
    kind: str                      # "tcp" or "unix"
    host: str = ""                 # tcp: an IP address; "" is every address
    port: int = 0                  # tcp
    path: str = ""                 # unix
    backlog: int = DEFAULT_BACKLOG
    mode: int | None = None        # unix: None is DEFAULT_MODE
    owner: str | None = None       # unix
    group: str | None = None       # unix
    source: str | None = field(default=None, compare=False)  # the file it came from

    @property
    def address(self) -> str:
        """Where it listens: ``127.0.0.1:8000``, ``[::1]:8000``, ``*:8000`` or the path."""
        if self.kind == "unix":
            return self.path
        host = f"[{self.host}]" if ":" in self.host else (self.host or "*")
        return f"{host}:{self.port}"

    @property
    def bind_key(self) -> tuple:
        """What the kernel binds: two tables with the same key share one socket."""
        return ("unix", self.path) if self.kind == "unix" else ("tcp", self.host, self.port)


def parse_listen(text: str, base: str) -> dict[str, Any]:
    """``listen`` -> kind, host, port, path. Raises ``Invalid``."""
    if text.startswith("unix://"):
        path = text[len("unix://"):]
        if not path:
            raise Invalid(f"expected a path after unix://, as in \"unix:///run/app.sock\", got {quote(text)}")
        path = absolute(path, base)
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            raise Invalid(f"the path {quote(path)} is longer than the {SOCKET_PATH_MAX} bytes "
                          "a Unix socket address can hold")
        return {"kind": "unix", "path": path}
    if not text.startswith("tcp://"):
        raise Invalid(f"expected {LISTEN_WHAT}, got {quote(text)}")
    host, sep, port = text[len("tcp://"):].rpartition(":")
    if not sep or not port.isdecimal() or not 0 < int(port) < 65536:
        raise Invalid(f"expected a TCP port from 1 to 65535 in {quote(text)}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ip(host, 6):
            raise Invalid(f"expected an IPv6 address between [ and ] in {quote(text)}")
    elif host == "localhost":
        host = "127.0.0.1"
    elif host and not _is_ip(host, 4):
        raise Invalid(f"expected an IP address (or localhost) as the host in {quote(text)}: "
                      "superd binds before any name service is up; write IPv6 addresses as [::1]")
    return {"kind": "tcp", "host": host, "port": int(port)}


def _is_ip(text: str, version: int) -> bool:
    import ipaddress  # only for a TCP address: 0.3 MB a superd without one does not carry

    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


SOCKET_KEYS: dict[str, Check] = {
    "listen": string,
    "backlog": integer(1),
    "mode": octal("0660"),
    "owner": user_exists,
    "group": group_exists,
}
UNIX_ONLY = ("mode", "owner", "group")


def read_socket(name: str, table: Any, file: str | None, base: str,
                problems: list[Problem]) -> SocketConfig | None:
    """``[socket.NAME]``, or None when it has problems."""
    where = f"socket.{dotted(name)}"
    if not isinstance(table, dict):
        problems.append(Problem(file, where, f"expected a table, got {show(table)}"))
        return None
    count = len(problems)
    if not SOCKET_NAME_RE.fullmatch(name):
        problems.append(Problem(file, where, 'invalid socket name: expected letters, digits and "_" '
                                f"(it is part of ${{{FD_VARIABLE}NAME}})"))
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in SOCKET_KEYS:
            problems.append(Problem(file, f"{where}.{dotted(key)}",
                                    "unknown key; expected one of " + ", ".join(SOCKET_KEYS)))
            continue
        try:
            values[key] = SOCKET_KEYS[key](raw)
        except Invalid as e:
            problems += [Problem(file, f"{where}.{key}{at}", message) for at, message in e.errors]
    if "listen" not in table:
        problems.append(Problem(file, f"{where}.listen", f"missing; expected {LISTEN_WHAT}"))
    elif "listen" in values:
        try:
            values.update(parse_listen(values["listen"], base))
        except Invalid as e:
            problems.append(Problem(file, f"{where}.listen", str(e)))
    if values.get("kind") == "tcp":
        problems += [Problem(file, f"{where}.{key}", "only for Unix sockets (listen = \"unix:///path\")")
                     for key in UNIX_ONLY if key in table]
    if len(problems) > count:
        return None
    return SocketConfig(name=name, source=file, **values)


def read_sockets(sources: Iterable[tuple[str | None, str, Mapping[str, Any]]],
                 problems: list[Problem]) -> dict[str, SocketConfig]:
    """Every ``[socket.NAME]`` of the files: (file, its folder, its data) each."""
    sockets: dict[str, SocketConfig] = {}
    defined_in: dict[str, str | None] = {}
    bound: dict[tuple, str] = {}
    for file, folder, data in sources:
        tables = data.get("socket")
        if not isinstance(tables, dict):
            continue
        for name, table in tables.items():
            if name in defined_in:
                problems.append(Problem(file, f"socket.{dotted(name)}", "defined twice: in "
                                        f"{defined_in[name] or 'the main config'} and in {file}"))
                continue
            defined_in[name] = file
            sock = read_socket(name, table, file, folder, problems)
            if sock is None:
                continue
            if sock.bind_key in bound:
                problems.append(Problem(file, f"socket.{dotted(name)}.listen", f"{sock.address} is "
                                        f"socket.{dotted(bound[sock.bind_key])}'s address already"))
                continue
            bound[sock.bind_key] = name
            sockets[name] = sock
    return sockets


def _socket_names(value: Any) -> tuple[str, ...]:
    names = array(string, 'an array of socket names, like ["web"]')(value)
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise Invalid(f"{quote(name)} is listed twice", f"[{i}]")
    return names


#: The program key: ``sockets = ["web", ...]``.
PROGRAM_SOCKETS_KEY: Check = _socket_names


def check_program_sockets(programs: Iterable[Any], sockets: Mapping[str, SocketConfig],
                          problems: list[Problem]) -> None:
    """Every socket a program names is a ``[socket.NAME]`` table."""
    for program in programs:
        for i, name in enumerate(program.sockets):
            if name not in sockets:
                known = ", ".join(sorted(sockets)) or "none"
                problems.append(Problem(program.source, f"program.{dotted(program.name)}.sockets[{i}]",
                                        f"no socket named {quote(name)} (sockets: {known}); "
                                        f"declare it in a [socket.{dotted(name)}] table"))


def fd_variables(names: Iterable[str]) -> dict[str, str]:
    """``${SUPERD_FD_NAME}`` for a program's sockets: their descriptor numbers."""
    return {f"{FD_VARIABLE}{name}": str(FIRST_FD + i) for i, name in enumerate(names)}


def changed_sockets(old: Iterable[SocketConfig], new: Iterable[SocketConfig]) -> set[str]:
    """Names of the tables a reload adds, removes or changes."""
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
