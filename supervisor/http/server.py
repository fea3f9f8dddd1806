"""The HTTP transport: one listener (TCP or Unix), HTTP/1.1 with h11, Basic auth, limits.

Each connection is its own task on superd's loop, one request at a time
(keep-alive, no pipelining ahead of an answer). The limits are the control
socket's: connections at once (:data:`MAX_CONNECTIONS`), the request head
(:data:`MAX_HEAD`, :data:`MAX_HEADERS`), the body (:data:`MAX_BODY`); a
request must arrive whole within ``[superd] client_timeout`` seconds of the
connection being ready for it (idle keep-alive connections are closed after
that too) and a client that does not read its answer for as long is
dropped. A Unix listener also checks the peer's credentials the way the
control socket does; credentials, when set, are checked on every request and
compared in constant time. An answer produced over time
(:class:`~supervisor.http.response.StreamingResponse`: ``tail -f``, Server-Sent
Events) takes the connection until it ends; :mod:`.streaming` bounds it.
"""

from __future__ import annotations

import asyncio
import binascii
import grp
import logging
import os
import pwd
import socket
import stat
import struct
from typing import Any, Optional

import h11

from ..control.listener import Listener
from .response import Response, StreamingResponse, reason, text
from ..daemon.procfs import supplementary_groups

log = logging.getLogger("superd")

MAX_CONNECTIONS = 128
MAX_HEAD = 16 << 10        # request line and headers, bytes
MAX_HEADERS = 64
MAX_BODY = 1 << 20         # an XML-RPC call (a multicall of a few thousand calls fits)
READ_SIZE = 64 << 10
REALM = "superd"
SERVER = b"superd"
_PEERCRED = struct.Struct("3i")

try:  # constant time, without hmac (it loads OpenSSL through hashlib)
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover - other Pythons
    from hmac import compare_digest


class HttpError(Exception):
    """The HTTP listener cannot start."""


class _HttpListener(Listener):
    """The control socket's accept loop, for TCP as well as Unix sockets."""

    async def _open(self, conn: socket.socket) -> None:
        try:
            if conn.family == socket.AF_UNIX:
                reader, writer = await asyncio.open_unix_connection(sock=conn, limit=self.limit)
            else:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                reader, writer = await asyncio.open_connection(sock=conn, limit=self.limit)
        except OSError:
            conn.close()
            return
        await self.handler(reader, writer)


class HttpServer:
    def __init__(self, supervisor) -> None:
        from .stats import Stats

        self.sv = supervisor
        self.settings = supervisor.config.http
        self.stats = Stats(supervisor)
        self._listener: Optional[Listener] = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._rpc = None
        self._api = None         # the dashboard's JSON API, the page itself and supervisord's
        self._dashboard = None   # /logtail: made when first asked for
        self._logtail = None
        self._streams = 0        # streaming answers running (streaming.MAX_STREAMS at most)
        self._sha1 = None
        self._bound_path: Optional[str] = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        if s.kind == "unix":
            sock = self._bind_unix(s.path)
        else:
            family = socket.AF_INET6 if (":" in s.host or not s.host) else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and not s.host:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # every address, v4 too
                sock.bind((s.host or "::", s.port))
                sock.listen(128)
            except OSError as exc:
                sock.close()
                raise HttpError(f"[http] cannot listen on {s.address}: {exc.strerror or exc}") from None
        refusal = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        self._listener = _HttpListener(sock, self._serve, limit=READ_SIZE, reserve=self.sv.reserve, refusal=refusal)
        if s.sha_password:
            import hashlib  # OpenSSL: only when a {SHA} password needs it

            self._sha1 = hashlib.sha1
        log.info("HTTP (XML-RPC /RPC2, /metrics, dashboard /) at %s%s", "unix://" if s.kind == "unix" else "http://",
                 s.address)

    def _bind_unix(self, path: str) -> socket.socket:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)  # stale: nothing listens on it
                else:
                    raise HttpError(f"[http] {path} is in use by another process")
                finally:
                    probe.close()
        except FileNotFoundError:
            pass
        daemon = self.sv.config.daemon
        old_umask = os.umask(0o177)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise HttpError(f"[http] cannot listen on {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        self._bound_path = path
        os.chmod(path, daemon.socket_mode)
        if daemon.socket_group:
            os.chown(path, -1, grp.getgrnam(daemon.socket_group).gr_gid)
        return sock

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for writer, task in list(self._connections.items()):
            writer.close()
            task.cancel()
        tasks = list(self._connections.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._bound_path:
            try:
                os.unlink(self._bound_path)
            except FileNotFoundError:
                pass
            self._bound_path = None
        if self._rpc is not None:
            self._rpc.close()

    # ------------------------------------------------------------------ connections

    @property
    def timeout(self) -> float:
        return self.sv.config.daemon.client_timeout

    def _peer_allowed(self, sock: socket.socket) -> tuple[bool, int]:
        pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        daemon = self.sv.config.daemon
        try:
            uids = {0, os.geteuid()} | {pwd.getpwnam(u).pw_uid for u in daemon.allow_users}
            gids = {grp.getgrnam(g).gr_gid for g in daemon.allow_groups}
        except KeyError:
            uids, gids = {0, os.geteuid()}, set()
        if uid in uids or gid in gids or (gids and gids & supplementary_groups(pid)):
            return True, uid
        return False, uid

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._connection(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        except Exception:  # a bug: it ends this connection only
            log.exception("HTTP connection failed")
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if len(self._connections) >= MAX_CONNECTIONS:
            await self._send(conn, writer, text(503, f"too many connections ({MAX_CONNECTIONS})"), close=True)
            return
        self._connections[writer] = asyncio.current_task()  # type: ignore[assignment]
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            allowed, uid = self._peer_allowed(sock)
            if not allowed:
                log.warning("refused an HTTP connection from uid %d", uid)
                await self._send(conn, writer, text(403, f"uid {uid} is not allowed to control this superd"),
                                 close=True)
                return
        while True:
            got = await self._read_request(conn, reader, writer)
            if got is None:
                return
            if isinstance(got, Response):  # a bad request: answer and close
                await self._send(conn, writer, got, close=True)
                return
            request, body = got
            response = await self._respond(request, body)
            if isinstance(response, StreamingResponse):
                await self._stream(conn, reader, writer, response)
                return
            close = conn.their_state is not h11.DONE
            if not await self._send(conn, writer, response, close=close):
                return
            if response.after is not None:
                response.after()
            if conn.our_state is h11.MUST_CLOSE or close:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> Any:
        """``(request, body)``; a :class:`Response` for a bad one; None when the
        client went away or took too long."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        request: Optional[h11.Request] = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 400 and "exceeded" in str(exc):
                    status = 431
                return text(status, f"bad request: {exc}")
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue and request is not None:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                left = deadline - loop.time()
                try:
                    if left <= 0:
                        raise asyncio.TimeoutError
                    data = await asyncio.wait_for(reader.read(READ_SIZE), left)
                except asyncio.TimeoutError:
                    if request is None and not conn.trailing_data[0]:
                        return None  # an idle keep-alive connection
                    return text(408, f"the request did not arrive within {self.timeout:g}s")
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                if len(event.headers) > MAX_HEADERS:
                    return text(431, f"more than {MAX_HEADERS} headers")
                for name, value in event.headers:
                    if name == b"content-length" and int(value) > MAX_BODY:
                        return text(413, f"the body is larger than {MAX_BODY} bytes")
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    return text(413, f"the body is larger than {MAX_BODY} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            else:  # ConnectionClosed, PAUSED
                return None

    async def _stream(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      response: StreamingResponse) -> None:
        """A body produced over time; the connection ends with it."""
        from .streaming import MAX_STREAMS, send

        if self._streams >= MAX_STREAMS:
            await self._send(conn, writer, text(503, f"too many streams at once ({MAX_STREAMS}); try again later"),
                             close=True)
            return
        self._streams += 1
        try:
            await send(conn, reader, writer, response)
        finally:
            self._streams -= 1

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, response: Response,
                    close: bool = False) -> bool:
        headers = [*response.headers, ("Content-Length", str(len(response.body))), ("Server", "superd")]
        if close:
            headers.append(("Connection", "close"))
        try:
            data = conn.send(h11.Response(status_code=response.status, headers=headers,
                                          reason=reason(response.status)))
            data += conn.send(h11.Data(data=response.body)) if response.body else b""
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return False
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.timeout)
            return True
        except asyncio.TimeoutError:
            writer.transport.abort()
            return False
        except (ConnectionError, OSError):
            return False

    # ------------------------------------------------------------------ requests

    def _authorized(self, request: h11.Request) -> bool:
        s = self.settings
        if s.username is None:
            return True
        header = next((v for n, v in request.headers if n == b"authorization"), b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            decoded = binascii.a2b_base64(encoded.strip())
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        user_ok = compare_digest(user, s.username.encode())
        if s.sha_password:
            given = self._sha1(password).hexdigest().encode()
            password_ok = compare_digest(given, s.password[5:].lower().encode())
        else:
            password_ok = compare_digest(password, s.password.encode())
        return user_ok & password_ok

    async def _respond(self, request: h11.Request, body: bytes) -> Response | StreamingResponse:
        self.settings = self.sv.config.http or self.settings  # a reload may change the credentials
        if not self._authorized(request):
            return text(401, "authentication required", [("WWW-Authenticate", f'Basic realm="{REALM}"')])
        path = request.target.split(b"?", 1)[0]
        method = request.method
        if path in (b"/RPC2", b"/RPC2/"):
            if method != b"POST":
                return text(405, "XML-RPC takes POST", [("Allow", "POST")])
            if self._rpc is None:
                from .rpcinterface import RpcInterface

                self._rpc = RpcInterface(self.sv, self.stats)
            return await self._rpc.handle(body)
        if path == b"/metrics":
            if method != b"GET":
                return text(405, "GET only", [("Allow", "GET")])
            from .metrics import render

            return Response(200, render(self.sv, self.stats).encode(),
                            content_type="text/plain; version=0.0.4; charset=utf-8")
        if path.startswith(b"/api/"):
            if self._api is None:
                from .api import Api

                self._api = Api(self.sv)
            return await self._api.handle(method, request.target, dict(request.headers))
        if path.startswith(b"/logtail/") or path == b"/mainlogtail":
            if method != b"GET":
                return text(405, "GET only", [("Allow", "GET")])
            if self._logtail is None:
                from .logtail import LogTail

                self._logtail = LogTail(self.sv)
            if path == b"/mainlogtail":
                return self._logtail.main_log()
            return self._logtail.process_log(path[len(b"/logtail/"):].decode("latin-1"))
        from .dashboard import ASSETS

        if path in ASSETS:
            if method != b"GET":
                return text(405, "GET only", [("Allow", "GET")])
            if self._dashboard is None:
                from .dashboard import Dashboard

                self._dashboard = Dashboard()
            return self._dashboard.respond(path)
        return text(404, "not found: superd serves the dashboard at /, /api/, /RPC2, /metrics, /logtail/NAME "
                         "and /mainlogtail")
