"""The control server: newline-delimited JSON-RPC 2.0 on a Unix stream socket.

Each connection is served by its own task, one request at a time, so a slow
or hostile client only ever delays itself. Lines are bounded
(``protocol.MAX_LINE``), connections are bounded, a connection that sends no
complete request within ``[superd] client_timeout`` seconds (60 by default)
is closed, and every peer is checked with SO_PEERCRED before a byte of it is
read.

A line's JSON-RPC (parsing, batches, dispatch to a handler, error
responses) is :mod:`.jsonrpc`'s; this module carries the bytes.

A request is handled while the connection keeps being read, so a peer that
hangs up during a long ``wait`` frees its slot at once (actions such as
``restart`` still run to their end: a client that goes away must not leave a
program half restarted). ``shutdown`` keeps its connection open until superd's
process ends, so that its EOF tells the caller superd is gone.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import grp
import json
import logging
import os
import pwd
import select
import socket
import stat
import struct
from typing import Any, Optional

from . import protocol
from .handlers import Handlers
from .jsonrpc import error_response, parse, respond, valid_id
from .listener import Listener
from ..core.states import DaemonState
from ..daemon.procfs import supplementary_groups

log = logging.getLogger("superd")

#: Control connections at once; ``tail -f`` readers are not counted (they
#: have their own limit, ``output.MAX_FOLLOWERS``).
MAX_CONNECTIONS = 512
#: Refused peers (not allowed, or too many) may finish sending their request
#: for this long, so that they read the refusal instead of a reset; at most
#: MAX_REFUSING of them at a time, the others are closed at once.
REFUSE_LINGER = 2.0
MAX_REFUSING = 64
#: While a request is handled after its peer half-closed, how often to look
#: whether the peer hung up altogether.
HANGUP_POLL = 0.5
_PEER_GONE = object()
_PEERCRED = struct.Struct("3i")


class ServerError(Exception):
    """The server cannot start (the socket is taken, the path unusable)."""


class ControlServer:
    def __init__(self, supervisor) -> None:
        self.sv = supervisor
        self.handlers = Handlers(supervisor, self._shutdown_asked_by)
        daemon = supervisor.config.daemon
        self.path = daemon.socket
        self.mode = daemon.socket_mode
        self.group = daemon.socket_group
        self.configure(daemon)
        self._server: Optional[Listener] = None
        self._lock_fd: Optional[int] = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._refusing = 0
        # Connections that asked for the shutdown: their sockets stay open
        # until superd's process ends (see close()).
        self._shutdown_waiters: set[asyncio.StreamWriter] = set()
        self._shutdown_asked = False
        self._kept_fds: list[int] = []

    def _shutdown_asked_by(self, writer: asyncio.StreamWriter) -> bool:
        """A ``shutdown`` request: its connection stays open until superd's
        process ends; True for the first request (the one that acts)."""
        self._shutdown_waiters.add(writer)
        if self.sv.state is DaemonState.SHUTTING_DOWN or self._shutdown_asked:
            return False
        self._shutdown_asked = True  # set now: two requests in one loop turn must not escalate
        return True

    def configure(self, daemon) -> None:
        """Who may connect, and for how long; called again after a config reload."""
        self.client_timeout = daemon.client_timeout
        self.allowed_uids = {0, os.geteuid()} | {pwd.getpwnam(u).pw_uid for u in daemon.allow_users}
        self.allowed_gids = {grp.getgrnam(g).gr_gid for g in daemon.allow_groups}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        from ..daemon.private import check_private

        unsafe = check_private(directory)
        if unsafe:
            raise ServerError(unsafe)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise ServerError(f"cannot create the socket's folder {directory}: {exc.strerror}") from None
        self._lock()
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # stale: we hold the lock, so no live superd owns it
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)  # never more open than 0600 before the chmod
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            raise ServerError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        refusal = error_response(None, protocol.BUSY, "superd is out of file descriptors; try again later")
        self._server = Listener(sock, self._serve, limit=protocol.MAX_LINE, reserve=self.sv.reserve,
                                refusal=json.dumps(refusal).encode() + b"\n")
        os.chmod(self.path, self.mode)
        if self.group:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
        log.info("control socket at %s", self.path)

    def _lock(self) -> None:
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ServerError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ServerError(f"another superd is serving {self.path} (its lock {lock_path} is held)") from None
            raise ServerError(f"cannot lock {lock_path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._shutdown_waiters:
            # A copy of the socket that nothing closes: the kernel closes it
            # when superd's process ends, and the peer's EOF says "gone".
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    self._kept_fds.append(os.dup(sock.fileno()))  # non-inheritable
                except OSError:
                    pass
        self._shutdown_waiters.clear()
        tasks = list(self._connections.values())
        for writer, task in list(self._connections.items()):
            writer.close()
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._server = None
        if self._lock_fd is not None:
            try:
                os.unlink(self.path + ".lock")
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ connections

    def _peer_allowed(self, sock: Any) -> tuple[bool, int, int]:
        pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid in self.allowed_uids or gid in self.allowed_gids:
            return True, pid, uid
        if self.allowed_gids and self.allowed_gids & supplementary_groups(pid):
            return True, pid, uid
        return False, pid, uid

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # superd is exiting: the connection just closes
        except Exception:  # a bug: never let one connection take more than itself down
            log.exception("control connection failed")
        finally:
            self._connections.pop(writer, None)
            self._shutdown_waiters.discard(writer)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) - self._followers() >= MAX_CONNECTIONS:
            await self._refuse(reader, writer,
                               error_response(None, protocol.BUSY, f"too many connections ({MAX_CONNECTIONS})"))
            return
        sock = writer.get_extra_info("socket")
        allowed, pid, uid = self._peer_allowed(sock)
        if not allowed:
            log.warning("refused control connection from pid %d uid %d", pid, uid)
            await self._refuse(reader, writer, error_response(
                None, protocol.NOT_ALLOWED, f"uid {uid} is not allowed to control this superd"))
            return
        self._connections[writer] = asyncio.current_task()  # type: ignore[assignment]
        read: Optional[asyncio.Future] = None
        try:
            while True:
                if read is None:
                    read = asyncio.ensure_future(reader.readline())
                if not await self._arrives(read, writer):
                    log.debug("closing a control connection idle for %gs", self.client_timeout)
                    return
                try:
                    line = read.result()
                except (asyncio.LimitOverrunError, ValueError):
                    await self._send(writer, error_response(
                        None, protocol.TOO_LARGE, f"request longer than {protocol.MAX_LINE} bytes"))
                    return
                finally:
                    read = None
                if not line:
                    return
                request, observing, response = parse(line)
                if response is None:
                    # Keep reading while the request is handled: the next
                    # line, or the news that the peer hung up.
                    read = asyncio.ensure_future(reader.readline())
                    response = await self._handle(request, observing, writer, sock, read)
                    if response is _PEER_GONE:
                        return
                if response is not None and not await self._send(writer, response):
                    return
        finally:
            if read is not None:
                read.cancel()
                await asyncio.gather(read, return_exceptions=True)

    async def _arrives(self, read: asyncio.Future, writer: asyncio.StreamWriter) -> bool:
        """Wait for the next line; False when it does not come in time. The
        whole line must come within client_timeout (a peer that sends half a
        request and stalls is closed), except while the connection follows a
        log (``tail -f``): then it legitimately sends nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client_timeout
        while True:
            done, _ = await asyncio.wait({read}, timeout=max(0.0, deadline - loop.time()))
            if done:
                return True
            if not self._following(writer):
                return False
            deadline = loop.time() + self.client_timeout

    def _followers(self) -> int:
        """Connections following a log (``tail -f``): they have a limit of their
        own and never take a control connection's place."""
        outputs, events = getattr(self.sv, "outputs", None), getattr(self.sv, "events", None)
        return (0 if outputs is None else outputs.followers) + (0 if events is None else events.following)

    def _following(self, writer: asyncio.StreamWriter) -> bool:
        outputs, events = getattr(self.sv, "outputs", None), getattr(self.sv, "events", None)
        return (outputs is not None and outputs.is_following(writer)) or (events is not None and events.is_following(writer))

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: dict) -> None:
        """Answer ``error`` and close, but first let the peer finish sending
        its request (for a little while): closing on unread data would make
        it see a reset instead of the answer."""
        if not await self._send(writer, error):
            return
        if self._refusing >= MAX_REFUSING:
            return
        self._refusing += 1
        try:
            writer.write_eof()
            deadline = asyncio.get_running_loop().time() + min(REFUSE_LINGER, self.client_timeout)
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or not await asyncio.wait_for(reader.read(1 << 16), left):
                    return
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            self._refusing -= 1

    async def _handle(self, request: Any, observing: bool, writer: asyncio.StreamWriter, sock: Any,
                      read: asyncio.Future) -> Any:
        """The response to ``request``; ``_PEER_GONE`` when an observing
        request was cancelled because its peer hung up."""
        handling = asyncio.ensure_future(respond(self.handlers, request, writer))
        try:
            watch: Optional[asyncio.Future] = read
            while not handling.done():
                waiting = {handling} if watch is None else {handling, watch}
                await asyncio.wait(waiting, timeout=HANGUP_POLL if watch is None else None,
                                   return_when=asyncio.FIRST_COMPLETED)
                if handling.done():
                    break
                if watch is not None and watch.done():
                    if watch.cancelled() or watch.exception() is not None or watch.result():
                        # A pipelined request (or a bad line, answered later): the
                        # peer is there and wants this answer first.
                        return await handling
                    watch = None  # EOF: half-closed, or gone; poll to tell which
                if not observing:
                    return await handling
                if _hung_up(sock):
                    handling.cancel()
                    await asyncio.gather(handling, return_exceptions=True)
                    return _PEER_GONE
            return handling.result()
        finally:
            if not handling.done():  # this connection is being cancelled
                handling.cancel()
                await asyncio.gather(handling, return_exceptions=True)

    async def _send(self, writer: asyncio.StreamWriter, message: Any) -> bool:
        try:
            data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:  # a bug: say so rather than send bad JSON
            log.error("cannot encode a control response: %s", exc)
            rid = message.get("id") if isinstance(message, dict) else None
            data = json.dumps(error_response(valid_id(rid), protocol.INTERNAL_ERROR,
                                             f"internal error: {exc}")).encode() + b"\n"
        try:
            writer.write(data)
            # A peer that does not read its answers is dropped, not waited for.
            await asyncio.wait_for(writer.drain(), self.client_timeout)
            return True
        except asyncio.TimeoutError:
            log.debug("dropping a control connection that does not read its answers")
            writer.transport.abort()  # close() would wait to flush what it never reads
            return False
        except (ConnectionError, OSError):
            return False


def _hung_up(sock: Any) -> bool:
    """True when the peer closed both ways (not just its sending side)."""
    poller = select.poll()
    poller.register(sock.fileno(), 0)
    return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))
