"""A fake superd for the client and superctl tests: a thread serving canned
JSON-RPC answers on a Unix socket in a temporary folder; it records every
request it gets. The fixtures ``sockdir``, ``server_factory`` and ``server``
(tests/conftest.py) start it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from pathlib import Path

from supervisor.control import protocol


class RpcError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


CLOSE = object()   # handler result: close the connection without replying


HANDLED = object() # handler result: the handler replied (or not) itself


class Conn:
    """The server side of one connection, as handlers see it."""

    def __init__(self, handler):
        self._handler = handler
        self.closed = threading.Event()

    def send(self, obj):
        data = (obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n")
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_client_closed(self, timeout=20.0):
        """Block until the client closes its end (reads and drops input)."""
        sock = self._handler.connection
        sock.settimeout(timeout)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        self.closed.set()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        fake = self.server.fake
        fake._track(self.connection)
        conn = Conn(self)
        while True:
            try:
                line = self.rfile.readline()
            except OSError:
                return
            if not line:
                return
            req = json.loads(line)
            fake.requests.append(req)
            method = req.get("method")
            params = req.get("params", {})
            handler = fake.handlers.get(method)
            try:
                if handler is None:
                    raise RpcError(protocol.METHOD_NOT_FOUND, f"no method {method}")
                value = handler(params, conn) if callable(handler) else handler
            except RpcError as e:
                conn.send({"jsonrpc": "2.0", "id": req["id"],
                           "error": {"code": e.code, "message": e.message, "data": e.data}})
                continue
            if value is CLOSE:
                return
            if value is HANDLED:
                if conn.closed.is_set():
                    return
                continue
            conn.send({"jsonrpc": "2.0", "id": req["id"], "result": value})


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False


class FakeServer:
    def __init__(self, path):
        self.path = str(path)
        self.requests: list[dict] = []
        self.handlers: dict = {}
        self._socks: list[socket.socket] = []
        self._server = _Server(self.path, _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _track(self, sock):
        self._socks.append(sock)

    def on(self, method, value=None, *, error=None):
        """Answer ``method`` with ``value`` (a value, or a callable
        ``(params, conn) -> value``), or with ``error=(code, message, data)``."""
        if error is not None:
            def raise_error(params, conn, error=error):
                raise RpcError(*error)
            self.handlers[method] = raise_error
        else:
            self.handlers[method] = value
        return self

    def methods(self):
        return [r["method"] for r in self.requests]

    def last(self, method):
        for r in reversed(self.requests):
            if r["method"] == method:
                return r
        raise AssertionError(f"no {method} request among {self.methods()}")

    def stop(self):
        self._server.shutdown()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)


PROCS = [
    {"name": "web", "group": "web", "state": "running", "pid": 123, "exitstatus": None,
     "since": 1700000000.0, "uptime": 62.0, "restarts": 0, "description": "pid 123, uptime 0:01:02"},
    {"name": "worker_10", "group": "worker", "state": "exited", "pid": None, "exitstatus": 3,
     "since": 1700000001.0, "uptime": None, "restarts": 2, "description": "exited with code 3, unexpected"},
    {"name": "db", "group": "db", "state": "starting", "pid": 99, "exitstatus": None,
     "since": 1700000002.0, "uptime": 0.5, "restarts": 0, "description": "pid 99, uptime 0:00:00"},
]


NAMES = ["web", "worker", "worker_10", "db", "worker:*"]


def _status(params, conn):
    names = params.get("names")
    if not names or names == ["all"]:
        return PROCS
    known = {p["name"]: p for p in PROCS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise RpcError(protocol.NO_SUCH_NAME, f"no such process: {unknown[0]}")
    return [known[n] for n in names]


def _action(message):
    def handle(params, conn):
        names = params["names"]
        if "nope" in names:
            raise RpcError(protocol.NO_SUCH_NAME, "no such process: nope")
        return [{"name": n, "ok": n != "broken", "state": "running" if n != "broken" else "fatal",
                 "pid": 5 if n != "broken" else None,
                 "message": message if n != "broken" else
                 "ERROR (spawn error: [Errno 2] No such file or directory: 'nope')"}
                for n in names]
    return handle


def _pid(params, conn):
    if "name" not in params:
        return {"pid": 4242}
    if params["name"] == "worker":
        return {"pids": [{"name": "worker_0", "pid": 7}, {"name": "worker_1", "pid": None}]}
    return {"pids": [{"name": params["name"], "pid": 123}]}


def _wait(params, conn):
    names = params["names"]
    if "db" in names:
        raise RpcError(protocol.NOT_IN_STATE, "timed out: db is not running",
                       [PROCS[2]])
    return [dict(p, state=params.get("state", "running")) for p in PROCS if p["name"] in names]


def default_handlers(fake: FakeServer) -> FakeServer:
    fake.on("version", {"version": "0.1.0", "pid": 4242, "python": "3.11.7"})
    fake.on("state", {"state": "running", "pid": 4242, "since": 1700000000.0, "config": None})
    fake.on("status", _status)
    fake.on("names", NAMES)
    fake.on("start", _action("started"))
    fake.on("stop", _action("stopped"))
    fake.on("restart", _action("restarted"))
    fake.on("signal", _action("signalled"))
    fake.on("pid", _pid)
    fake.on("reload", {"added": ["new"], "removed": ["old"], "changed": []})
    fake.on("wait", _wait)
    fake.on("tail", lambda p, c: {"lines": [f"line {i}" for i in range(p.get("lines", 10))]})
    return fake


def follow_handler(state):
    """A ``tail -f`` answer: two old lines, then new ones as notifications; then
    it waits for the client to close (or closes itself, with ``state["close"]``)."""
    def tail(params, conn):
        req_id = state["server"].requests[-1]["id"]
        conn.send({"jsonrpc": "2.0", "id": req_id, "result": {"lines": ["old 1", "old 2\n"]}})
        conn.notify("tail", {"lines": ["new 1"]})
        conn.notify("other", {"x": 1})
        conn.notify("tail", {"lines": ["new 2", "new 3"]})
        if state.get("close"):
            return CLOSE
        conn.wait_client_closed()
        state["client_closed"] = True
        return HANDLED
    return tail


def config_file(dirpath: Path, socket_path: str, name="superd.toml") -> Path:
    """A config file that names ``socket_path`` as superd's socket."""
    cfg = dirpath / name
    cfg.write_text(f'[superd]\nsocket = "{socket_path}"\n\n[program.web]\ncommand = ["true"]\n')
    return cfg
