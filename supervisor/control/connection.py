"""One connection to superd's control socket.

Connecting (retrying while the listener's backlog is full), writing a
request line, and reading reply lines and the notifications of a followed
log. The :class:`~supervisor.control.client.Client` opens one per session.
"""

from __future__ import annotations

import json
import socket
import sys
import time

from . import protocol
from .errors import CallTimeout, InvalidParams, ProtocolError, TooLarge, Unreachable, error_from_response

_RECV_SIZE = 65536
# Replies can be large (status of many processes, tail), but a line this
# long means the peer is not superd.
_MAX_REPLY_LINE = 64 << 20

#: What the read methods return once superd closed the connection.
EOF = object()


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


class Connection:
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

    def interrupt(self) -> None:
        """From another thread: end a read blocked on this connection (it reads EOF)."""
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
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
        """Return the next line (without its newline), or ``EOF``."""
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
                return EOF
            try:
                chunk = self.sock.recv(_RECV_SIZE)
            except socket.timeout:
                why = self._silence()
                self.close()
                raise CallTimeout(protocol.TIMEOUT, f"no reply from superd within {self.timeout:g} s{why}") from None
            except OSError as exc:
                self.close()
                if self._buf:
                    raise Unreachable(self.path, _reason(exc)) from None
                return EOF
            if not chunk:
                self.close()
                # A last line without its newline still counts.
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                return EOF
            self._buf += chunk

    def read_message(self) -> dict | object:
        """Return the next JSON object, or ``EOF``. Blank lines are skipped."""
        while True:
            line = self.read_line()
            if line is EOF:
                return EOF
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

    def read_response(self, req_id: int, progress=None) -> object:
        """Read until the response to ``req_id``; return its result or raise.
        ``progress``, where given, is called with the params of each
        ``progress`` notification that comes before it."""
        while True:
            msg = self.read_message()
            if msg is EOF:
                raise Unreachable(self.path, "connection closed before a reply")
            if "id" not in msg and "method" in msg:
                if progress is not None and msg["method"] == protocol.PROGRESS and isinstance(msg.get("params"), dict):
                    progress(msg["params"])
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
        while self.read_line() is not EOF:
            pass

    def _silence(self) -> str:
        """Why superd may not answer, as far as this side can tell."""
        pid = self.peer_pid()
        if pid <= 0:
            return ""
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return f" (pid {pid})"
        if state in (b"T", b"t"):
            return f": superd (pid {pid}) is stopped (SIGSTOP or a debugger); SIGCONT resumes it"
        if state == b"D":
            return f": superd (pid {pid}) is stuck in the kernel (disk or network I/O)"
        return f": superd (pid {pid}) is running but does not answer (overloaded or hung)"

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

    def call(self, method: str, params: dict, progress=None) -> object:
        return self.read_response(self.send_request(method, params), progress)
