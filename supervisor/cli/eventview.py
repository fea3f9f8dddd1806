"""How ``superctl events`` prints an event: one line for people, or the JSON object."""

from __future__ import annotations

import json
import time


def timestamp(seconds: float) -> str:
    """RFC 3339 in local time, with milliseconds."""
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    local = time.localtime(whole)
    offset = local.tm_gmtoff or 0
    zone = "Z" if offset == 0 else f"{'+' if offset >= 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{millis:03d}{zone}"


def line(event: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(event, separators=(",", ":"))
    when = timestamp(float(event.get("time") or 0))
    kind = event.get("type")
    name = event.get("name")
    if kind == "process":
        details = []
        if event.get("pid"):
            details.append(f"pid {event['pid']}")
        if event.get("exitstatus") is not None and event.get("to_state") in ("exited", "backoff", "fatal"):
            details.append(f"exit {event['exitstatus']}")
        if event.get("expected") is not None:
            details.append("expected" if event["expected"] else "unexpected")
        extra = f" ({', '.join(details)})" if details else ""
        return f"{when} {name}: {event.get('from_state')} -> {event.get('to_state')}{extra}: {event.get('reason')}"
    if kind in ("ready", "health"):
        return f"{when} {name}: {event.get('from_state')} -> {event.get('to_state')}: {event.get('reason')}"
    if kind == "daemon":
        was = event.get("from_state")
        return f"{when} superd: {(was + ' -> ') if was else ''}{event.get('to_state')}"
    return f"{when} {kind}: {event.get('reason')}"
