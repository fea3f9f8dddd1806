"""Hostile and broken clients against a live superd's control socket.

Garbage, oversized lines, floods of idle or stalled connections, peers that
never read. After each: superd is alive, and ``status`` answers correctly
within a second. Peers that are not allowed (SO_PEERCRED, as another user) are
in tests/privileged/test_control_peers.py.
"""

from __future__ import annotations

import json
import random
import select
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import script, wait_until
from supervisor.control import protocol
from supervisor.client import Client

pytestmark = pytest.mark.timeout(60)

SLEEPER = """
import time
time.sleep(1000)
"""

PARSE, INVALID, NO_METHOD, BAD_PARAMS = (protocol.PARSE_ERROR, protocol.INVALID_REQUEST,
                                        protocol.METHOD_NOT_FOUND, protocol.INVALID_PARAMS)


@pytest.fixture
def superd(graceful_superd, tmp_path):
    """Start superd with two running programs; ends it gracefully afterwards."""
    prog = script(tmp_path, "sleeper.py", SLEEPER)

    def start(daemon: str = ""):
        d = graceful_superd(f"""
            [program.alpha]
            command = ["{prog}"]
            startsecs = 0
            [program.beta]
            command = ["{prog}"]
            startsecs = 0
        """, daemon=daemon)
        d.wait_state("alpha", "running")
        d.wait_state("beta", "running")
        d.pids = {name: p["pid"] for name, p in d.status().items()}
        return d

    return start


def assert_healthy(d) -> None:
    """superd is alive and ``status`` answers, correctly, within a second."""
    assert d.proc.poll() is None, f"superd died:\n{d.log()}"
    began = time.monotonic()
    with Client(str(d.socket), connect_timeout=1.0, timeout=1.0) as client:
        procs = client.status()
    took = time.monotonic() - began
    assert took < 1.0, f"status took {took:.2f}s"
    assert {p["name"]: (p["state"], p["pid"]) for p in procs} == {
        name: ("running", pid) for name, pid in d.pids.items()
    }


def served(d) -> int:
    """How many connections superd holds on its control socket now."""
    mine = [c for c in psutil.Process(d.pid).net_connections(kind="unix") if c.laddr == str(d.socket)]
    return len(mine) - 1  # the listening socket


def connect(d, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(d.socket))  # blocking: waits for room in the backlog, if it must
    s.settimeout(timeout)
    return s


class Lines:
    """Reads newline-delimited replies from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> bytes | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def rpc(method, params=None, rid=1, version="2.0") -> bytes:
    request = {"jsonrpc": version, "id": rid, "method": method}
    if params is not None:
        request["params"] = params
    return json.dumps(request).encode()


def garbage(n: int, rng: random.Random) -> tuple[bytes, object, int]:
    """The n-th garbage line: (line, expected id, expected error code)."""
    kind = n % 10
    rid = n + 1
    if kind == 0:  # random bytes, never valid JSON (it opens with a stray '}')
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b" ")
        return b"}" + raw, None, PARSE
    if kind == 1:  # broken JSON text
        return rng.choice([
            b'{"jsonrpc": "2.0", "method": "status"', b"{'jsonrpc': '2.0'}", b"nul", b"[1, 2", b'{"a": }',
            b'{"jsonrpc":"2.0","id":1,"method":"status",}', b"NaN", b'{"id": Infinity}', b"\xff\xfe\xfd",
            b"[" * 5000, b'"unterminated',
        ]), None, PARSE
    if kind == 2:  # JSON that is not an object
        return rng.choice([b"1", b'"status"', b"null", b"true", b"[]", b"3.5", b"{}"]), None, INVALID
    if kind == 3:  # wrong or missing jsonrpc version
        version = rng.choice(["1.0", "2", 2.0, None, ""])
        return rpc("status", rid=rid, version=version), rid, INVALID
    if kind == 4:  # method of the wrong type, or missing
        return json.dumps({"jsonrpc": "2.0", "id": rid, "method": rng.choice([5, None, [], {}])}).encode(), rid, INVALID
    if kind == 5:  # unknown methods, including names of the server's own attributes
        return rpc(rng.choice(["nope", "close", "_serve", "__init__", "rpc_status", "STATUS", "start ", ""]), rid=rid), rid, NO_METHOD
    if kind == 6:  # bad params types
        return rpc(*rng.choice([
            ("status", {"names": 5}), ("status", {"names": [1, 2]}), ("status", {"names": [""]}),
            ("start", {"names": []}), ("stop", {}), ("stop", {"names": ["alpha"], "wait": "yes"}),
            ("stop", {"names": ["alpha"], "timeout": -1}), ("wait", {"names": ["alpha"], "state": "asleep"}),
            ("wait", {"names": ["alpha"], "timeout": "soon"}), ("signal", {"names": ["alpha"], "signal": "BOGUS"}),
            ("signal", {"names": ["alpha"], "signal": 999}), ("signal", {"names": ["alpha"]}),
            ("pid", {"name": 5}), ("status", {"bogus": 1}), ("version", {"x": 1}), ("restart", {"names": "alpha", "wait": 1}),
        ]), rid=rid), rid, BAD_PARAMS
    if kind == 7:  # params that are not an object
        return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "status",
                           "params": rng.choice([[1], "x", 5, True])}).encode(), rid, BAD_PARAMS
    if kind == 8:  # ids that are not allowed
        return json.dumps({"jsonrpc": "2.0", "id": rng.choice([[1], {"a": 1}, True]), "method": "status"}).encode(), None, INVALID
    # kind 9: a batch of garbage: an array of errors comes back
    return b'[{"jsonrpc":"2.0","id":%d,"method":"nope"}, 5]' % rid, rid, NO_METHOD


def test_a_thousand_garbage_lines_get_the_proper_errors(superd):
    d = superd()
    rng = random.Random(4)
    s = connect(d)
    lines = Lines(s)
    try:
        for start in range(0, 1000, 50):
            batch = [garbage(n, rng) for n in range(start, start + 50)]
            s.sendall(b"".join(line + b"\n" for line, _, _ in batch))  # pipelined
            for line, rid, code in batch:
                reply = lines.next()
                assert reply is not None, f"connection closed after {line[:80]!r}"
                answer = json.loads(reply)
                if isinstance(answer, list):  # the batch
                    assert [a["error"]["code"] for a in answer] == [NO_METHOD, INVALID], answer
                    assert answer[0]["id"] == rid
                    continue
                assert answer["jsonrpc"] == "2.0"
                assert "result" not in answer, (line[:80], answer)
                assert answer["error"]["code"] == code, (line[:80], answer)
                assert answer["id"] == rid, (line[:80], answer)
                assert isinstance(answer["error"]["message"], str)
        # The same connection still serves real requests.
        s.sendall(rpc("status", rid="last") + b"\n")
        answer = json.loads(lines.next())
        assert answer["id"] == "last" and {p["name"] for p in answer["result"]} == {"alpha", "beta"}
    finally:
        s.close()
    assert_healthy(d)
    # Nothing of it reached the programs.
    assert all(p["restarts"] == 0 for p in d.status().values())


def test_notifications_get_no_answer_even_when_wrong(superd):
    d = superd()
    with connect(d) as s:
        lines = Lines(s)
        s.sendall(b'{"jsonrpc":"2.0","method":"nope"}\n{"jsonrpc":"2.0","method":"status","params":5}\n'
                  + rpc("version", rid=7) + b"\n")
        assert json.loads(lines.next())["id"] == 7
    assert_healthy(d)


def rss(d) -> int:
    return psutil.Process(d.pid).memory_info().rss


@pytest.mark.parametrize("newline", [False, True])
def test_a_20_mb_line_is_refused_and_memory_stays_flat(superd, newline):
    d = superd()
    assert_healthy(d)
    before = rss(d)
    chunk = b"x" * (1 << 20)
    for _ in range(3):
        s = connect(d, timeout=10)
        try:
            sent = 0
            try:
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"names":["')
                for _ in range(20):
                    s.sendall(chunk)
                    sent += len(chunk)
                if newline:
                    s.sendall(b'"]}}\n')
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed while we were still sending: fine
            reply = Lines(s).next()
            if reply is not None:  # an answer, if any, is the TOO_LARGE error
                answer = json.loads(reply)
                assert answer["error"]["code"] == protocol.TOO_LARGE, answer
            # Either way superd closed the connection.
            s.settimeout(5)
            try:
                assert s.recv(1) == b""
            except (ConnectionResetError, BrokenPipeError):
                pass
        finally:
            s.close()
        assert_healthy(d)
    grew = rss(d) - before
    assert grew < 30 << 20, f"superd's RSS grew by {grew / (1 << 20):.1f} MB"


def test_300_idle_connections_do_not_slow_status(superd):
    d = superd()
    socks = []
    try:
        for n in range(300):
            s = connect(d)
            if n % 3 == 0:
                s.sendall(b'{"jsonrpc":"2.0","id":1,"me')  # half a request, then nothing
            socks.append(s)
        wait_until(lambda: served(d) == 300, what="superd to accept them all")
        assert_healthy(d)
        # And superctl (a new process) gets its answer as well.
        r = subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "status"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: served(d) == 0, what="superd to close them")
    assert_healthy(d)


def test_stalled_half_requests_do_not_block_others_and_are_closed(superd):
    d = superd(daemon="client_timeout = 1")
    stalled = connect(d)
    silent = connect(d)
    try:
        stalled.sendall(b'{"jsonrpc":"2.0","id":1,"method":"sta')
        began = time.monotonic()
        assert_healthy(d)  # while both hang there
        # superd closes both once client_timeout has passed.
        for s in (stalled, silent):
            s.settimeout(10)
            assert Lines(s).next() is None
        took = time.monotonic() - began
        assert 0.5 <= took < 5, took
    finally:
        stalled.close()
        silent.close()
    assert_healthy(d)


def test_the_idle_timeout_does_not_cut_a_long_request(superd):
    d = superd(daemon="client_timeout = 0.5")
    with connect(d, timeout=10) as s:
        began = time.monotonic()
        s.sendall(rpc("wait", {"names": ["alpha"], "state": "stopped", "timeout": 1.5}) + b"\n")
        answer = json.loads(Lines(s).next())
        took = time.monotonic() - began
        assert answer["error"]["code"] == protocol.NOT_IN_STATE, answer
        assert 1.4 <= took < 5, took
        assert answer["error"]["data"][0]["name"] == "alpha"
    assert_healthy(d)


def test_a_peer_that_hangs_up_during_wait_frees_its_connection(superd):
    d = superd()
    socks = []
    for _ in range(40):
        s = connect(d)
        s.sendall(rpc("wait", {"names": ["alpha"], "state": "fatal"}) + b"\n")  # never comes
        socks.append(s)
    wait_until(lambda: served(d) == 40, what="the waits to be taken")
    half = socks[:20]
    for s in half:  # half-closed: the peer still waits for its answer
        s.shutdown(socket.SHUT_WR)
    for s in socks[20:]:
        s.close()
    wait_until(lambda: served(d) == 20, what="superd to drop the gone peers")
    for s in half:  # the half-closed ones still wait for their answer: no reply, no EOF
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)
    assert_healthy(d)
    for s in half:
        s.close()
    wait_until(lambda: served(d) == 0, what="superd to drop the rest")
    assert_healthy(d)


def test_a_peer_that_never_reads_is_dropped(superd):
    d = superd(daemon="client_timeout = 1")
    s = connect(d)
    s.setblocking(False)
    request = rpc("status") + b"\n"
    sent = 0
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until superd stops taking requests
            try:
                sent += s.send(request * 100)
            except BlockingIOError:
                if not select.select([], [s], [], 0.2)[1]:
                    break
        assert sent > 0
        assert_healthy(d)
        # Its answers pile up unread: superd gives up on it after client_timeout.
        def closed():
            try:
                s.send(request)
            except BlockingIOError:
                return False
            except (BrokenPipeError, ConnectionResetError):
                return True
            return False
        wait_until(closed, 10, interval=0.05, what="superd to drop the peer that never reads")
    finally:
        s.close()
    assert_healthy(d)


def test_more_than_max_connections_get_busy(superd):
    from supervisor.control import server
    d = superd()
    socks = []
    try:
        for _ in range(server.MAX_CONNECTIONS - 8):
            socks.append(connect(d))
        # Each one is served: ask on the last of them.
        socks[-1].sendall(rpc("state") + b"\n")
        answer = json.loads(Lines(socks[-1]).next())
        assert answer["result"]["state"] == "running", answer
        # Past the limit, connections get BUSY (a JSON-RPC error), then are closed.
        codes = []
        for _ in range(16):
            s = connect(d)
            socks.append(s)
            s.sendall(rpc("state") + b"\n")
            answer = json.loads(Lines(s).next())
            codes.append(answer["error"]["code"] if "error" in answer else answer["result"]["state"])
        assert set(codes) <= {"running", protocol.BUSY} and codes[-1] == protocol.BUSY, codes
        first = codes.index(protocol.BUSY)
        assert codes[first:] == [protocol.BUSY] * (16 - first), codes
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: served(d) == 0, what="superd to close them")
    assert_healthy(d)
