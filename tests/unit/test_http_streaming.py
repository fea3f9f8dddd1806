"""The HTTP listener's streaming pieces without a superd: Server-Sent Events
framing, what a follow starts with, the refusal of cross-site actions, names."""

from __future__ import annotations

import types

import pytest

from supervisor.http.api import cross_site
from supervisor.http.logtail import find_process, http_date, last_bytes
from supervisor.http.streaming import OutputFollower, sse, sse_data
from supervisor.output.sinks import NullSink
from supervisor.output.streams import Stream

pytestmark = pytest.mark.timeout(30)


def test_sse_frames_lines_and_names_events():
    assert sse("one") == b"data: one\n\n"
    assert sse("one\ntwo", "notice") == b"event: notice\ndata: one\ndata: two\n\n"
    assert sse("") == b"data: \n\n"
    assert sse_data(b'{"serial":1}') == b'data: {"serial":1}\n\n'


class FakeBody:
    """A body without HTTP framing: the bytes a follower would send, as they are."""

    writer = None

    @staticmethod
    def chunk(data: bytes) -> bytes:
        return data


def followed(events: bool) -> tuple[Stream, OutputFollower]:
    stream = Stream("app", "stdout", NullSink())
    return stream, OutputFollower(stream, FakeBody(), 1.0, events=events)


def test_output_follower_frames_text_and_events():
    stream, text = followed(events=False)
    stream.backlog.append(b"first\nsecond\n")
    assert text._next() == b"first\nsecond\n"
    assert text._next() is None
    text.end("[superd: app is gone]")
    assert text._next() == b"[superd: app is gone]\n"

    stream, events = followed(events=True)
    stream.backlog.append(b"a line\r\nanother\n")
    assert events._next() == b"data: a line\ndata: another\n\n"   # no carriage return: it would end an SSE line
    events.end("[superd: app is gone]")
    assert events._next() == b"event: notice\ndata: [superd: app is gone]\n\n"


def test_a_reader_that_fell_behind_is_told_in_a_notice():
    from supervisor.output.follow import BACKLOG_BYTES

    stream, follower = followed(events=True)
    line = b"x" * 99 + b"\n"
    for _ in range(2 * BACKLOG_BYTES // len(line)):
        stream.backlog.append(line)
    first = follower._next()
    assert first.startswith(b"event: notice\ndata: [superd: ")
    assert b"lines skipped: this reader fell behind]\n\n" in first
    assert b"data: " + b"x" * 99 in first


def test_a_follow_starts_with_the_last_kilobyte_from_a_line_start():
    assert last_bytes([b"a", b"b"]) == b"a\nb\n"
    lines = [b"%04d" % i + b"." * 45 for i in range(100)]   # 50 bytes a line with its newline
    start = last_bytes(lines)
    assert len(start) <= 1024 and start.endswith(lines[-1] + b"\n")
    assert start.startswith(b"0080")                         # whole lines only
    long_line = b"y" * 5000
    assert last_bytes([long_line]) == long_line[-1023:] + b"\n"


def test_http_date_is_rfc_9110s():
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_only_the_dashboards_own_requests_may_act():
    assert "X-Superd-Request" in cross_site({})
    assert "X-Superd-Request" in cross_site({b"content-type": b"application/x-www-form-urlencoded"})
    assert cross_site({b"x-superd-request": b"1"}) is None
    assert cross_site({b"x-superd-request": b"1", b"sec-fetch-site": b"same-origin"}) is None
    assert cross_site({b"x-superd-request": b"1", b"sec-fetch-site": b"none"}) is None
    assert "cross-site" in cross_site({b"x-superd-request": b"1", b"sec-fetch-site": b"cross-site"})
    assert "same-site" in cross_site({b"x-superd-request": b"1", b"sec-fetch-site": b"same-site"})


def test_supervisord_names_find_superds_processes():
    app = types.SimpleNamespace(name="app", group="app")
    worker = types.SimpleNamespace(name="worker_1", group="worker")
    sv = types.SimpleNamespace(processes={"app": app, "worker_1": worker})
    assert find_process(sv, "app") is app
    assert find_process(sv, "app:app") is app
    assert find_process(sv, "worker:worker_1") is worker
    assert find_process(sv, "worker_1") is worker
    assert find_process(sv, "other:worker_1") is None
    assert find_process(sv, "worker:*") is None
    assert find_process(sv, "nope") is None
