"""The dashboard's JSON API under ``/api/``, on the command API the control socket uses.

- ``GET /api/status``: superd (state, pid, version, host) and every process
  as ``superctl status --json`` shows it (state, pid, uptime, health,
  restarts, description, group, ...).
- ``POST /api/start/NAME``, ``/api/stop/NAME``, ``/api/restart/NAME``: NAME
  is an instance, a program, ``group:*`` or ``all``; the answer comes once
  the action is over: ``{"results": [{name, ok, state, pid, message}]}``.
- ``GET /api/output/NAME?stream=stdout|stderr&lines=N``: Server-Sent Events:
  the last N lines, then new ones (``message`` events; ``notice`` events for
  superd's own notes).
- ``GET /api/events?after=SERIAL&name=NAME``: Server-Sent Events: the
  recent events (those after SERIAL, when given), then new ones (of the
  named processes, when given); each event's data is its JSON (see
  :mod:`supervisor.daemon.events`).

Errors are ``{"error": "..."}`` with a status: 400 a bad request, 403 a
cross-site action, 404 no such process, 409 refused or failed, 503 superd
shutting down or too many streams. An action must be a POST carrying the
header :data:`ACTION_HEADER`, which a form or a link of another site
cannot send (a script of another site would need a CORS pre-flight, which
superd never allows), and a browser must not mark it cross-site
(``Sec-Fetch-Site``): credentials the browser remembers cannot be used by
another site to stop a process.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from typing import Optional

from .. import __version__
from ..core.errors import Failed, NoSuchName, Refused, ShuttingDown
from ..daemon.commands import process_info
from ..daemon.events import matcher
from .logtail import find_process
from .response import Response, StreamingResponse
from .streaming import EventStream, OutputFollower, sse, sse_data

#: The header an action must carry (any value).
ACTION_HEADER = b"x-superd-request"
ACTIONS = ("start", "stop", "restart")
#: Lines an output view starts with, by default and at most.
LINES, MAX_LINES = 200, 2000
#: Recent events an event view starts with.
RECENT_EVENTS = 50
SSE_TYPE = "text/event-stream; charset=utf-8"


def json_response(status: int, value: object) -> Response:
    return Response(status, json.dumps(value).encode(), content_type="application/json",
                    headers=[("Cache-Control", "no-store")])


def error(status: int, message: str, headers: Optional[list[tuple[str, str]]] = None) -> Response:
    response = json_response(status, {"error": message})
    response.headers += headers or []
    return response


def cross_site(headers: dict[bytes, bytes]) -> Optional[str]:
    """Why an action request may come from another site; None when it cannot."""
    if ACTION_HEADER not in headers:
        return "an action needs the X-Superd-Request header (the dashboard sends it)"
    site = headers.get(b"sec-fetch-site")
    if site is not None and site not in (b"same-origin", b"none"):
        return f"refused a {site.decode('latin-1')} request: actions come from superd's own page only"
    return None


class Api:
    """``/api/...`` for one supervisor."""

    def __init__(self, supervisor) -> None:
        self.sv = supervisor

    async def handle(self, method: bytes, target: bytes, headers: dict[bytes, bytes]) -> Response | StreamingResponse:
        parsed = urllib.parse.urlsplit(target.decode("latin-1"))
        parts = parsed.path[len("/api/"):].split("/", 1)
        what, name = parts[0], urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        query = urllib.parse.parse_qs(parsed.query)
        if what in ACTIONS:
            if method != b"POST":
                return error(405, f"{what} takes POST", [("Allow", "POST")])
            refusal = cross_site(headers)
            if refusal is not None:
                return error(403, refusal)
            if not name:
                return error(400, f"/api/{what}/NAME: NAME is a process, a program, group:* or all")
            return await self._act(what, name)
        if what not in ("status", "output", "events"):
            return error(404, f"no such API: /api/{what} (status, start, stop, restart, output, events)")
        if method != b"GET":
            return error(405, f"/api/{what} takes GET", [("Allow", "GET")])
        if what == "status":
            return json_response(200, self.status())
        if what == "output":
            return self._output(name, query)
        return self._events(query)

    def status(self) -> dict:
        sv = self.sv
        return {"superd": {"state": sv.state.value, "pid": os.getpid(), "version": __version__,
                           "host": socket.gethostname(), "since": round(sv.since, 3)},
                "processes": [process_info(p) for p in sv.processes.values()]}

    async def _act(self, what: str, name: str) -> Response:
        commands = self.sv.commands
        try:
            processes = self.sv.resolve([name])
            if what == "start":
                results = await commands.start(processes, True, None)
            elif what == "stop":
                results = await commands.stop(processes, True, None)
            else:
                results = await commands.restart(processes, True, None, False)
        except NoSuchName as exc:
            return error(404, f"no such process: {exc.args[0]}")
        except ShuttingDown as exc:
            return error(503, str(exc))
        except (Refused, Failed) as exc:
            return error(409, str(exc))
        return json_response(200, {"results": results})

    def _output(self, name: str, query: dict[str, list[str]]) -> Response | StreamingResponse:
        sv = self.sv
        process = find_process(sv, name)
        if process is None:
            return error(404, f"no such process: {name}")
        which = query.get("stream", ["stdout"])[-1]
        if which not in ("stdout", "stderr"):
            return error(400, f"stream must be stdout or stderr, not {which!r}")
        try:
            count = min(int(query.get("lines", [LINES])[-1]), MAX_LINES)
        except ValueError:
            return error(400, "lines must be a number")
        try:
            lines = sv.commands.tail(process, which, count, False, None)
        except Failed as exc:
            return error(409, str(exc))
        stream = sv.outputs.stream(process.config, which, sv.config.daemon.logs_dir)
        first = sse("\n".join(lines).replace("\r", "")) if lines else b""
        timeout = sv.config.daemon.client_timeout

        def open_body(body):
            return first, OutputFollower(stream, body, timeout, events=True)

        return StreamingResponse(SSE_TYPE, open_body)

    def _events(self, query: dict[str, list[str]]) -> Response | StreamingResponse:
        events = self.sv.events
        names = [n for n in query.get("name", []) if n]
        try:
            match = matcher(names, self.sv.resolve(names) if names else ())
            after = int(query["after"][-1]) if "after" in query else None
        except NoSuchName as exc:
            return error(404, f"no such process: {exc.args[0]}")
        except ValueError:
            return error(400, "after must be an event's serial number")
        recent = events.recent_encoded(match, after)
        first = b"".join(sse_data(data) for data in (recent if after is not None else recent[-RECENT_EVENTS:]))
        timeout = self.sv.config.daemon.client_timeout

        def open_body(body):
            follower = EventStream(events, body, match, timeout)
            events.attach(follower)
            return first, follower

        return StreamingResponse(SSE_TYPE, open_body)
