"""A small synchronous client for superd's control socket.

Newline-delimited JSON-RPC 2.0 over a Unix stream socket (see
``supervisor.protocol``). superctl uses it, and so can scripts::

    from supervisor.client import Client, NoSuchName

    with Client("/run/superd.sock") as superd:
        superd.restart(["web"])
        for proc in superd.status():
            print(proc["name"], proc["state"])

This module sits on superctl's fast path: it imports only the standard
library's socket, json, os, sys and time (plus ``supervisor.protocol``, which
holds nothing but constants). A ``Client`` is not thread-safe; use one per thread.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from . import protocol

__all__ = [
    "Client",
    "SuperdError",
    "Unreachable",
    "ProtocolError",
    "ActionFailed",
    "NotInState",
    "NoSuchName",
    "ShuttingDown",
    "CallTimeout",
    "NotAllowed",
    "TooLarge",
    "Busy",
    "InvalidConfig",
    "InvalidParams",
    "MethodNotFound",
    "InternalError",
    "error_from_response",
]


# --------------------------------------------------------------------------
# Errors


class SuperdError(Exception):
    """An error answered by superd (or met on the way to it).

    ``code`` is the JSON-RPC error code (``None`` for errors raised by the
    client itself without an answer, such as ``Unreachable``), ``message``
    the human text and ``data`` whatever structured detail came with it.
    ``exit_code`` is the superctl exit code this error maps to.
    """

    exit_code = protocol.EXIT_FAILED

    def __init__(self, code: int | None, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, data={self.data!r})"


class Unreachable(SuperdError):
    """superd could not be reached: no socket, refused, not allowed by the
    file system, or the connection closed before a reply came."""

    exit_code = protocol.EXIT_UNREACHABLE

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(None, f"cannot reach superd at {path}: {reason}",
                         {"path": path, "reason": reason})
        self.path = path
        self.reason = reason


class ProtocolError(SuperdError):
    """The peer did not speak the protocol (garbage, wrong id, ...)."""


class ActionFailed(SuperdError):
    """The action was tried and failed (spawn error, fatal, ...)."""


class NotInState(SuperdError):
    """``wait``: some process did not reach the asked state in time.
    ``data`` holds the process dicts that are not in the state."""

    exit_code = protocol.EXIT_NOT_IN_STATE


class NoSuchName(SuperdError):
    """A name matches no program, instance or group."""

    exit_code = protocol.EXIT_NO_SUCH_NAME


class ShuttingDown(SuperdError):
    """superd is shutting down and refuses new work."""


class CallTimeout(SuperdError):
    """The action (or, client side, the reply) did not come in time."""


class NotAllowed(SuperdError):
    """superd refuses to talk to this peer."""


class TooLarge(SuperdError):
    """The request line is longer than ``protocol.MAX_LINE``."""


class Busy(SuperdError):
    """superd has too many connections."""


class InvalidConfig(SuperdError):
    """``reload``: the new config is invalid; nothing changed. ``message``
    holds the problems."""


class InvalidParams(SuperdError):
    """The call's parameters were refused (a usage error)."""

    exit_code = protocol.EXIT_USAGE


class MethodNotFound(SuperdError):
    """This superd does not know the method (an older daemon?)."""


class InternalError(SuperdError):
    """superd failed while answering."""


_ERROR_CLASSES: dict[int, type[SuperdError]] = {
    protocol.FAILED: ActionFailed,
    protocol.NOT_IN_STATE: NotInState,
    protocol.NO_SUCH_NAME: NoSuchName,
    protocol.SHUTTING_DOWN: ShuttingDown,
    protocol.TIMEOUT: CallTimeout,
    protocol.NOT_ALLOWED: NotAllowed,
    protocol.TOO_LARGE: TooLarge,
    protocol.BUSY: Busy,
    protocol.INVALID_CONFIG: InvalidConfig,
    protocol.INVALID_PARAMS: InvalidParams,
    protocol.METHOD_NOT_FOUND: MethodNotFound,
    protocol.INTERNAL_ERROR: InternalError,
    protocol.PARSE_ERROR: ProtocolError,
    protocol.INVALID_REQUEST: ProtocolError,
}


def error_from_response(error: object) -> SuperdError:
    """Build the typed exception for a JSON-RPC ``error`` member."""
    if not isinstance(error, dict):
        return ProtocolError(None, f"malformed error object: {error!r}")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"error {code}"
    cls = _ERROR_CLASSES.get(code, SuperdError) if isinstance(code, int) else SuperdError
    exc = cls(code if isinstance(code, int) else None, message, error.get("data"))
    if cls is SuperdError and isinstance(code, int):
        # An unknown application code still maps to an exit code if the
        # protocol table knows it.
        exc.exit_code = protocol.EXIT_FOR_ERROR.get(code, protocol.EXIT_FAILED)
    return exc


# --------------------------------------------------------------------------
# One connection


_RECV_SIZE = 65536
# Replies can be large (status of many processes, tail), but a line this
# long means the peer is not superd.
_MAX_REPLY_LINE = 64 << 20

_EOF = object()


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def _connect(sock: socket.socket, path: str, timeout: float | None) -> None:
    """``sock.connect(path)`` within ``timeout``. A Unix socket with a timeout
    is non-blocking underneath, and its connect fails at once with EAGAIN
    while the listener's backlog is full (a burst of clients): retry that
    until the timeout instead of calling superd unreachable."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                raise socket.timeout("timed out") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class _Connection:
    """A socket, a read buffer and the next request id."""

    def __init__(self, path: str, connect_timeout: float | None, timeout: float | None) -> None:
        self.path = path
        self.timeout = timeout
        self._buf = bytearray()
        self._next_id = 1
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            _connect(sock, path, connect_timeout)
            sock.settimeout(timeout)
        except OSError as exc:
            sock.close()
            raise Unreachable(path, _reason(exc)) from None
        self.sock: socket.socket | None = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- writing

    def send_request(self, method: str, params: dict) -> int:
        if self.sock is None:
            raise Unreachable(self.path, "connection closed")
        req_id = self._next_id
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params:
            request["params"] = params
        try:
            line = json.dumps(request, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise InvalidParams(protocol.INVALID_PARAMS, f"cannot encode parameters: {exc}") from None
        if len(line) > protocol.MAX_LINE:
            raise TooLarge(protocol.TOO_LARGE, f"request is {len(line)} bytes, more than {protocol.MAX_LINE}")
        try:
            self.sock.sendall(line)
        except OSError as exc:
            self.close()
            if isinstance(exc, socket.timeout):
                raise CallTimeout(protocol.TIMEOUT, f"superd did not take the request within {self.timeout} s") from None
            raise Unreachable(self.path, _reason(exc)) from None
        return req_id

    # -- reading

    def read_line(self) -> bytes | object:
        """Return the next line (without its newline), or ``_EOF``."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > _MAX_REPLY_LINE:
                self.close()
                raise ProtocolError(None, f"reply line longer than {_MAX_REPLY_LINE} bytes")
            if self.sock is None:
                return _EOF
            try:
                chunk = self.sock.recv(_RECV_SIZE)
            except socket.timeout:
                self.close()
                raise CallTimeout(protocol.TIMEOUT, f"no reply from superd within {self.timeout} s") from None
            except OSError as exc:
                self.close()
                if self._buf:
                    raise Unreachable(self.path, _reason(exc)) from None
                return _EOF
            if not chunk:
                self.close()
                # A last line without its newline still counts.
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                return _EOF
            self._buf += chunk

    def read_message(self) -> dict | object:
        """Return the next JSON object, or ``_EOF``. Blank lines are skipped."""
        while True:
            line = self.read_line()
            if line is _EOF:
                return _EOF
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.close()
                raise ProtocolError(None, f"superd sent something that is not JSON: {line[:200]!r}") from None
            if not isinstance(msg, dict):
                self.close()
                raise ProtocolError(None, f"superd sent a JSON value that is not an object: {line[:200]!r}")
            return msg

    def read_response(self, req_id: int) -> object:
        """Read until the response to ``req_id``; return its result or raise."""
        while True:
            msg = self.read_message()
            if msg is _EOF:
                raise Unreachable(self.path, "connection closed before a reply")
            if "id" not in msg and "method" in msg:
                continue  # a notification meant for someone else; skip it
            msg_id = msg.get("id")
            if "error" in msg:
                # A parse or request error may come back with a null id.
                if msg_id is None or msg_id == req_id:
                    raise error_from_response(msg["error"])
            elif msg_id == req_id and "result" in msg:
                return msg["result"]
            self.close()
            raise ProtocolError(None, f"unexpected reply to request {req_id}: {json.dumps(msg)[:200]}")

    def drain(self) -> None:
        """Read and discard everything until the peer closes."""
        while self.read_line() is not _EOF:
            pass

    def peer_pid(self) -> int:
        """The pid of the process that listens on the socket, as this
        process's pid namespace sees it (0 when it cannot)."""
        if self.sock is None or not hasattr(socket, "SO_PEERCRED"):
            return 0
        try:
            raw = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        except OSError:
            return 0
        return int.from_bytes(raw[:4], sys.byteorder, signed=True)

    def call(self, method: str, params: dict) -> object:
        return self.read_response(self.send_request(method, params))


# --------------------------------------------------------------------------
# The client


def _names(names: object) -> list[str]:
    if isinstance(names, str):
        return [names]
    return list(names)  # type: ignore[call-overload]


def _opt(params: dict, **more: object) -> dict:
    for key, value in more.items():
        if value is not None:
            params[key] = value
    return params


class Client:
    """A connection to superd's control socket.

    ``path`` is the socket's path. The connection opens on the first call
    (or ``connect()``), and reopens on the next call after it broke.
    ``connect_timeout`` bounds the connect; ``timeout`` bounds each reply
    (``None``, the default, waits as long as superd takes: calls such as
    ``stop`` and ``wait`` legitimately block, and superd enforces their own
    timeouts).
    """

    def __init__(self, path: str, *, connect_timeout: float | None = 5.0, timeout: float | None = None) -> None:
        self.path = os.fspath(path)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._conn: _Connection | None = None

    # -- connection

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<Client {self.path!r} {state}>"

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.sock is not None

    def connect(self) -> Client:
        """Open the connection now (raises ``Unreachable``)."""
        if not self.connected:
            self._conn = _Connection(self.path, self.connect_timeout, self.timeout)
        return self

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> _Connection:
        self.connect()
        assert self._conn is not None
        return self._conn

    # -- generic call

    def call(self, method: str, **params: object) -> object:
        """Call ``method`` with keyword ``params``; return its result or raise
        the typed ``SuperdError``."""
        conn = self._connection()
        try:
            return conn.call(method, params)
        finally:
            if conn.sock is None and self._conn is conn:
                self._conn = None

    # -- methods

    def version(self) -> dict:
        """``{"version", "pid", "python"}`` of the running superd."""
        return self.call("version")  # type: ignore[return-value]

    def state(self) -> dict:
        """``{"state", "pid", "since", "config"}``; state is one of
        ``protocol.DAEMON_STATES``."""
        return self.call("state")  # type: ignore[return-value]

    def status(self, names: list[str] | str | None = None) -> list[dict]:
        """Process dicts, for every process or for ``names``."""
        params = {} if names is None else {"names": _names(names)}
        return self.call("status", **params)  # type: ignore[return-value]

    def start(self, names: list[str] | str, wait: bool = True, timeout: float | None = None) -> list[dict]:
        return self.call("start", **_opt({"names": _names(names), "wait": wait}, timeout=timeout))  # type: ignore[return-value]

    def stop(self, names: list[str] | str, wait: bool = True, timeout: float | None = None) -> list[dict]:
        return self.call("stop", **_opt({"names": _names(names), "wait": wait}, timeout=timeout))  # type: ignore[return-value]

    def restart(self, names: list[str] | str, wait: bool = True, timeout: float | None = None,
                rolling: bool = False) -> list[dict]:
        """Stop, then start. ``rolling``: one at a time, each ready again before the next stops."""
        params = {"names": _names(names), "wait": wait}
        if rolling:
            params["rolling"] = True
        return self.call("restart", **_opt(params, timeout=timeout))  # type: ignore[return-value]

    def signal(self, sig: str | int, names: list[str] | str) -> list[dict]:
        """Send ``sig`` (a name with or without SIG, or a number)."""
        return self.call("signal", names=_names(names), signal=sig)  # type: ignore[return-value]

    def pid(self, name: str | None = None) -> dict:
        """``{"pid": N}`` (superd's) without a name, else
        ``{"pids": [{"name", "pid"}, ...]}``."""
        return self.call("pid", **_opt({}, name=name))  # type: ignore[return-value]

    def reload(self) -> dict:
        """``{"added", "removed", "changed"}``; raises ``InvalidConfig``."""
        return self.call("reload")  # type: ignore[return-value]

    def shutdown(self, wait: bool = True) -> dict:
        """Ask superd to shut down. With ``wait``, return only once superd is
        gone (it closes the connection when it exits). If superd is already
        shutting down, wait for it all the same."""
        conn = self._connection()
        try:
            peer = conn.peer_pid()
            started = _process_start(peer)
            try:
                result = conn.call("shutdown", {})
            except ShuttingDown:
                if not wait:
                    raise
                result = {"already": True}
            if wait:
                try:
                    conn.drain()
                except (CallTimeout, ProtocolError):
                    raise
                except SuperdError:
                    pass
                # superd's socket closes as its process ends; wait for the end
                # itself when the process is visible from here. (It is only
                # when the pid superd reports is the listener's pid as seen
                # here: not through a proxy or from another pid namespace.)
                if isinstance(result, dict) and peer > 0 and result.get("pid") == peer and started:
                    _wait_gone(peer, started, GONE_TIMEOUT)
            return result  # type: ignore[return-value]
        finally:
            if wait or conn.sock is None:
                conn.close()
                if self._conn is conn:
                    self._conn = None

    def wait(self, names: list[str] | str, state: str = "running", timeout: float | None = None) -> list[dict]:
        """Block until every named process is in ``state`` (or, for "ready",
        running and ready); raises
        ``NotInState`` (``data``: the processes that are not) at the timeout."""
        return self.call("wait", **_opt({"names": _names(names), "state": state}, timeout=timeout))  # type: ignore[return-value]

    def tail(self, name: str, stream: str = "stdout", lines: int = 10) -> list[str]:
        """The last ``lines`` lines of a process's log."""
        result = self.call("tail", name=name, stream=stream, lines=lines)
        return _lines_of(result)

    def follow(self, name: str, stream: str = "stdout", lines: int = 10):
        """Iterate over the last ``lines`` lines and then over new lines as
        they come, until the iterator is closed. Uses its own connection,
        so the client stays usable meanwhile. Raises ``Unreachable`` if
        superd goes away."""
        conn = _Connection(self.path, self.connect_timeout, None)
        return _follow(conn, {"name": name, "stream": stream, "lines": lines, "follow": True})

    def names(self) -> list[str]:
        """Every instance, program and ``group:*`` name (for completion)."""
        return self.call("names")  # type: ignore[return-value]


#: After superd closed the connection of ``shutdown``, how long its process
#: may take to end.
GONE_TIMEOUT = 10.0


def _process_start(pid: int) -> str | None:
    """The start time of a live (not zombie) process ``pid``, else None."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _wait_gone(pid: int, started: str, timeout: float) -> None:
    """Wait until the process ``pid`` that started at ``started`` has ended
    (a zombie counts as ended); ``CallTimeout`` if it does not in time."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while _process_start(pid) == started:
        if time.monotonic() >= deadline:
            raise CallTimeout(protocol.TIMEOUT, f"superd (pid {pid}) closed its socket but has not exited after {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _lines_of(payload: object) -> list[str]:
    if isinstance(payload, dict):
        payload = payload.get("lines", [])
    if not isinstance(payload, list):
        raise ProtocolError(None, f"expected lines, got {json.dumps(payload)[:200]}")
    return [line[:-1] if isinstance(line, str) and line.endswith("\n") else str(line) for line in payload]


def _follow(conn: _Connection, params: dict):
    try:
        req_id = conn.send_request("tail", params)
        yield from _lines_of(conn.read_response(req_id))
        while True:
            msg = conn.read_message()
            if msg is _EOF:
                raise Unreachable(conn.path, "superd closed the connection")
            if "error" in msg and msg.get("id") in (None, req_id):
                raise error_from_response(msg["error"])
            if msg.get("method") == "tail":
                params_ = msg.get("params")
                yield from _lines_of(params_ if params_ is not None else [])
            # anything else: not ours, skip it
    finally:
        conn.close()
