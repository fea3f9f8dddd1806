"""What superd sees, as events: a bounded ring of recent ones, their
subscribers inside superd (event listeners, hooks) and the control
connections that follow them (``superctl events -f``).

An event is a flat dict, encoded to JSON once::

    {"serial", "time", "type", "name", "group", "from_state", "to_state",
     "pid", "exitstatus", "expected", "reason", ...}

``type`` is ``process`` (a state change), ``ready`` (a running process
became ready or not ready again, e.g. it sent ``RELOADING=1``: ``from_state``
and ``to_state`` are "ready" and "not ready", ``state`` its process state),
``health`` (its ``alive`` check made it "healthy" or "unhealthy":
``from_state`` is the health before, "unknown" for a new run, ``reason`` the
check's last result), ``daemon`` (superd's own state) or ``reload`` (what a
reload changed, in ``added``, ``removed``, ``changed``, ``regrouped``).

Followers are bounded like ``tail -f``'s (:mod:`supervisor.output.follow`):
each holds at most :data:`FOLLOWER_QUEUE` events not yet sent; one that falls
further behind, or takes nothing for ``client_timeout`` seconds, is dropped,
the first with a last ``dropped`` event saying so. Emitting an event costs
one encoding and an append per follower: it never waits for anyone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any, Callable, Iterable, Optional

log = logging.getLogger("superd")

#: Recent events kept for ``superctl events`` without ``-f``.
RING_SIZE = 1000
#: Events waiting for one follower's socket; past this it is dropped.
FOLLOWER_QUEUE = 1000
#: Followers of the event stream at once (apart from the control connections).
MAX_FOLLOWERS = 64
#: Events one notification carries at most.
BATCH = 100
#: A follower's socket buffer in superd: it waits for its reader beyond this.
WRITE_HIGH = 16 << 10
#: How long a dropped follower's last notice may take to leave.
FAREWELL_WAIT = 1.0

_HEAD = b'{"jsonrpc":"2.0","method":"events","params":{"events":['
_TAIL = b"]}}\n"


def _encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), default=str).encode()


class Events:
    """The event stream of one supervisor."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        # Recent events, each encoded when first wanted (a follower, a late reader):
        # [event, its JSON or None].
        self.ring: deque[list] = deque(maxlen=RING_SIZE)
        self.serial = 0
        self.subscribers: list[Callable[[dict], None]] = []
        self.followers: set[EventFollower] = set()
        self._tasks: dict[asyncio.Task, Any] = {}
        self._pids: dict[str, int] = {}         # instance -> its last pid (an exit's pid)
        self._ready: dict[str, bool] = {}      # instance -> ready when last told

    # -- emitting ------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> dict:
        self.serial += 1
        event = {"serial": self.serial, "time": round(self.wall(), 3), "type": kind, "name": None, "group": None,
                 "from_state": None, "to_state": None, "pid": None, "exitstatus": None, "reason": None}
        event.update(fields)
        entry = [event, None]
        self.ring.append(entry)
        if self.followers:
            data = entry[1] = _encode(event)
            for follower in list(self.followers):
                follower.offer(event, data)
        for subscriber in list(self.subscribers):
            try:
                subscriber(event)
            except Exception:  # a bug in one subscriber must not stop the others
                log.exception("event subscriber failed on %s", event.get("type"))
        return event

    def process_changed(self, process, old) -> dict:
        """``process`` went from state ``old`` to its current state."""
        name = process.name
        if process.pid is not None:
            self._pids[name] = process.pid
        to = process.state.value
        expected = None
        if to == "exited" and process.exitstatus is not None:
            expected = process.exitstatus in process.config.program.exitcodes
        self._ready[name] = process.ready
        return self.emit("process", name=name, group=process.group, from_state=old.value, to_state=to,
                         pid=process.pid if process.pid is not None else self._pids.get(name),
                         exitstatus=process.exitstatus if to in ("exited", "stopped", "backoff", "fatal") else None,
                         expected=expected, reason=process.reason, tries=process.attempts)

    def process_noted(self, process) -> None:
        """What the process does changed without a new state: it may have become (not) ready."""
        name, ready = process.name, process.ready
        was = self._ready.get(name, False)
        self._ready[name] = ready
        if ready != was:
            self.emit("ready", name=name, group=process.group, from_state=_readiness(was),
                      to_state=_readiness(ready), pid=process.pid, reason=process.reason, ready=ready,
                      state=process.state.value)

    def health_changed(self, process, old: str, why: str) -> dict:
        """The process's ``alive`` check made it healthy or unhealthy (from ``old``)."""
        return self.emit("health", name=process.name, group=process.group, from_state=old,
                         to_state=process.health.state, pid=process.pid, reason=why, state=process.state.value)

    def daemon_changed(self, old, new) -> dict:
        return self.emit("daemon", from_state=old.value, to_state=new.value, reason=f"superd {new.value}")

    def reloaded(self, result: dict, groups_added: Iterable[str] = (), groups_removed: Iterable[str] = ()) -> dict:
        parts = [f"{key} {', '.join(result.get(key) or ()) or 'none'}" for key in ("added", "changed", "removed")]
        if result.get("regrouped"):  # moved to another group, still running
            parts.append(f"regrouped {', '.join(result['regrouped'])}")
        return self.emit("reload", reason="reload: " + "; ".join(parts), added=list(result.get("added") or ()),
                         changed=list(result.get("changed") or ()), removed=list(result.get("removed") or ()),
                         regrouped=list(result.get("regrouped") or ()),
                         groups_added=sorted(groups_added), groups_removed=sorted(groups_removed))

    def forget(self, name: str) -> None:
        self._pids.pop(name, None)
        self._ready.pop(name, None)

    # -- reading -------------------------------------------------------------

    def recent(self, match: Callable[[dict], bool], since: Optional[float] = None) -> list[dict]:
        return [e for e, _ in self.ring if match(e) and (since is None or e["time"] > since)]

    def recent_encoded(self, match: Callable[[dict], bool], after: Optional[int] = None) -> list[bytes]:
        """The JSON of the recent events ``match`` accepts, past serial ``after``."""
        found = []
        for entry in self.ring:
            event = entry[0]
            if match(event) and (after is None or event["serial"] > after):
                if entry[1] is None:
                    entry[1] = _encode(event)
                found.append(entry[1])
        return found

    def can_follow(self) -> bool:
        return len(self._tasks) < MAX_FOLLOWERS

    def follow(self, writer, match: Callable[[dict], bool], timeout: float) -> "EventFollower":
        """From now on, events ``match`` accepts go to ``writer`` as ``events``
        notifications, after the response of the request being handled."""
        follower = EventFollower(self, writer, match, timeout)
        self.followers.add(follower)
        task = asyncio.ensure_future(follower.run(asyncio.current_task()))
        self._tasks[task] = writer
        task.add_done_callback(self._followed)
        return follower

    def attach(self, follower: "EventFollower") -> None:
        """Offer ``follower`` the events from now on; its own transport runs it
        (``follower.run()``) and stands for its limit."""
        self.followers.add(follower)

    def _followed(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("event follower failed: %r", task.exception())

    def is_following(self, writer) -> bool:
        return writer in self._tasks.values()

    @property
    def following(self) -> int:
        return len(self._tasks)

    def close(self) -> None:
        for follower in list(self.followers):
            follower.end()
        for task in list(self._tasks):
            task.cancel()


def _readiness(ready: bool) -> str:
    return "ready" if ready else "not ready"


def matcher(names: Optional[Iterable[str]], processes: Iterable[Any] = ()) -> Callable[[dict], bool]:
    """Which events a follower asked for: all, or those of the named processes
    (by instance or program name, and those that share them after a reload)."""
    if not names:
        return lambda event: True
    wanted = set(names)
    for process in processes:
        wanted.add(process.name)
    groups = {n.rstrip("*")[:-1] for n in wanted if n.endswith((":*", ":"))} | \
        {n[6:] for n in wanted if n.startswith("group:")}

    def match(event: dict) -> bool:
        return event.get("name") in wanted or event.get("group") in wanted or event.get("group") in groups

    return match


class EventFollower:
    """Sends matching events to one control connection."""

    def __init__(self, events: Events, writer, match: Callable[[dict], bool], timeout: float) -> None:
        self.events = events
        self.writer = writer
        self.match = match
        self.timeout = timeout
        self.queue: deque[bytes] = deque()
        self.farewell: Optional[bytes] = None
        self.ended = False
        self.dropped = False
        self._wakeup: Optional[asyncio.Future] = None

    def offer(self, event: dict, data: bytes) -> None:
        if self.ended or not self.match(event):
            return
        if len(self.queue) >= FOLLOWER_QUEUE:
            self.drop(f"this reader fell more than {FOLLOWER_QUEUE} events behind")
            return
        self.queue.append(data)
        self._wake()

    def drop(self, why: str) -> None:
        if self.ended:
            return
        log.info("dropping an event follower: %s", why)
        self.queue.clear()
        notice = {"serial": self.events.serial, "time": round(self.events.wall(), 3), "type": "dropped",
                  "name": None, "group": None, "from_state": None, "to_state": None, "pid": None,
                  "exitstatus": None, "reason": f"superd dropped this follower: {why}"}
        self.farewell = _encode(notice)
        self.dropped = True
        self.end()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def frame(self, batch: list[bytes]) -> bytes:
        """What the connection is sent for ``batch`` (events encoded to JSON):
        one ``events`` notification; other transports frame them their way."""
        return _HEAD + b",".join(batch) + _TAIL

    async def run(self, request: Optional[asyncio.Future] = None) -> None:
        loop = asyncio.get_running_loop()
        writer = self.writer
        closed = asyncio.ensure_future(writer.wait_closed())
        closed.add_done_callback(self._closed)
        try:
            writer.transport.set_write_buffer_limits(high=WRITE_HIGH)
            if request is not None and not request.done():
                await asyncio.wait({request})  # the response goes first
            await asyncio.sleep(0)
            while True:
                if self.ended and self.farewell is None:
                    break
                if not self.queue and not self.ended:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                if self.queue:
                    batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                else:
                    batch, self.farewell = [self.farewell], None
                if writer.is_closing():
                    break
                writer.write(self.frame(batch))
                wait = FAREWELL_WAIT if self.dropped else self.timeout
                try:
                    await asyncio.wait_for(writer.drain(), wait)
                except asyncio.TimeoutError:
                    if not self.dropped:
                        self.dropped = True
                        log.info("dropping an event follower: it took nothing for %gs", wait)
                    writer.transport.abort()
                    break
            if self.dropped and not writer.is_closing():
                writer.close()
        except (ConnectionError, OSError):
            pass
        finally:
            self.ended = True
            self.events.followers.discard(self)
            closed.cancel()

    def _closed(self, task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()
        self.end()
