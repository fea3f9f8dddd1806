"""The event ring and followers' bounds, and supervisord's payloads (no process spawned)."""

from __future__ import annotations

import pytest

from supervisor.daemon import events as ev
from supervisor.daemon.listeners import Envelope, Pool, kinds, translate

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def test_ring_is_bounded_and_serials_grow():
    bus = ev.Events(lambda: 1000.0)
    for i in range(ev.RING_SIZE + 50):
        bus.emit("daemon", to_state="running")
    recent = bus.recent(lambda e: True)
    assert len(recent) == ev.RING_SIZE
    assert [e["serial"] for e in recent] == list(range(51, ev.RING_SIZE + 51))


def test_a_follower_that_falls_behind_is_dropped_with_a_notice():
    bus = ev.Events(lambda: 1000.0)
    follower = ev.EventFollower(bus, writer=None, match=lambda e: True, timeout=5)
    bus.followers.add(follower)
    for _ in range(ev.FOLLOWER_QUEUE + 1):
        bus.emit("daemon", to_state="running")
    assert follower.dropped and follower.ended and not follower.queue
    assert b'"type":"dropped"' in follower.farewell
    bus.emit("daemon", to_state="running")  # nothing more is kept for it
    assert not follower.queue


def test_matcher_by_name_and_group():
    match = ev.matcher(["web"])
    assert match({"name": "web", "group": "web"}) and match({"name": "web_1", "group": "web"})
    assert not match({"name": "db", "group": "db"}) and not match({"name": None, "group": None})


@pytest.mark.parametrize("event, expected", [
    ({"type": "process", "name": "app", "group": "app", "from_state": "running", "to_state": "exited",
      "pid": 42, "expected": False},
     ("PROCESS_STATE_EXITED", "processname:app groupname:app from_state:RUNNING expected:0 pid:42")),
    ({"type": "process", "name": "app", "group": "app", "from_state": "backoff", "to_state": "starting",
      "pid": None, "tries": 2},
     ("PROCESS_STATE_STARTING", "processname:app groupname:app from_state:BACKOFF tries:2")),
    ({"type": "process", "name": "app", "group": "app", "from_state": "starting", "to_state": "fatal", "pid": None},
     ("PROCESS_STATE_FATAL", "processname:app groupname:app from_state:STARTING")),
    ({"type": "process", "name": "w_1", "group": "w", "from_state": "stopping", "to_state": "stopped", "pid": 7},
     ("PROCESS_STATE_STOPPED", "processname:w_1 groupname:w from_state:STOPPING pid:7")),
    ({"type": "daemon", "from_state": "starting", "to_state": "running"}, ("SUPERVISOR_STATE_CHANGE_RUNNING", "")),
    ({"type": "reload", "groups_added": ["new"]}, ("PROCESS_GROUP_ADDED", "groupname:new\n")),
    ({"type": "tick", "name": "TICK_60", "when": 1200}, ("TICK_60", "when:1200")),
])
def test_supervisord_payloads(event, expected):
    assert translate(event) == [expected]


def test_kinds_and_envelope_header():
    assert kinds("PROCESS_STATE_EXITED") == {"EVENT", "PROCESS_STATE", "PROCESS_STATE_EXITED"}
    assert kinds("TICK_5") == {"EVENT", "TICK", "TICK_5"}
    pool = Pool("mon", loop=None)
    envelope = Envelope("PROCESS_STATE_EXITED", b"processname:a groupname:a from_state:RUNNING expected:0 pid:1", 0)
    pool.accept(envelope)
    assert envelope.header("mon") == (b"ver:3.0 server:supervisor serial:0 pool:mon poolserial:0 "
                                      b"eventname:PROCESS_STATE_EXITED len:61\n"
                                      b"processname:a groupname:a from_state:RUNNING expected:0 pid:1")


def test_pool_buffer_drops_the_oldest():
    pool = Pool("mon", loop=None)
    pool.size = 2
    for serial in range(3):
        pool.accept(Envelope("TICK_5", b"when:0", serial))
    assert [e.serial for e in pool.buffer] == [1, 2]
