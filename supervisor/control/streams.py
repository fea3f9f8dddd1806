"""The client's reading methods: a process's log, superd's own log and its
events, read once or followed as they come.

A followed stream has a connection of its own: superd answers the request,
then keeps sending notifications until the iterator is closed (the caller
stops reading when it wants). :class:`Streams` is a mixin of
:class:`~supervisor.control.client.Client`; like the client it imports only
the standard library and its neighbours in this package (it is on superctl's
fast path).
"""

from __future__ import annotations

import json
from typing import Callable

from .connection import EOF, Connection
from .errors import ProtocolError, Unreachable, error_from_response


class Streams:
    """``tail``, ``maintail``, ``events`` and their followed forms. The class
    using it provides ``call``, ``path`` and ``connect_timeout``."""

    path: str
    connect_timeout: float | None
    call: Callable[..., object]

    def tail(self, name: str, stream: str = "stdout", lines: int = 10) -> list[str]:
        """The last ``lines`` lines of a process's log."""
        result = self.call("tail", name=name, stream=stream, lines=lines)
        return _lines_of(result)

    def follow(self, name: str, stream: str = "stdout", lines: int = 10, connection: Connection | None = None):
        """Iterate over the last ``lines`` lines and then over new lines as
        they come, until the iterator is closed. Uses its own connection
        (``connection``: this one, which another thread may ``interrupt``),
        so the client stays usable meanwhile. Raises ``Unreachable`` if
        superd goes away."""
        conn = connection or Connection(self.path, self.connect_timeout, None)
        return _follow(conn, {"name": name, "stream": stream, "lines": lines, "follow": True})

    def maintail(self, lines: int = 10) -> list[str]:
        """The last ``lines`` lines of superd's own log."""
        return _lines_of(self.call("maintail", lines=lines))

    def follow_main(self, lines: int = 10):
        """Iterate over the last ``lines`` lines of superd's own log, then over
        new ones as they come, until the iterator is closed (as :meth:`follow`)."""
        conn = Connection(self.path, self.connect_timeout, None)
        return _subscribe(conn, "maintail", {"lines": lines, "follow": True}, _lines_of, "tail")

    def events(self, names: list[str] | str | None = None, since: float | None = None) -> list[dict]:
        """The recent events superd keeps (of ``names``' processes; after the
        wall-clock time ``since``), oldest first."""
        params = with_given({} if names is None else {"names": names_list(names)}, since=since)
        result = self.call("events", **params)
        return _events_of(result)

    def follow_events(self, names: list[str] | str | None = None, since: float | None = None):
        """Iterate over the recent events, then over new ones as they come,
        until the iterator is closed. Uses its own connection. A follower
        superd dropped (it fell behind) gets a last event of type
        ``dropped``, then the iteration ends; ``Unreachable`` if superd goes away."""
        conn = Connection(self.path, self.connect_timeout, None)
        params = with_given({"follow": True} if names is None else {"names": names_list(names), "follow": True}, since=since)
        return _follow_events(conn, params)


def names_list(names: object) -> list[str]:
    """One name or several, as a list."""
    if isinstance(names, str):
        return [names]
    return list(names)  # type: ignore[call-overload]


def with_given(params: dict, **more: object) -> dict:
    """``params`` with those of ``more`` that are not None."""
    for key, value in more.items():
        if value is not None:
            params[key] = value
    return params


def _lines_of(payload: object) -> list[str]:
    if isinstance(payload, dict):
        payload = payload.get("lines", [])
    if not isinstance(payload, list):
        raise ProtocolError(None, f"expected lines, got {json.dumps(payload)[:200]}")
    return [line[:-1] if isinstance(line, str) and line.endswith("\n") else str(line) for line in payload]


def _subscribe(conn: Connection, method: str, params: dict, decode, notification: str | None = None):
    """The answer to ``method``, then its notifications (``notification``, by
    default named as the method), each through ``decode``, until the connection
    ends (the caller stops reading when it wants)."""
    notification = notification or method
    try:
        req_id = conn.send_request(method, params)
        yield from decode(conn.read_response(req_id))
        while True:
            msg = conn.read_message()
            if msg is EOF:
                raise Unreachable(conn.path, "superd closed the connection")
            if "error" in msg and msg.get("id") in (None, req_id):
                raise error_from_response(msg["error"])
            if msg.get("method") == notification:
                payload = msg.get("params")
                yield from decode(payload if payload is not None else [])
            # anything else: not ours, skip it
    finally:
        conn.close()


def _follow(conn: Connection, params: dict):
    return _subscribe(conn, "tail", params, _lines_of)


def _events_of(payload: object) -> list[dict]:
    if isinstance(payload, dict):
        payload = payload.get("events", [])
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise ProtocolError(None, f"expected events, got {json.dumps(payload)[:200]}")
    return payload  # type: ignore[return-value]


def _follow_events(conn: Connection, params: dict):
    events = _subscribe(conn, "events", params, _events_of)
    try:
        for event in events:
            yield event
            if event.get("type") == "dropped":
                return
    finally:
        events.close()
