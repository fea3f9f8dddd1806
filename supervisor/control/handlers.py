"""One handler per control method: check the parameters, call the daemon's
command API, map its errors to JSON-RPC codes.

A handler returns the ``result``; refusals raise :class:`RpcError`, and
:func:`error_for` turns superd's own errors into one.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Awaitable, Callable, Optional

from . import protocol
from .progress import ProgressSender
from .. import __version__
from ..config import ConfigError, parse_signal
from ..core.errors import Failed, InvalidRequest, NoSuchName, Refused, ShuttingDown
from ..daemon.commands import process_infos

#: Methods that only observe: when their peer hangs up they are cancelled.
#: Everything else (start, stop, restart, ...) runs to its end regardless.
OBSERVING_METHODS = frozenset({"version", "state", "names", "status", "pid", "wait", "tail", "sockets", "events",
                               "maintail", "avail"})


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_for(exc: Exception) -> Optional[RpcError]:
    """The RPC error for one of superd's own errors; None for anything else (a bug)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, NoSuchName):
        return RpcError(protocol.NO_SUCH_NAME, f"no such process: {exc.args[0]}", exc.args[0])
    if isinstance(exc, InvalidRequest):
        return RpcError(protocol.INVALID_PARAMS, str(exc))
    if isinstance(exc, ShuttingDown):
        return RpcError(protocol.SHUTTING_DOWN, str(exc))
    if isinstance(exc, (Refused, Failed)):
        return RpcError(protocol.FAILED, str(exc))
    if isinstance(exc, ConfigError):
        return RpcError(protocol.INVALID_CONFIG, f"invalid config, nothing changed:\n{exc}",
                        [str(p) for p in exc.problems])
    return None


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message)


class Params:
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

    def strings(self, key: str) -> Optional[list[str]]:
        """A list of strings, or None when absent."""
        value = self.params.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise _invalid(f"'{key}' must be a list of strings")
        return value

    def string(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self.params.get(key, default)
        if value is not None and not isinstance(value, str):
            raise _invalid(f"'{key}' must be a string")
        return value


async def _with_progress(writer, wait: bool, after: Optional[float], call) -> Any:
    """``call(progress)``, with a progress sender when the waiting request asked for one."""
    if not wait or after is None or writer is None:
        return await call(None)
    sender = ProgressSender(writer, after)
    try:
        return await call(sender)
    finally:
        sender.close()


class Handlers:
    """The methods of protocol.METHODS for one supervisor."""

    def __init__(self, supervisor, on_shutdown: Callable[[Any], bool]) -> None:
        self.sv = supervisor
        self.commands = supervisor.commands
        self._on_shutdown = on_shutdown  # the transport keeps the asking connection open

    def find(self, method: str) -> Optional[Callable[[dict, Any], Awaitable[Any]]]:
        return getattr(self, f"rpc_{method}", None) if method in protocol.METHODS else None

    async def rpc_version(self, params: dict, writer) -> dict:
        Params(params, ())
        # "3.11.7": platform.python_version(), without loading the platform module for it
        return {"version": __version__, "pid": os.getpid(), "python": sys.version.split()[0]}

    async def rpc_state(self, params: dict, writer) -> dict:
        Params(params, ())
        result = {"state": self.sv.state.value, "pid": os.getpid(), "since": round(self.sv.since, 3),
                  "config": self.sv.config.path}
        if self.sv.starting:
            result["progress"] = self.sv.starting  # "starting: 1200 of 4000 started"
        return result

    async def rpc_names(self, params: dict, writer) -> list[str]:
        Params(params, ())
        names = list(self.sv.processes)
        programs = sorted({p.config.program.name for p in self.sv.processes.values()})
        groups = sorted({p.group for p in self.sv.processes.values()})
        names += [name for name in dict.fromkeys(programs + groups) if name not in self.sv.processes]
        names += [f"{g}:*" for g in groups]
        return names

    async def rpc_status(self, params: dict, writer) -> list[dict]:
        # "fields": only these members of each process (unknown ones are
        # ignored, for a client newer than superd); superctl's plain status
        # asks for what it prints, which spares superd the cgroup reads.
        p = Params(params, ("names", "fields"))
        names, fields = p.names(required=False), p.strings("fields")
        processes = self.sv.resolve(names) if names else list(self.sv.processes.values())
        return process_infos(processes, fields)

    async def rpc_sockets(self, params: dict, writer) -> list[dict]:
        Params(params, ())
        return self.sv.sockets.describe(self.sv.config)

    async def rpc_pid(self, params: dict, writer) -> dict:
        name = Params(params, ("name",)).string("name")
        if name is None:
            return {"pid": os.getpid()}
        return {"pids": [{"name": p.name, "pid": p.pid} for p in self.sv.resolve([name])]}

    # start, stop and restart: with "progress" (seconds), a waiting request
    # sends its steps as "progress" notifications once it has run that long.

    async def rpc_start(self, params: dict, writer) -> list[dict]:
        p = Params(params, ("names", "wait", "timeout", "progress"))
        names, wait, timeout = p.names(), p.flag("wait", True), p.seconds("timeout")  # all checked before acting
        after = p.seconds("progress")
        return await _with_progress(writer, wait, after, lambda progress: self.commands.start(
            self.sv.resolve(names), wait, timeout, progress))

    async def rpc_stop(self, params: dict, writer) -> list[dict]:
        p = Params(params, ("names", "wait", "timeout", "progress"))
        names, wait, timeout, after = p.names(), p.flag("wait", True), p.seconds("timeout"), p.seconds("progress")
        return await _with_progress(writer, wait, after, lambda progress: self.commands.stop(
            self.sv.resolve(names), wait, timeout, progress))

    async def rpc_restart(self, params: dict, writer) -> list[dict]:
        p = Params(params, ("names", "wait", "timeout", "rolling", "progress"))
        names, wait, timeout = p.names(), p.flag("wait", True), p.seconds("timeout")
        rolling, after = p.flag("rolling", False), p.seconds("progress")
        return await _with_progress(writer, wait, after, lambda progress: self.commands.restart(
            self.sv.resolve(names), wait, timeout, rolling, progress))

    async def rpc_signal(self, params: dict, writer) -> list[dict]:
        names = Params(params, ("names", "signal")).names()
        value = params.get("signal")
        if value is None:
            raise _invalid("'signal' is required: a name like \"HUP\" or a number")
        try:
            sig = parse_signal(value, allow_stop=True)  # STOP and CONT: pausing a program is legitimate
        except (ValueError, TypeError) as exc:
            raise _invalid(f"'signal': {exc}") from None
        return self.commands.signal(self.sv.resolve(names), sig)

    async def rpc_wait(self, params: dict, writer) -> list[dict]:
        p = Params(params, ("names", "state", "timeout"))
        state = p.string("state", "running")
        if state not in protocol.WAIT_STATES:
            raise _invalid(f"'state' must be one of {', '.join(protocol.WAIT_STATES)}")
        names, timeout = p.names(), p.seconds("timeout")
        processes = self.sv.resolve(names)
        reached, behind = await self.commands.wait(processes, state, timeout)
        if not reached:
            infos = process_infos(behind)
            raise RpcError(protocol.NOT_IN_STATE,
                           f"not {state}: " + ", ".join(f"{i['name']} ({i['state']})" for i in infos), infos)
        return process_infos(processes)

    async def rpc_reload(self, params: dict, writer) -> dict:
        Params(params, ())
        return await self.sv.reload()

    async def rpc_update(self, params: dict, writer) -> dict:
        names = Params(params, ("names",)).names(required=False)
        return await self.sv.reload(None if names is None or "all" in names else names)

    async def rpc_avail(self, params: dict, writer) -> dict:
        Params(params, ())
        return self.commands.avail()

    async def rpc_clear(self, params: dict, writer) -> list[dict]:
        names = Params(params, ("names",)).names()
        return self.commands.clear(self.sv.resolve(names))

    async def rpc_stdin(self, params: dict, writer) -> dict:
        p = Params(params, ("name", "data"))
        name, data = p.string("name"), p.string("data")
        if not name or data is None:
            raise _invalid("'name' (a program or instance name) and 'data' (a string) are required")
        return {"bytes": self.commands.write_stdin(self._one(name, "write to"), data.encode())}

    def _one(self, name: str, action: str):
        """The one process ``name`` means (InvalidRequest when it means several)."""
        processes = self.sv.resolve([name])
        if len(processes) != 1:
            names = ", ".join(p.name for p in processes)
            raise _invalid(f"{name} names {len(processes)} processes ({names}): {action} one of them")
        return processes[0]

    async def rpc_tail(self, params: dict, writer) -> dict:
        # With follow, new lines go on as "tail" notifications after this
        # response until the client closes the connection (see output's Follower).
        Params(params, ("name", "stream", "lines", "follow"))
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid("'name' is required: a program or instance name")
        which = params.get("stream", "stdout")
        if which not in ("stdout", "stderr"):
            raise _invalid("'stream' must be \"stdout\" or \"stderr\"")
        count = params.get("lines", 10)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _invalid("'lines' must be an integer >= 0")
        follow = params.get("follow", False)
        if not isinstance(follow, bool):
            raise _invalid("'follow' must be true or false")
        return {"lines": self.commands.tail(self._one(name, "tail"), which, count, follow, writer)}

    async def rpc_maintail(self, params: dict, writer) -> dict:
        # superd's own log; with follow, as rpc_tail.
        p = Params(params, ("lines", "follow"))
        count = params.get("lines", 10)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _invalid("'lines' must be an integer >= 0")
        return {"lines": self.commands.maintail(count, p.flag("follow", False), writer)}

    async def rpc_events(self, params: dict, writer) -> dict:
        # With follow, new events go on as "events" notifications after this
        # response until the client closes the connection (daemon/events.py).
        p = Params(params, ("names", "follow", "since"))
        names, follow, since = p.names(required=False), p.flag("follow", False), params.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float)) or since < 0):
            raise _invalid("'since' must be a time in seconds since the epoch")
        return {"events": self.commands.events(names, follow, since, writer)}

    async def rpc_shutdown(self, params: dict, writer) -> dict:
        Params(params, ())
        # Answer first, then shut down; the connection closes when superd's
        # process ends. Asked again while shutting down, it only waits too (a
        # second TERM signal escalates; a second request must not).
        if not self._on_shutdown(writer):
            return {"pid": os.getpid(), "already": True}
        asyncio.get_running_loop().call_soon(self.sv.request_shutdown, "shutdown requested over the control socket")
        return {"pid": os.getpid()}
