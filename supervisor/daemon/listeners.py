"""supervisord's event listener protocol, unchanged, for programs with ``events = [...]``.

A listener reads events on its stdin and answers on its stdout: it writes
``READY\\n``; superd sends one event, a header line
``ver:3.0 server:supervisor serial:S pool:P poolserial:N eventname:E len:L``
and L bytes of payload in supervisord's format; the listener answers
``RESULT 2\\nOK`` (done) or ``RESULT 4\\nFAIL`` (rejected: the event is sent
again), then ``READY\\n`` for the next one. Anything else puts it in the
UNKNOWN state, where it gets no more events. The instances of a program
(``numprocs``) form one pool: an event goes to one ready listener of it.
Each pool buffers at most ``buffer_size`` events; the oldest is dropped (with
a log line) to make room. superd's events (:mod:`.events`) become
supervisord's here; ``TICK_*`` events come from timers that exist only while
a pool wants them.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections import deque
from typing import Optional

log = logging.getLogger("superd")

READY_TOKEN = b"READY\n"
RESULT_START = b"RESULT "
TICK_PERIODS = {"TICK_5": 5, "TICK_60": 60, "TICK_3600": 3600}
MAX_SERIAL = (1 << 63) - 1

#: What each event type a listener can name also takes in.
_PARENTS = {"PROCESS_STATE": "EVENT", "SUPERVISOR_STATE_CHANGE": "EVENT", "TICK": "EVENT", "PROCESS_GROUP": "EVENT"}


def kinds(event_name: str) -> set[str]:
    """The subscription names that receive ``event_name`` (itself, its type, EVENT)."""
    names = {event_name, "EVENT"}
    for parent in _PARENTS:
        if event_name.startswith(parent + "_"):
            names.add(parent)
    return names


def translate(event: dict) -> list[tuple[str, str]]:
    """superd's event as supervisord's: [(event name, payload)]."""
    kind = event.get("type")
    if kind == "process":
        to, frm = event["to_state"].upper(), (event.get("from_state") or "stopped").upper()
        payload = f"processname:{event['name']} groupname:{event['group']} from_state:{frm}"
        pid = event.get("pid") or 0
        if to in ("STARTING", "BACKOFF"):
            payload += f" tries:{int(event.get('tries') or 0)}"
        elif to == "EXITED":
            payload += f" expected:{int(bool(event.get('expected')))} pid:{pid}"
        elif to in ("RUNNING", "STOPPING", "STOPPED"):
            payload += f" pid:{pid}"
        return [(f"PROCESS_STATE_{to}", payload)]
    if kind == "daemon":
        if event.get("to_state") == "running" and event.get("from_state") == "starting":
            return [("SUPERVISOR_STATE_CHANGE_RUNNING", "")]
        if event.get("to_state") == "shutting_down":
            return [("SUPERVISOR_STATE_CHANGE_STOPPING", "")]
    if kind == "reload":
        return ([("PROCESS_GROUP_ADDED", f"groupname:{g}\n") for g in event.get("groups_added") or ()]
                + [("PROCESS_GROUP_REMOVED", f"groupname:{g}\n") for g in event.get("groups_removed") or ()])
    if kind == "tick":
        return [(event["name"], f"when:{event['when']}")]
    return []


class Envelope:
    """One supervisord event, with its serials (kept when it is sent again)."""

    __slots__ = ("name", "payload", "serial", "pool_serial")

    def __init__(self, name: str, payload: bytes, serial: int) -> None:
        self.name, self.payload, self.serial, self.pool_serial = name, payload, serial, -1

    def header(self, pool: str) -> bytes:
        return (f"ver:3.0 server:supervisor serial:{self.serial} pool:{pool} poolserial:{self.pool_serial} "
                f"eventname:{self.name} len:{len(self.payload)}\n").encode() + self.payload


class Channel:
    """The pipes of one listener process: its stdin (events) and stdout (answers)."""

    def __init__(self, pool: "Pool", process) -> None:
        self.pool, self.process = pool, process
        self.state = "ACKNOWLEDGED"
        self.event: Optional[Envelope] = None
        self.buffer = b""
        self.result_len: Optional[int] = None
        self.result = b""
        self.pending = b""  # what its stdin has not taken yet
        self.closed = False
        self._in_child, self._in = os.pipe2(os.O_CLOEXEC)
        self._out, self._out_child = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self.stdin, self.stdout = self._in_child, self._out_child  # for Popen

    def started(self) -> None:
        for fd in (self._in_child, self._out_child):
            os.close(fd)
        self.pool.loop.add_reader(self._out, self._readable)

    def abort(self) -> None:
        for fd in (self._in_child, self._out_child):
            os.close(fd)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self.pool.loop
        loop.remove_reader(self._out)
        if self.pending:
            loop.remove_writer(self._in)
        for fd in (self._in, self._out):
            os.close(fd)
        if self.pool.channels.get(self.process.name) is self:
            del self.pool.channels[self.process.name]
        if self.event is not None:  # it died with an event: someone else gets it
            log.warning("%s: event listener ended while handling event %d; it is sent again",
                        self.process.name, self.event.serial)
            self.pool.accept(self.event, head=True)
            self.event = None
        self.pool.dispatch()

    # -- sending

    def send(self, envelope: Envelope) -> None:
        self.state, self.event = "BUSY", envelope
        self._write(envelope.header(self.pool.name))

    def _write(self, data: bytes) -> None:
        data = self.pending + data
        try:
            done = os.write(self._in, data)
        except BlockingIOError:
            done = 0
        except OSError:  # EPIPE: it is going away; its exit rebuffers the event
            self.pending = b""
            return
        rest = data[done:]
        if rest and not self.pending:
            self.pool.loop.add_writer(self._in, self._writable)
        elif not rest and self.pending:
            self.pool.loop.remove_writer(self._in)
        self.pending = rest

    def _writable(self) -> None:
        if not self.closed:
            self._write(b"")

    # -- answers

    def _readable(self) -> None:
        try:
            data = os.read(self._out, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.buffer += data
        self._advance()
        self.pool.dispatch()

    def _unknown(self, why: str) -> None:
        log.warning("%s: %s; it entered the UNKNOWN state and will no longer receive events "
                    "(it violated the event listener protocol)", self.process.name, why)
        self.state, self.buffer = "UNKNOWN", b""
        if self.event is not None:
            self.pool.accept(self.event, head=True)
            self.event = None

    def _advance(self) -> None:
        while self.buffer:
            if self.state == "UNKNOWN":
                self.buffer = b""
                return
            if self.state == "ACKNOWLEDGED":
                if len(self.buffer) < len(READY_TOKEN):
                    return
                if not self.buffer.startswith(READY_TOKEN):
                    self._unknown(f"wrote {self.buffer[:40]!r} instead of READY")
                    return
                self.buffer = self.buffer[len(READY_TOKEN):]
                self.state = "READY"
            elif self.state == "READY":
                self._unknown(f"wrote {self.buffer[:40]!r} while it had no event")
                return
            elif self.result_len is None:
                end = self.buffer.find(b"\n")
                if end < 0:
                    return
                line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
                try:
                    if not line.startswith(RESULT_START):
                        raise ValueError
                    self.result_len = int(line[len(RESULT_START):])
                except ValueError:
                    self._unknown(f"bad result line {line[:80]!r}")
                    return
            else:
                need = self.result_len - len(self.result)
                self.result += self.buffer[:need]
                self.buffer = self.buffer[need:]
                if len(self.result) == self.result_len:
                    self._handled(self.result)

    def _handled(self, result: bytes) -> None:
        event, self.event = self.event, None
        self.result, self.result_len = b"", None
        self.state = "ACKNOWLEDGED"
        if result != b"OK" and event is not None:
            log.warning("%s: event %d was rejected (%s); it is sent again", self.process.name, event.serial,
                        result[:80].decode("utf-8", "replace"))
            self.pool.accept(event, head=True)


class Pool:
    """The instances of one listener program."""

    def __init__(self, name: str, loop) -> None:
        self.name, self.loop = name, loop
        self.events: frozenset[str] = frozenset()
        self.size = 10
        self.buffer: deque[Envelope] = deque()
        self.serial = -1
        self.channels: dict[str, Channel] = {}

    def accept(self, envelope: Envelope, head: bool = False) -> None:
        if envelope.pool_serial < 0:
            self.serial = 0 if self.serial >= MAX_SERIAL else self.serial + 1
            envelope.pool_serial = self.serial
        if len(self.buffer) >= self.size:
            gone = self.buffer.popleft()
            log.error("pool %s event buffer overflowed, discarding event %d", self.name, gone.serial)
        if head:
            self.buffer.appendleft(envelope)
        else:
            self.buffer.append(envelope)

    def dispatch(self) -> None:
        while self.buffer:
            ready = next((c for c in self.channels.values()
                          if c.state == "READY" and not c.closed and c.process.state.value == "running"), None)
            if ready is None:
                return
            ready.send(self.buffer.popleft())


class Listeners:
    """Every event listener pool of one supervisor; an event subscriber."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self.pools: dict[str, Pool] = {}
        self.serial = -1
        self._ticks: dict[int, object] = {}

    def channel(self, process) -> Channel:
        """The pipes of a listener about to be spawned (see ProcessRuntime.spawn)."""
        program = process.config.program
        pool = self.pools.get(process.group)
        if pool is None:
            pool = self.pools[process.group] = Pool(process.group, self.sv.loop)
        pool.events, pool.size = frozenset(program.events), program.buffer_size
        old = pool.channels.pop(process.name, None)
        if old is not None:
            old.close()
        channel = pool.channels[process.name] = Channel(pool, process)
        self._arm_ticks()
        return channel

    def stdio(self, process, capture) -> tuple:
        """(stdin, stdout, channel) for Popen: a listener's pipes, or the usual ones."""
        if not process.config.program.events or self.sv.single:
            return (None if self.sv.single else subprocess.DEVNULL), capture.stdout, None
        channel = self.channel(process)
        return channel.stdin, channel.stdout, channel

    def on_event(self, event: dict) -> None:
        if not self.pools and event.get("type") != "reload":
            return  # no listener configured: nothing to translate
        for name, payload in translate(event):
            wanted = kinds(name)
            envelope = None
            for pool in self.pools.values():
                if pool.events & wanted:
                    if envelope is None:
                        self.serial = 0 if self.serial >= MAX_SERIAL else self.serial + 1
                        envelope = Envelope(name, payload.encode(), self.serial)
                    pool.accept(Envelope(name, envelope.payload, envelope.serial))
        for pool in self.pools.values():  # a listener that just became RUNNING may take one
            pool.dispatch()
        if event.get("type") == "reload":
            live = {p.group for p in self.sv.processes.values() if p.config.program.events}
            for name in [n for n in self.pools if n not in live]:
                del self.pools[name]
            self._arm_ticks()

    # -- TICK_5, TICK_60, TICK_3600: timers only while a pool wants them

    def _arm_ticks(self) -> None:
        wanted = set()
        for pool in self.pools.values():
            for name, period in TICK_PERIODS.items():
                if pool.events & {"EVENT", "TICK", name}:
                    wanted.add(period)
        for period in [p for p in self._ticks if p not in wanted]:
            self._ticks.pop(period).cancel()  # type: ignore[attr-defined]
        for period in wanted - set(self._ticks):
            self._schedule(period)

    def _schedule(self, period: int) -> None:
        now = self.sv.runtime.wall()
        delay = period - (now % period)
        self._ticks[period] = self.sv.loop.call_later(delay + 0.001, self._tick, period)

    def _tick(self, period: int) -> None:
        self._ticks.pop(period, None)
        now = self.sv.runtime.wall()
        self.on_event({"type": "tick", "name": f"TICK_{period}", "when": int(now - now % period)})
        self._schedule(period)

    def close(self) -> None:
        for handle in self._ticks.values():
            handle.cancel()  # type: ignore[attr-defined]
        self._ticks.clear()
