"""``ready`` and ``alive``: how superd checks a program, as written in its table.

Both take ``"tcp:PORT"``, ``"tcp:HOST:PORT"``, ``"http://HOST:PORT/PATH"``
and the tables ``{ tcp = ... }``, ``{ http = ... }``, ``{ exec = ... }`` with
``interval`` and ``timeout``; ``ready`` also takes ``"notify"``, ``alive``
also ``failures``. Strings are ${}-expanded later, in the instances
(:func:`expand_check`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from .checks import Check, command, inline_table, integer, is_int, number, string
from .model import EXEC_INTERVAL, EXEC_TIMEOUT, TCP_INTERVAL, TCP_TIMEOUT, ReadyCheck
from .problems import Invalid, expected, quote

#: An HTTP probe: a GET answered 2xx or 3xx.
HTTP_INTERVAL, HTTP_TIMEOUT = 0.2, 2.0
#: alive: seconds between checks and consecutive failures that make a program unhealthy.
ALIVE_INTERVAL, ALIVE_FAILURES = 10.0, 3

_READY_WHAT = ('"notify", "tcp:PORT", "tcp:HOST:PORT", "http://HOST:PORT/PATH", '
               '{ exec = "cmd", interval = 1, timeout = 5 }, { tcp = "HOST:PORT", interval = 0.1, timeout = 1 } '
               'or { http = "http://...", interval = 0.2, timeout = 2 }')
_ALIVE_WHAT = ('"tcp:PORT", "tcp:HOST:PORT", "http://HOST:PORT/PATH", or a table { tcp = ... }, '
               '{ http = ... } or { exec = ... } with interval, timeout and failures')
_PROBE_KEYS: dict[str, Check] = {"interval": number(0, above=True), "timeout": number(0, above=True)}
_ALIVE_KEYS: dict[str, Check] = {**_PROBE_KEYS, "failures": integer(1)}
_DEFAULTS = {"tcp": (TCP_INTERVAL, TCP_TIMEOUT), "http": (HTTP_INTERVAL, HTTP_TIMEOUT),
             "exec": (EXEC_INTERVAL, EXEC_TIMEOUT)}


def _tcp_target(value: Any) -> str:
    """A tcp target as written: a port or "HOST:PORT" (checked once expanded)."""
    if is_int(value):
        return str(value)
    return string(value)


def _http_url(value: Any) -> str:
    text = string(value)
    if "${" not in text:
        parse_http_url(text)
    return text


def parse_http_url(text: str) -> tuple[str, int, str]:
    """``"http://127.0.0.1:8000/health?x=1"`` -> ("127.0.0.1", 8000, "/health?x=1")."""
    from urllib.parse import urlsplit  # only for an http probe (it imports ipaddress)

    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise Invalid(f"bad URL {quote(text)}: {e}") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise Invalid(f"expected an URL like \"http://127.0.0.1:8000/health\", got {quote(text)} "
                      "(plain http only)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port or 80, path


def _check(value: Any, key: str, what: str, table_keys: dict[str, Check]) -> ReadyCheck:
    if isinstance(value, str):
        lower = value.lower()
        if lower.startswith("tcp:") and value[4:]:
            kind, target = "tcp", value[4:]
        elif lower.startswith("http://"):
            kind, target = "http", _http_url(value)
        else:
            raise expected(what, value)
        interval, timeout = _DEFAULTS[kind]
        return ReadyCheck(kind, target=target, interval=interval, timeout=timeout, key=key)
    kinds = [kind for kind in ("exec", "tcp", "http") if isinstance(value, dict) and kind in value]
    if len(kinds) != 1:
        raise expected(what, value)
    kind = kinds[0]
    first: Callable[[Any], Any] = {"exec": command, "tcp": _tcp_target, "http": _http_url}[kind]
    values = inline_table(value, {kind: first, **table_keys}, what)
    interval, timeout = _DEFAULTS[kind]
    return ReadyCheck(kind, target="" if kind == "exec" else values[kind],
                      command=values[kind] if kind == "exec" else (),
                      interval=values.get("interval", interval), timeout=values.get("timeout", timeout),
                      failures=values.get("failures", 0), key=f"{key}.{kind}")


def ready_check(value: Any) -> ReadyCheck:
    """``ready``: how superd knows the program is ready."""
    if isinstance(value, str) and value.lower() == "notify":
        return ReadyCheck("notify")
    return _check(value, "ready", _READY_WHAT, _PROBE_KEYS)


def alive_check(value: Any) -> ReadyCheck:
    """``alive``: the check that runs while the program runs (every ``interval`` s)."""
    if isinstance(value, str) and value.lower() == "notify":
        raise Invalid('"notify" is for ready; for a notify program use watchdog = SECONDS')
    check = _check(value, "alive", _ALIVE_WHAT, _ALIVE_KEYS)
    failures = check.failures or ALIVE_FAILURES
    interval = value.get("interval", ALIVE_INTERVAL) if isinstance(value, dict) else ALIVE_INTERVAL
    return replace(check, failures=failures, interval=float(interval))


def expand_check(check: ReadyCheck, x: Callable[[str, str], str],
                 argv: Callable[[tuple[str, ...], str], tuple[str, ...]],
                 parse_tcp: Callable[[str], tuple[str, int]], report: Callable[[str, str], None]) -> ReadyCheck:
    """The check of an instance: strings expanded (``x(text, key)``), tcp and
    http targets parsed (problems to ``report(key, message)``)."""
    try:
        if check.kind == "tcp":
            host, port = parse_tcp(x(check.target, check.key))
            return replace(check, host=host, port=port)
        if check.kind == "http":
            url = x(check.target, check.key)
            host, port, path = parse_http_url(url)
            return replace(check, target=url, host=host, port=port, path=path)
    except Invalid as e:
        report(check.key, str(e))
        return check
    if check.kind == "exec":
        return replace(check, command=argv(check.command, check.key))
    return check
