"""The ``[http]`` table: superd's optional HTTP listener (XML-RPC, metrics, dashboard).

Only read and checked here; the server is :mod:`supervisor.http`. ``listen``
is ``HOST:PORT`` (``127.0.0.1:9001``, ``[::1]:9001``, ``*:9001`` or
``:9001`` for every address; ``tcp://`` may be written in front) or
``unix:///path``. A TCP listener on an address other than loopback must have
credentials; ``password`` is plain text or ``{SHA}`` and the hex SHA-1 of
the password (supervisord's form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .checks import Check, string
from .problems import Invalid, Problem, dotted, quote, show
from .sockets import parse_listen

LISTEN_WHAT = '"HOST:PORT" (as "127.0.0.1:9001", "[::1]:9001" or "*:9001" for every address) or "unix:///path"'
SHA_PREFIX = "{SHA}"
_SHA_RE = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """``[http]``, checked; a Unix socket's path is absolute."""

    listen: str                    # as written
    kind: str = "tcp"              # "tcp" or "unix"
    host: str = ""                 # tcp: an IP address; "" is every address
    port: int = 0                  # tcp
    path: str = ""                 # unix
    username: str | None = None
    password: str | None = None    # as written: plain, or "{SHA}" + 40 hex digits
    source: str | None = field(default=None, compare=False)

    @property
    def address(self) -> str:
        if self.kind == "unix":
            return self.path
        host = f"[{self.host}]" if ":" in self.host else (self.host or "*")
        return f"{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.kind != "tcp" or not self.host:
            return False
        import ipaddress  # only for a TCP address: 0.3 MB a superd without one does not carry

        return ipaddress.ip_address(self.host).is_loopback

    @property
    def sha_password(self) -> bool:
        return self.password is not None and self.password.startswith(SHA_PREFIX)


def _password(value: Any) -> str:
    text = string(value)
    if text.startswith(SHA_PREFIX) and not _SHA_RE.fullmatch(text[len(SHA_PREFIX):]):
        raise Invalid(f'expected "{SHA_PREFIX}" followed by the 40 hex digits of a SHA-1, got {quote(text[:60])}')
    return text


def _username(value: Any) -> str:
    text = string(value)
    if ":" in text:
        raise Invalid(f"a user name cannot hold \":\" (HTTP Basic authentication), got {quote(text)}")
    return text


HTTP_KEYS: dict[str, Check] = {
    "listen": string,
    "username": _username,
    "password": _password,
}


def parse_http_listen(text: str, base: str) -> dict[str, Any]:
    """``listen`` -> kind, host, port, path. Raises ``Invalid``."""
    if text.startswith("unix://"):
        return parse_listen(text, base)
    address = text[len("tcp://"):] if text.startswith("tcp://") else text
    if address.startswith("*:"):
        address = address[1:]
    try:
        return parse_listen("tcp://" + address, base)
    except Invalid:
        raise Invalid(f"expected {LISTEN_WHAT}, got {quote(text)}") from None


def read_http(table: Any, file: str | None, base: str, problems: list[Problem]) -> HttpSettings | None:
    """``[http]``, or None when it has problems."""
    if not isinstance(table, dict):
        problems.append(Problem(file, "http", f"expected a table, got {show(table)}"))
        return None
    count = len(problems)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in HTTP_KEYS:
            problems.append(Problem(file, f"http.{dotted(key)}", "unknown key; expected one of " + ", ".join(HTTP_KEYS)))
            continue
        try:
            values[key] = HTTP_KEYS[key](raw)
        except Invalid as e:
            problems += [Problem(file, f"http.{key}{at}", message) for at, message in e.errors]
    if "listen" not in table:
        problems.append(Problem(file, "http.listen", f"missing; expected {LISTEN_WHAT}"))
    elif "listen" in values:
        try:
            values.update(parse_http_listen(values["listen"], base))
        except Invalid as e:
            problems.append(Problem(file, "http.listen", str(e)))
    if ("username" in table) != ("password" in table):
        missing = "password" if "username" in table else "username"
        problems.append(Problem(file, f"http.{missing}", "missing; username and password go together"))
    if len(problems) > count:
        return None
    settings = HttpSettings(source=file, **values)
    if settings.kind == "tcp" and not settings.loopback and settings.username is None:
        problems.append(Problem(file, "http.listen", f"{quote(settings.listen)} is not a loopback address: "
                                "set username and password (anyone who reaches it could stop every program)"))
        return None
    return settings
