"""What the HTTP side remembers from superd's event stream.

The process objects know their state, pid and restarts; supervisord's
process info and the metrics also want the wall time of the last start and
stop, how many runs ended expectedly and unexpectedly, and how many reloads
there were. :class:`Stats` subscribes to :class:`~supervisor.daemon.events.Events`
and counts, by instance name (a reload replaces the process objects, not the
names).
"""

from __future__ import annotations

import time
from typing import Any


class Stats:
    def __init__(self, supervisor) -> None:
        self.sv = supervisor
        self.started = time.time()          # superd's own start
        self.last_start: dict[str, float] = {}
        self.last_stop: dict[str, float] = {}
        self.exits: dict[str, dict[str, int]] = {}   # name -> {"expected": n, "unexpected": m}
        self.reloads = 0
        self.reload_failures = 0
        supervisor.events.subscribers.append(self.on_event)
        # What happened before this subscribed (nothing, when made before superd runs).
        for event, _ in list(supervisor.events.ring):
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "process":
            name, to, old = event.get("name"), event.get("to_state"), event.get("from_state")
            when = event.get("time") or time.time()
            if to == "starting" and event.get("pid") and old != "starting":
                self.last_start[name] = when
            elif to in ("stopped", "exited", "fatal", "backoff") and old in ("starting", "running", "stopping"):
                self.last_stop[name] = when
                counts = self.exits.setdefault(name, {"expected": 0, "unexpected": 0})
                if to == "exited":
                    counts["expected" if event.get("expected") else "unexpected"] += 1
                elif to == "backoff" or (to == "fatal" and old == "starting"):
                    counts["unexpected"] += 1
        elif kind == "reload":
            self.reloads += 1

    def start_time(self, process) -> int:
        """Epoch seconds of the last start, 0 when never started."""
        when = self.last_start.get(process.name)
        if when is None and process.uptime() is not None:
            when = time.time() - process.uptime()
        return int(when or 0)

    def stop_time(self, process) -> int:
        return int(self.last_stop.get(process.name, 0))
