"""``[http]`` streaming and the dashboard's API, over plain HTTP (no browser).

supervisord's ``/logtail`` and ``/mainlogtail``, the JSON API under ``/api/``
(status, actions, refusal of cross-site actions, credentials), Server-Sent
Events of output and events, and clients that stall, read slowly, hang up or
come too many at once: superd drops or bounds them and keeps serving.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

import pytest

from tests.conftest import wait_until
from tests.system.test_http import PROGRAMS, auth, proxy, request, rss_kb, start, still_serving

pytestmark = pytest.mark.timeout(90)

POKED = """
[program.poked]
command = ["sh", "-c", "i=0; trap 'i=$((i+1)); echo poked $i' USR1; echo poked ready; while :; do sleep 0.05; done"]
startsecs = 0.2
"""


class Stream:
    """One streaming GET on a raw socket: the head, then the body as it comes (chunks decoded)."""

    def __init__(self, handle, path: str, rcvbuf: int = 0, headers: str = "") -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", handle.port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth()}\r\n{headers}\r\n".encode())
        self.raw = b""
        self.body = b""
        self.head = b""

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.raw:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before the head: {self.raw!r}"
            self.raw += chunk
        self.head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = self.head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers

    def _decode(self) -> None:
        while True:
            size_line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]
            if size == 0:
                return

    def read_until(self, predicate, timeout: float = 10.0) -> str:
        """Read until ``predicate(body text)`` holds; the body so far."""
        deadline = time.monotonic() + timeout
        self._decode()  # what came with the head
        while not predicate(self.body.decode(errors="replace")):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; the body so far: {self.body[-2000:]!r}"
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            assert chunk, f"the stream ended; the body: {self.body[-2000:]!r}"
            self.raw += chunk
            self._decode()
        return self.body.decode(errors="replace")

    def close(self) -> None:
        self.sock.close()


def sse_events(body: str) -> list[tuple[str, str]]:
    """(event type, data) of each complete Server-Sent Event in ``body``."""
    found = []
    for block in body.split("\n\n")[:-1]:
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        found.append((kind, "\n".join(data)))
    return found


def post(handle, path: str, headers: dict | None = None, body: bytes = b""):
    status, answer_headers, data = request(handle, "POST", path, body,
                                           {"X-Superd-Request": "1", **(headers or {})})
    return status, json.loads(data) if answer_headers.get("Content-Type") == "application/json" else data


def get_json(handle, path: str):
    status, _, data = request(handle, "GET", path)
    return status, json.loads(data)


@pytest.fixture
def superd(graceful_superd):
    return start(graceful_superd, programs=PROGRAMS + POKED)


# --------------------------------------------------------------------------
# supervisord's /logtail and /mainlogtail


def test_logtail_streams_a_process_output_as_supervisord_does(superd):
    wait_until(lambda: "poked ready" in (superd.dir / "logs" / "poked-stdout.log").read_text(errors="replace")
               if (superd.dir / "logs" / "poked-stdout.log").exists() else False, what="poked's first line")
    tail = Stream(superd, "/logtail/poked")
    try:
        status, headers = tail.read_head()
        assert status == 200 and headers["content-type"] == "text/plain;charset=utf-8"
        assert headers["transfer-encoding"] == "chunked" and headers["x-accel-buffering"] == "no"
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["last-modified"])
        assert "poked ready" in tail.read_until(lambda body: "poked ready" in body)
        os.kill(superd.status("poked")["poked"]["pid"], signal.SIGUSR1)
        tail.read_until(lambda body: "poked 1\n" in body)  # a line printed after the follow began
    finally:
        tail.close()


def test_logtail_channels_names_and_errors(superd):
    for path, expected in (("/logtail/app/stderr", "oops"), ("/logtail/app/stdout", "hello from app"),
                           ("/logtail/worker:worker_1", None), ("/logtail/worker_0/stdout", None)):
        tail = Stream(superd, path)
        try:
            assert tail.read_head()[0] == 200, path
            if expected:
                tail.read_until(lambda body: expected in body)
        finally:
            tail.close()
    assert request(superd, "GET", "/logtail/nope")[0] == 404
    assert request(superd, "GET", "/logtail/app/bogus")[0] == 404
    assert request(superd, "GET", "/logtail/other:app")[0] == 404   # app is not in group "other"
    assert request(superd, "POST", "/logtail/app")[0] == 405
    status, _, body = request(superd, "GET", "/mainlogtail")    # no [superd] log_file: as supervisord
    assert status == 404 and b"log_file" in body
    assert request(superd, "GET", "/logtail/app", headers={"Authorization": ""})[0] == 401
    still_serving(superd)


def test_mainlogtail_streams_superds_own_log(graceful_superd, tmp_path):
    handle = start(graceful_superd, daemon=f'log_file = "{tmp_path / "own.log"}"\n')
    tail = Stream(handle, "/mainlogtail")
    try:
        status, headers = tail.read_head()
        assert status == 200 and headers["content-type"] == "text/plain;charset=utf-8"
        tail.read_until(lambda body: "app: starting -> running" in body)   # what was logged before
        assert post(handle, "/api/stop/app")[0] == 200
        tail.read_until(lambda body: "app: stopping -> stopped" in body)   # logged after the follow began
    finally:
        tail.close()


def test_logtail_of_output_that_goes_nowhere_is_not_found(graceful_superd):
    handle = start(graceful_superd, programs=PROGRAMS + """
[program.quiet]
command = ["sleep", "300"]
stdout = "null"
startsecs = 0
""")
    status, _, body = request(handle, "GET", "/logtail/quiet")
    assert status == 404 and b"/dev/null" in body


# --------------------------------------------------------------------------
# the JSON API


def test_status_lists_every_process_with_its_group(superd):
    status, answer = get_json(superd, "/api/status")
    assert status == 200
    assert answer["superd"]["state"] == "running" and answer["superd"]["pid"] == superd.pid
    processes = {p["name"]: p for p in answer["processes"]}
    assert set(processes) == {"app", "worker_0", "worker_1", "idle", "poked"}
    assert processes["worker_1"]["group"] == "worker" and processes["app"]["state"] == "running"
    for key in ("pid", "uptime", "health", "restarts", "description"):
        assert key in processes["app"]
    assert request(superd, "POST", "/api/status", headers={"X-Superd-Request": "1"})[0] == 405
    assert request(superd, "GET", "/api/nope")[0] == 404


def test_actions_start_stop_restart_by_name_group_and_all(superd):
    status, answer = post(superd, "/api/stop/app")
    assert status == 200 and answer["results"] == [{"name": "app", "ok": True, "state": "stopped", "pid": None,
                                                     "message": "stopped"}]
    assert superd.state_of("app") == "stopped"
    status, answer = post(superd, "/api/start/app")
    assert status == 200 and answer["results"][0]["message"] == "started"
    assert superd.state_of("app") == "running"
    assert post(superd, "/api/start/app")[1]["results"][0]["message"] == "already running"

    old = superd.status("worker")
    status, answer = post(superd, "/api/restart/worker%3A*")
    assert status == 200 and [r["name"] for r in answer["results"]] == ["worker_0", "worker_1"]
    assert all(superd.status("worker")[n]["pid"] != old[n]["pid"] for n in old)

    assert post(superd, "/api/stop/all")[0] == 200
    assert {i["state"] for i in superd.status().values()} == {"stopped"}
    assert post(superd, "/api/start/all")[0] == 200
    assert {i["state"] for i in superd.status().values()} == {"running"}

    status, answer = post(superd, "/api/stop/nope")
    assert status == 404 and answer == {"error": "no such process: nope"}
    assert post(superd, "/api/start/")[0] == 400
    assert request(superd, "GET", "/api/stop/app")[0] == 405
    assert superd.state_of("app") == "running"


def test_a_cross_site_action_is_refused(superd):
    # What a page of another site can make a browser send: a form's POST
    # (no custom header can be added), with the credentials it remembers.
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example",
            "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    status, _, body = request(superd, "POST", "/api/stop/app", b"x=1", form)
    assert status == 403 and b"X-Superd-Request" in body
    # A script of another site that got a custom header through anyway.
    status, answer = post(superd, "/api/stop/all", {"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "cross-site" in answer["error"]
    status, answer = post(superd, "/api/stop/all", {"Sec-Fetch-Site": "same-site"})
    assert status == 403
    assert {i["state"] for i in superd.status().values() if i["name"] != "idle"} == {"running"}
    # The dashboard's own request.
    assert post(superd, "/api/stop/app", {"Sec-Fetch-Site": "same-origin", "Origin": "http://x"})[0] == 200
    assert superd.state_of("app") == "stopped"


def test_credentials_guard_the_page_the_api_and_the_streams(superd):
    for method, path in (("GET", "/"), ("GET", "/dashboard.js"), ("GET", "/api/status"), ("GET", "/api/events"),
                         ("GET", "/api/output/app"), ("POST", "/api/stop/app"), ("GET", "/mainlogtail")):
        status, headers, _ = request(superd, method, path, headers={"Authorization": "Basic b3BzOm5vcGU=",
                                                                   "X-Superd-Request": "1"})
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
    assert superd.state_of("app") == "running"


def test_the_page_and_its_assets(superd):
    status, headers, body = request(superd, "GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="dashboard.js"' in body and b"://" not in body  # nothing external
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
        status, headers, body = request(superd, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert b"http://" not in body and b"https://" not in body
    assert request(superd, "POST", "/", headers={"X-Superd-Request": "1"})[0] == 405


# --------------------------------------------------------------------------
# Server-Sent Events


def test_output_as_server_sent_events(superd):
    view = Stream(superd, "/api/output/poked?stream=stdout&lines=5")
    try:
        status, headers = view.read_head()
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-store"
        view.read_until(lambda body: ("message", "poked ready") in sse_events(body))
        os.kill(superd.status("poked")["poked"]["pid"], signal.SIGUSR1)
        body = view.read_until(lambda body: ("message", "poked 1") in sse_events(body))
        assert body.endswith("\n\n")
    finally:
        view.close()
    stderr = Stream(superd, "/api/output/app?stream=stderr")
    try:
        assert stderr.read_head()[0] == 200
        stderr.read_until(lambda body: ("message", "oops") in sse_events(body))
    finally:
        stderr.close()
    assert get_json(superd, "/api/output/nope")[0] == 404
    status, answer = get_json(superd, "/api/output/app?stream=stdin")
    assert status == 400 and "stdout or stderr" in answer["error"]
    assert get_json(superd, "/api/output/app?lines=many")[0] == 400


def test_events_as_server_sent_events(superd):
    view = Stream(superd, "/api/events")
    try:
        assert view.read_head()[0] == 200
        body = view.read_until(lambda body: len(sse_events(body)) >= 3)  # the recent ones first
        serials = [json.loads(d)["serial"] for _, d in sse_events(body)]
        assert serials == sorted(serials)
        assert post(superd, "/api/stop/app")[0] == 200

        def stopped(body: str) -> bool:
            return any(e["name"] == "app" and e["to_state"] == "stopped"
                       for e in (json.loads(d) for _, d in sse_events(body)))

        view.read_until(stopped)
    finally:
        view.close()
    # Resuming after the last one seen: only what came after it.
    last = serials[-1]
    after = Stream(superd, f"/api/events?after={last}")
    try:
        assert after.read_head()[0] == 200
        body = after.read_until(stopped)
        assert all(json.loads(d)["serial"] > last for _, d in sse_events(body))
    finally:
        after.close()
    workers = Stream(superd, "/api/events?name=worker%3A*")
    try:
        assert workers.read_head()[0] == 200
        body = workers.read_until(lambda body: len(sse_events(body)) >= 2)
        assert {json.loads(d)["group"] for _, d in sse_events(body)} == {"worker"}
    finally:
        workers.close()
    assert get_json(superd, "/api/events?after=x")[0] == 400
    assert get_json(superd, "/api/events?name=nope")[0] == 404


def test_open_streams_end_with_superd(superd):
    events, output = Stream(superd, "/api/events"), Stream(superd, "/logtail/app")
    try:
        assert events.read_head()[0] == 200 and output.read_head()[0] == 200
        assert proxy(superd).supervisor.shutdown() is True
        assert superd.wait_exit(30) == 0
        for stream in (events, output):
            stream.sock.settimeout(10)
            while stream.sock.recv(65536):
                pass  # what was on its way, then the end
    finally:
        events.close()
        output.close()


def test_too_many_streams_are_refused_and_a_hang_up_frees_one_at_once(superd):
    from supervisor.http.streaming import MAX_STREAMS

    streams = []
    try:
        for _ in range(MAX_STREAMS):
            stream = Stream(superd, "/api/events")
            assert stream.read_head()[0] == 200
            streams.append(stream)
        status, _, body = request(superd, "GET", "/api/events")
        assert status == 503 and b"too many streams" in body
        still_serving(superd)
    finally:
        for stream in streams:
            stream.close()

    def one_more() -> bool:
        stream = Stream(superd, "/logtail/app")
        try:
            return stream.read_head()[0] == 200
        finally:
            stream.close()

    wait_until(one_more, timeout=5, what="a stream once the others hung up")


CHATTY = """
[program.chatty]
command = ["sh", "-c", "while :; do seq -f 'line %06g of a program that says a lot' 1 1000; sleep 0.02; done"]
startsecs = 0
stdout_maxbytes = "4MB"
"""


def test_a_stalled_output_reader_is_dropped_and_superd_stays_small(graceful_superd):
    handle = start(graceful_superd, daemon="client_timeout = 2\n", programs=PROGRAMS + CHATTY)
    before = rss_kb(handle.pid)
    stalled = Stream(handle, "/api/output/chatty", rcvbuf=4096)  # and never read again
    try:
        wait_until(lambda: "dropping a tail -f reader of chatty stdout" in handle.log(), timeout=30,
                   what="the stalled reader dropped")
        assert rss_kb(handle.pid) - before < 20_000
        still_serving(handle)
    finally:
        stalled.close()


def test_a_slow_reader_is_told_what_it_skipped(graceful_superd):
    handle = start(graceful_superd, daemon="client_timeout = 30\n", programs=PROGRAMS + CHATTY)
    log = handle.dir / "logs" / "chatty-stdout.log"
    slow = Stream(handle, "/api/output/chatty?lines=1", rcvbuf=4096)
    try:
        assert slow.read_head()[0] == 200
        # It reads nothing while chatty writes far more than superd keeps for its followers.
        wait_until(lambda: log.exists() and log.stat().st_size > 0, what="chatty's log")
        written = log.stat().st_size
        wait_until(lambda: log.stat().st_size > written + (3 << 20) or log.stat().st_size < written,
                   timeout=30, what="chatty to write 3 MB more")
        body = slow.read_until(lambda body: any(kind == "notice" for kind, _ in sse_events(body)), timeout=30)
        notice = next(d for kind, d in sse_events(body) if kind == "notice")
        assert re.fullmatch(r"\[superd: \d+ lines skipped: this reader fell behind\]", notice)
        still_serving(handle)
    finally:
        slow.close()


def test_a_hundred_programs_and_the_dashboard_stay_under_25_mb(graceful_superd):
    programs = "".join(f'\n[program.p{i:03d}]\ncommand = ["sleep", "600"]\nstartsecs = 0\n' for i in range(100))
    handle = start(graceful_superd, programs=PROGRAMS + programs)
    wait_until(lambda: sum(p["state"] == "running" for p in handle.status().values()) == 103, timeout=30,
               what="every program running")
    for path in ("/", "/dashboard.js", "/dashboard.css", "/api/status"):
        assert request(handle, "GET", path)[0] == 200
    events = Stream(handle, "/api/events")
    try:
        assert events.read_head()[0] == 200
        events.read_until(lambda body: len(sse_events(body)) >= 50)
        assert rss_kb(handle.pid) < 25_000
    finally:
        events.close()
