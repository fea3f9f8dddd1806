"""The control server: newline-delimited JSON-RPC 2.0 on a Unix stream socket.

Each connection is served by its own task, one request at a time, so a slow
or hostile client only ever delays itself. Lines are bounded
(``protocol.MAX_LINE``), connections are bounded, a connection that sends no
complete request within ``[superd] client_timeout`` seconds (60 by default)
is closed, and every peer is checked with SO_PEERCRED before a byte of it is
read.

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
import math
import os
import platform
import pwd
import select
import socket
import stat
import struct
from typing import Any, Awaitable, Callable, Optional

from .. import __version__
from . import protocol
from ..config.model import ConfigError, parse_signal
from ..core.process import Process
from ..core.states import ACTIVE_STATES, DaemonState, ProcessState
from ..daemon.supervisor import NoSuchName, ReloadRefused, Supervisor

log = logging.getLogger("superd")

MAX_CONNECTIONS = 512
#: Refused peers (not allowed, or too many) may finish sending their request
#: for this long, so that they read the refusal instead of a reset; at most
#: MAX_REFUSING of them at a time, the others are closed at once.
REFUSE_LINGER = 2.0
MAX_REFUSING = 64
MAX_BATCH = 100
#: While a request is handled after its peer half-closed, how often to look
#: whether the peer hung up altogether.
HANGUP_POLL = 0.5
#: Methods that only observe: when their peer hangs up they are cancelled.
#: Everything else (start, stop, restart, ...) runs to its end regardless.
OBSERVING_METHODS = frozenset({"version", "state", "names", "status", "pid", "wait", "tail"})
_PEER_GONE = object()
_PEERCRED = struct.Struct("3i")


class ServerError(Exception):
    """The server cannot start (the socket is taken, the path unusable)."""


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _invalid(message: str) -> RpcError:
    return RpcError(protocol.INVALID_PARAMS, message)


class _Params:
    """Checked access to a request's params; unknown ones are refused."""

    def __init__(self, params: dict, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise _invalid(f"unknown param(s): {', '.join(unknown)}; expected: {', '.join(allowed) or 'none'}")
        self.params = params

    def names(self, required: bool = True) -> Optional[list[str]]:
        names = self.params.get("names")
        if names is None:
            if required:
                raise _invalid("'names' is required: a list of program, instance or group names, or ['all']")
            return None
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise _invalid("'names' must be a non-empty list of non-empty strings")
        return names

    def flag(self, key: str, default: bool) -> bool:
        value = self.params.get(key, default)
        if not isinstance(value, bool):
            raise _invalid(f"'{key}' must be true or false")
        return value

    def seconds(self, key: str) -> Optional[float]:
        value = self.params.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise _invalid(f"'{key}' must be a number of seconds >= 0")
        return float(value)

    def string(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self.params.get(key, default)
        if value is not None and not isinstance(value, str):
            raise _invalid(f"'{key}' must be a string")
        return value


def process_info(process: Process) -> dict:
    info = {
        "name": process.name,
        "group": process.group,
        "state": process.state.value,
        "pid": process.pid,
        "exitstatus": process.exitstatus,
        "since": round(process.since, 3),
        "uptime": None if (up := process.uptime()) is None else round(up, 3),
        "restarts": process.restarts,
        "description": process.description(),
        # Readiness: true once running and its check passed (always, without one);
        # "ready_check" is how it is checked, "status_text" its last sd_notify STATUS=.
        "ready": process.ready,
        "ready_check": None if process.config.ready is None else str(process.config.ready),
        "status_text": process.status_text,
        "waiting_for": list(process.waiting_for),
    }
    # What the process's cgroup knows: "cgroup", "pids", "memory" (bytes) and
    # "memory_source" ("memory.current", or "rss" summed over its processes);
    # all null without cgroup tracking. A few small file reads a process.
    usage = getattr(process.runtime, "usage", None)
    if usage is not None:
        info.update(usage(process))
    return info


def _result(process: Process, ok: bool, message: str) -> dict:
    return {"name": process.name, "ok": ok, "state": process.state.value, "pid": process.pid, "message": message}


class ControlServer:
    def __init__(self, supervisor: Supervisor) -> None:
        self.sv = supervisor
        daemon = supervisor.config.daemon
        self.path = daemon.socket
        self.mode = daemon.socket_mode
        self.group = daemon.socket_group
        self.configure(daemon)
        self._server: Optional[asyncio.AbstractServer] = None
        self._lock_fd: Optional[int] = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._restart_locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task] = set()
        self._refusing = 0
        # Connections that asked for the shutdown: their sockets stay open
        # until superd's process ends (see close()).
        self._shutdown_waiters: set[asyncio.StreamWriter] = set()
        self._shutdown_asked = False
        self._kept_fds: list[int] = []

    def configure(self, daemon) -> None:
        """Who may connect, and for how long; called again after a config reload."""
        self.client_timeout = daemon.client_timeout
        self.allowed_uids = {0, os.geteuid()} | {pwd.getpwnam(u).pw_uid for u in daemon.allow_users}
        self.allowed_gids = {grp.getgrnam(g).gr_gid for g in daemon.allow_groups}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
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
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=self.path, limit=protocol.MAX_LINE, backlog=1024
            )
        except OSError as exc:
            raise ServerError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
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
        for task in list(self._background):
            task.cancel()
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
        if self.allowed_gids and self.allowed_gids & _supplementary_groups(pid):
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
        if len(self._connections) >= MAX_CONNECTIONS:
            await self._refuse(reader, writer, _error(None, protocol.BUSY, f"too many connections ({MAX_CONNECTIONS})"))
            return
        sock = writer.get_extra_info("socket")
        allowed, pid, uid = self._peer_allowed(sock)
        if not allowed:
            log.warning("refused control connection from pid %d uid %d", pid, uid)
            await self._refuse(reader, writer, _error(None, protocol.NOT_ALLOWED, f"uid {uid} is not allowed to control this superd"))
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
                    await self._send(writer, _error(None, protocol.TOO_LARGE, f"request longer than {protocol.MAX_LINE} bytes"))
                    return
                finally:
                    read = None
                if not line:
                    return
                request, observing, response = _parse(line)
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

    def _following(self, writer: asyncio.StreamWriter) -> bool:
        outputs = getattr(self.sv, "outputs", None)
        return outputs is not None and outputs.is_following(writer)

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
        handling = asyncio.ensure_future(self._respond(request, writer))
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
            data = json.dumps(_error(_valid_id(rid), protocol.INTERNAL_ERROR, f"internal error: {exc}")).encode() + b"\n"
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

    # ------------------------------------------------------------------ requests

    async def _respond(self, request: Any, writer: asyncio.StreamWriter) -> Any:
        if isinstance(request, list):
            if not request or len(request) > MAX_BATCH:
                return _error(None, protocol.INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} requests")
            responses = [r for r in [await self._one(item, writer) for item in request] if r is not None]
            return responses or None
        return await self._one(request, writer)

    async def _one(self, request: Any, writer: asyncio.StreamWriter) -> Optional[dict]:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            rid = request.get("id") if isinstance(request, dict) else None
            return _error(_valid_id(rid), protocol.INVALID_REQUEST, "not a JSON-RPC 2.0 request")
        rid = request.get("id")
        if not _is_valid_id(rid):
            return _error(None, protocol.INVALID_REQUEST, "id must be a string, a number or null")
        notification = "id" not in request
        method = request["method"]
        params = request.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return None if notification else _error(rid, protocol.INVALID_PARAMS, "params must be an object")
        handler: Optional[Callable[..., Awaitable[Any]]] = getattr(self, f"rpc_{method}", None)
        if method not in protocol.METHODS or handler is None:
            return None if notification else _error(rid, protocol.METHOD_NOT_FOUND, f"no such method: {method[:100]!r}")
        try:
            result = await handler(params, writer)
        except RpcError as exc:
            return None if notification else _error(rid, exc.code, exc.message, exc.data)
        except NoSuchName as exc:
            return None if notification else _error(rid, protocol.NO_SUCH_NAME, f"no such process: {exc.args[0]}", exc.args[0])
        except Exception as exc:  # a bug: report it, keep serving
            log.exception("control request %s failed", method)
            return None if notification else _error(rid, protocol.INTERNAL_ERROR, f"internal error: {exc}")
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}

    # ------------------------------------------------------------------ methods

    async def rpc_version(self, params: dict, writer) -> dict:
        _Params(params, ())
        return {"version": __version__, "pid": os.getpid(), "python": platform.python_version()}

    async def rpc_state(self, params: dict, writer) -> dict:
        _Params(params, ())
        return {
            "state": self.sv.state.value,
            "pid": os.getpid(),
            "since": round(self.sv.since, 3),
            "config": self.sv.config.path,
        }

    async def rpc_names(self, params: dict, writer) -> list[str]:
        _Params(params, ())
        names = list(self.sv.processes)
        groups = sorted({p.group for p in self.sv.processes.values()})
        names += [g for g in groups if g not in self.sv.processes]
        names += [f"{g}:*" for g in groups]
        return names

    async def rpc_status(self, params: dict, writer) -> list[dict]:
        names = _Params(params, ("names",)).names(required=False)
        processes = self.sv.resolve(names) if names else list(self.sv.processes.values())
        return [process_info(p) for p in processes]

    async def rpc_pid(self, params: dict, writer) -> dict:
        name = _Params(params, ("name",)).string("name")
        if name is None:
            return {"pid": os.getpid()}
        return {"pids": [{"name": p.name, "pid": p.pid} for p in self.sv.resolve([name])]}

    async def rpc_start(self, params: dict, writer) -> list[dict]:
        p = _Params(params, ("names", "wait", "timeout"))
        names, wait, timeout = p.names(), p.flag("wait", True), p.seconds("timeout")  # all checked before acting
        processes = self.sv.resolve(names)
        self._refuse_when_shutting_down()
        return list(await asyncio.gather(*(self._start(proc, wait, timeout) for proc in processes)))

    async def rpc_stop(self, params: dict, writer) -> list[dict]:
        p = _Params(params, ("names", "wait", "timeout"))
        names, wait, timeout = p.names(), p.flag("wait", True), p.seconds("timeout")
        processes = self.sv.resolve(names)
        return list(await asyncio.gather(*(self._stop(proc, wait, timeout) for proc in processes)))

    async def rpc_restart(self, params: dict, writer) -> list[dict]:
        p = _Params(params, ("names", "wait", "timeout", "rolling"))
        names, wait, timeout = p.names(), p.flag("wait", True), p.seconds("timeout")
        rolling = p.flag("rolling", False)
        processes = self.sv.resolve(names)
        self._refuse_when_shutting_down()

        async def restart(process: Process) -> dict:
            # One restart of a process at a time, whoever asks: two clients
            # restarting at once get two restarts in a row, never two instances.
            lock = self._restart_locks.setdefault(process.name, asyncio.Lock())
            async with lock:
                stopped = await self._stop(process, True, timeout)
                if not stopped["ok"]:
                    return stopped
                if self.sv.state is DaemonState.SHUTTING_DOWN:
                    return _result(process, False, "superd is shutting down")
                return await self._start(process, wait, timeout)

        async def one_by_one() -> list[dict]:
            # A rolling restart: the next instance stops only once the one
            # before is running and ready again, so a pool of N keeps N - 1
            # serving; the first that fails ends it, the rest keep running.
            results: list[dict] = []
            for index, proc in enumerate(processes):
                lock = self._restart_locks.setdefault(proc.name, asyncio.Lock())
                async with lock:
                    result = await self._stop(proc, True, timeout)
                    if result["ok"] and self.sv.state is not DaemonState.SHUTTING_DOWN:
                        result = await self._start(proc, True, timeout)
                    if result["ok"] and not proc.ready:
                        reached = await self.sv.wait_for(lambda: proc.ready or not proc.active, timeout)
                        if not (reached and proc.ready):
                            result = _result(proc, False, f"not ready ({proc.description()})")
                results.append(result)
                if not result["ok"]:
                    results += [_result(rest, False, f"not restarted: the rolling restart stopped at {proc.name}")
                                for rest in processes[index + 1:]]
                    break
            return results

        if rolling and wait:
            return await one_by_one()
        if wait:
            return list(await asyncio.gather(*(restart(proc) for proc in processes)))
        # --no-wait: the restart goes on inside superd after the answer.
        if rolling:
            self._in_background(one_by_one())
        else:
            for proc in processes:
                self._in_background(restart(proc))
        return [_result(proc, True, "restarting") for proc in processes]

    def _in_background(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def rpc_signal(self, params: dict, writer) -> list[dict]:
        p = _Params(params, ("names", "signal"))
        names = p.names()
        value = params.get("signal")
        if value is None:
            raise _invalid("'signal' is required: a name like \"HUP\" or a number")
        try:
            sig = parse_signal(value, allow_stop=True)  # STOP and CONT: pausing a program is legitimate
        except (ValueError, TypeError) as exc:
            raise _invalid(f"'signal': {exc}") from None
        results = []
        for process in self.sv.resolve(names):
            if process.signal(sig):
                results.append(_result(process, True, f"sent {sig.name}"))
            else:
                results.append(_result(process, False, "not running"))
        return results

    async def rpc_wait(self, params: dict, writer) -> list[dict]:
        p = _Params(params, ("names", "state", "timeout"))
        state = p.string("state", "running")
        if state not in protocol.WAIT_STATES:
            raise _invalid(f"'state' must be one of {', '.join(protocol.WAIT_STATES)}")
        names, timeout = p.names(), p.seconds("timeout")
        processes = self.sv.resolve(names)

        def there(x: Process) -> bool:
            return x.ready if state == "ready" else x.state.value == state

        reached = await self.sv.wait_for(lambda: all(there(x) for x in processes), timeout)
        if not reached:
            behind = [process_info(x) for x in processes if not there(x)]
            raise RpcError(
                protocol.NOT_IN_STATE,
                f"not {state}: " + ", ".join(f"{i['name']} ({i['state']})" for i in behind),
                behind,
            )
        return [process_info(x) for x in processes]

    async def rpc_reload(self, params: dict, writer) -> dict:
        _Params(params, ())
        try:
            return await self.sv.reload()
        except ConfigError as exc:
            raise RpcError(protocol.INVALID_CONFIG, f"invalid config, nothing changed:\n{exc}", [str(p) for p in exc.problems]) from None
        except ReloadRefused as exc:
            raise RpcError(protocol.SHUTTING_DOWN if "shutting down" in str(exc) else protocol.FAILED, str(exc)) from None

    async def rpc_tail(self, params: dict, writer) -> dict:
        # {name, stream?, lines?, follow?}: the supervisor checks them. With
        # follow, new lines go on as "tail" notifications after this response
        # until the client closes the connection (supervisor.output.Follower).
        return await self.sv.tail(params, writer)

    async def rpc_shutdown(self, params: dict, writer) -> dict:
        _Params(params, ())
        # Answer first, then shut down; this connection closes when superd's
        # process ends. Asked again while shutting down, it only waits too (a
        # second TERM signal escalates; a second request must not).
        self._shutdown_waiters.add(writer)
        if self.sv.state is DaemonState.SHUTTING_DOWN or self._shutdown_asked:
            return {"pid": os.getpid(), "already": True}
        self._shutdown_asked = True  # set now: two requests in one loop turn must not escalate
        asyncio.get_running_loop().call_soon(self.sv.request_shutdown, "shutdown requested over the control socket")
        return {"pid": os.getpid()}

    # ------------------------------------------------------------------ actions

    def _refuse_when_shutting_down(self) -> None:
        if self.sv.state is DaemonState.SHUTTING_DOWN:
            raise RpcError(protocol.SHUTTING_DOWN, "superd is shutting down")

    async def _start(self, process: Process, wait: bool, timeout: Optional[float]) -> dict:
        if process.state is ProcessState.STOPPING:
            await self.sv.wait_for(lambda: not process.active, timeout)
            self._refuse_when_shutting_down()
        if process.retired:
            return _result(process, False, "replaced by a config reload meanwhile; ask again")
        if process.state is ProcessState.RUNNING:
            return _result(process, True, "already running")
        runs = process.runs
        if process.state is ProcessState.STARTING:
            # Started by someone else: its outcome is what this caller waits for.
            if not wait:
                return _result(process, True, "already starting")
        elif not process.start():
            return _result(process, False, f"cannot start from {process.state.value}")
        elif not wait:
            return _result(process, True, "starting")
        await self.sv.wait_for(lambda: process.state is not ProcessState.STARTING, timeout)
        if process.state is ProcessState.RUNNING or process.runs > runs:
            return _result(process, True, "started")
        if process.state is ProcessState.STARTING:
            return _result(process, False, f"still starting after {timeout:g}s")
        return _result(process, False, f"ERROR ({process.description()})")

    async def _stop(self, process: Process, wait: bool, timeout: Optional[float]) -> dict:
        process.held = True  # a dependent waiting for it does not start it again behind the caller's back
        if process.state not in ACTIVE_STATES and process.state is not ProcessState.BACKOFF:
            return _result(process, True, "not running")
        process.stop()
        if not wait:
            return _result(process, True, "stopping")
        if await self.sv.wait_for(lambda: not process.active, timeout):
            return _result(process, True, "stopped")
        return _result(process, False, f"still stopping after {timeout:g}s")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes) -> tuple[Any, bool, Optional[dict]]:
    """``(request, observing, error response)`` of one line."""
    try:
        request = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return None, False, _error(None, protocol.PARSE_ERROR, f"parse error: {str(exc)[:200]}")
    items = request if isinstance(request, list) else [request]
    observing = bool(items) and all(
        isinstance(i, dict) and isinstance(i.get("method"), str) and i["method"] in OBSERVING_METHODS for i in items
    )
    return request, observing, None


def _hung_up(sock: Any) -> bool:
    """True when the peer closed both ways (not just its sending side)."""
    poller = select.poll()
    poller.register(sock.fileno(), 0)
    return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))


def _is_valid_id(rid: Any) -> bool:
    if isinstance(rid, float):
        return math.isfinite(rid)
    return rid is None or (isinstance(rid, (str, int)) and not isinstance(rid, bool))


def _valid_id(rid: Any) -> Any:
    return rid if _is_valid_id(rid) else None


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict:
    error: dict = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}


def _supplementary_groups(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except OSError:
        pass
    return set()
