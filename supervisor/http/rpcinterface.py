"""supervisord 4.3's XML-RPC interface (``supervisor.*``, ``system.*``) on superd's command API.

Names are supervisord's: ``group:name`` (or just ``name`` when the process
is its group's only one and named after it), ``group:*`` for a whole group.
superd's instance names (``web_1``) are accepted alone too. Faults carry
supervisord's codes and texts (``BAD_NAME: web``); process and daemon
states carry its numbers. Methods superd cannot honour answer what
supervisord answers when it cannot either.

This module dispatches the calls, resolves the names and holds superd's own
methods (state, main log, shutdown, restart, reloadConfig); the others are
its parts: process info (:mod:`.rpcinfo`), start, stop and signal
(:mod:`.rpcprocesses`), logs and stdin (:mod:`.rpclogs`), ``system.*``
(:mod:`.rpcsystem`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import Any, Callable, Optional

from .. import __version__
from ..config import ConfigError
from ..core.errors import Refused
from ..core.process import Process
from ..core.states import DaemonState
from .response import Response
from .rpcbase import integer as _integer, rpc, string as _string
from .rpcinfo import InfoMethods
from .rpclogs import LogMethods, read_range
from .rpcprocesses import ProcessMethods
from .rpcsystem import SystemMethods
from .xmlrpc import (ALREADY_ADDED, BAD_NAME, CANT_REREAD, FAILED, INCORRECT_PARAMETERS, NO_FILE,
                     SHUTDOWN_STATE, STILL_RUNNING, UNKNOWN_METHOD, BadRequest, RPCError, dumps_fault,
                     dumps_result, parse_call)

log = logging.getLogger("superd")

API_VERSION = "3.0"
IDENTIFICATION = "supervisor"
#: supervisord's states: FATAL 2, RUNNING 1, RESTARTING 0, SHUTDOWN -1.
DAEMON_CODES = {"RUNNING": 1, "RESTARTING": 0, "SHUTDOWN": -1}


class RpcInterface(InfoMethods, ProcessMethods, LogMethods, SystemMethods):
    def __init__(self, supervisor, stats) -> None:
        self.sv = supervisor
        self.stats = stats
        self.restarting = False
        self._applied: set[str] = set()   # groups the last reloadConfig already added or removed
        self._tasks: set[asyncio.Task] = set()
        self.methods: dict[str, Callable] = {}
        for attr in dir(self):
            fn = getattr(self, attr)
            if callable(fn) and hasattr(fn, "rpc_signature"):
                namespace, _, name = attr.partition("_")
                self.methods[f"{namespace}.{name}"] = fn
        for alias, name in (("supervisor.getVersion", "supervisor.getAPIVersion"),
                            ("supervisor.readMainLog", "supervisor.readLog"),
                            ("supervisor.readProcessLog", "supervisor.readProcessStdoutLog"),
                            ("supervisor.tailProcessLog", "supervisor.tailProcessStdoutLog"),
                            ("supervisor.clearProcessLog", "supervisor.clearProcessLogs")):
            self.methods[alias] = self.methods[name]

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ dispatch

    async def handle(self, body: bytes) -> Response:
        try:
            method, params = parse_call(body)
        except BadRequest as exc:
            return Response(400, (str(exc) + "\n").encode())
        after: list[Callable[[], None]] = []
        try:
            result = await self.call(method, params, after)
            data = dumps_result(result)
        except RPCError as exc:
            data = dumps_fault(exc.code, exc.text)
        return Response(200, data, content_type="text/xml", after=(lambda: [f() for f in after]) if after else None)

    async def call(self, method: str, params: tuple, after: list) -> Any:
        fn = self.methods.get(method) if isinstance(method, str) else None
        if fn is None:
            raise RPCError(UNKNOWN_METHOD)
        signature = inspect.signature(fn)
        extra = {"after": after} if "after" in signature.parameters else {}
        try:
            signature.bind(*params, **extra)
        except TypeError:
            raise RPCError(INCORRECT_PARAMETERS) from None
        if method.startswith("supervisor.") and (self.sv.state is DaemonState.SHUTTING_DOWN or self.restarting):
            raise RPCError(SHUTDOWN_STATE)
        try:
            return await fn(*params, **extra)
        except RPCError:
            raise
        except (ConfigError, Refused) as exc:
            raise RPCError(FAILED, str(exc)) from None
        except Exception as exc:  # a bug: a fault, and superd keeps serving
            log.exception("XML-RPC %s failed", method)
            raise RPCError(FAILED, f"{type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------ names

    def _groups(self) -> dict[str, list[Process]]:
        groups: dict[str, list[Process]] = {}
        for process in self.sv.processes.values():
            groups.setdefault(process.group, []).append(process)
        return groups

    def _lookup(self, name: Any) -> tuple[str, Optional[Process]]:
        """``(group, process)``; the process is None for ``group:*`` and ``group:``
        (and a group's name alone when no process has it). Raises BAD_NAME."""
        name = _string(name)
        groups = self._groups()
        group, sep, process_name = name.partition(":")
        if sep:
            if group not in groups:
                raise RPCError(BAD_NAME, name)
            if process_name in ("*", ""):  # supervisord's split_namespec
                return group, None
            for process in groups[group]:
                if process.name == process_name:
                    return group, process
            raise RPCError(BAD_NAME, name)
        process = self.sv.processes.get(name)
        if process is not None:
            return process.group, process
        if name in groups:
            return name, None
        raise RPCError(BAD_NAME, name)

    def _process(self, name: Any) -> Process:
        _, process = self._lookup(name)
        if process is None:
            raise RPCError(BAD_NAME, name)
        return process

    def _group(self, name: Any) -> list[Process]:
        name = _string(name)
        members = self._groups().get(name)
        if members is None:
            raise RPCError(BAD_NAME, name)
        return sorted(members, key=lambda p: (p.config.program.priority, p.name))

    def _all(self) -> list[Process]:
        return sorted(self.sv.processes.values(), key=lambda p: (p.config.program.priority, p.group, p.name))

    # ------------------------------------------------------------------ superd and supervisord

    @rpc("string")
    async def supervisor_getAPIVersion(self) -> str:
        """Return the version of the RPC API (supervisord's: 3.0)."""
        return API_VERSION

    @rpc("string")
    async def supervisor_getSupervisorVersion(self) -> str:
        """Return the version of superd."""
        return __version__

    @rpc("string")
    async def supervisor_getIdentification(self) -> str:
        """Return the identifying string ("supervisor", as supervisord's default)."""
        return IDENTIFICATION

    @rpc("struct")
    async def supervisor_getState(self) -> dict:
        """Return superd's state as {statecode, statename}."""
        name = "SHUTDOWN" if self.sv.state is DaemonState.SHUTTING_DOWN else \
            "RESTARTING" if self.restarting else "RUNNING"
        return {"statecode": DAEMON_CODES[name], "statename": name}

    @rpc("int")
    async def supervisor_getPID(self) -> int:
        """Return superd's pid."""
        return os.getpid()

    def _main_log(self) -> str:
        path = getattr(self.sv.config.daemon, "log_file", None)
        if not path or not os.path.exists(path):
            raise RPCError(NO_FILE, path or "superd logs to stderr ([superd] log_file is not set)")
        return path

    @rpc("string", "int", "int")
    async def supervisor_readLog(self, offset, length) -> str:
        """Read length bytes from superd's own log file, from offset (a negative offset: from the end)."""
        return read_range(self._main_log(), _integer(offset), _integer(length))

    @rpc("boolean")
    async def supervisor_clearLog(self) -> bool:
        """Empty superd's own log file."""
        path = self._main_log()
        try:
            os.truncate(path, 0)
        except OSError:
            raise RPCError(FAILED) from None
        self.sv.mainlog.reopen()  # its size (for rotation) starts again from 0
        return True

    @rpc("boolean")
    async def supervisor_shutdown(self, after: list) -> bool:
        """Shut superd down (gracefully, as SIGTERM does), once this answer is sent."""
        after.append(lambda: self.sv.request_shutdown("shutdown requested over XML-RPC"))
        return True

    @rpc("boolean")
    async def supervisor_restart(self, after: list) -> bool:
        """Restart superd's programs: stop them all, reload the config, start the autostart ones."""
        self.restarting = True
        after.append(lambda: self._background(self._restart()))
        return True

    async def _restart(self) -> None:
        try:
            await self.sv.commands.stop(list(self.sv.processes.values()), True, None)
            try:
                await self.sv.reload()
            except (ConfigError, Refused) as exc:
                log.warning("XML-RPC restart: the config was not reloaded: %s", exc)
        finally:
            self.restarting = False
        if self.sv.state is not DaemonState.SHUTTING_DOWN:
            autostart = [p for p in self.sv.processes.values() if p.config.program.autostart]
            await self.sv.commands.start(autostart, True, None)

    def _background(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @rpc("array")
    async def supervisor_reloadConfig(self) -> list:
        """Reload the config and apply it; return [[added, changed, removed]] group names."""
        before = {p.group for p in self.sv.processes.values()}
        old_groups = {p.name: p.group for p in self.sv.processes.values()}
        try:
            result = await self.sv.reload()
        except ConfigError as exc:
            raise RPCError(CANT_REREAD, str(exc)) from None
        after = {p.group for p in self.sv.processes.values()}
        new_groups = {p.name: p.group for p in self.sv.processes.values()}
        added, removed = sorted(after - before), sorted(before - after)
        changed = sorted({old_groups.get(n) or new_groups.get(n) for n in result.get("changed", ())}
                         - set(added) - set(removed) - {None})
        changed += sorted({new_groups[n] for n in result.get("added", ()) if n in new_groups} - set(added)
                          - set(changed))
        changed += sorted({old_groups[n] for n in result.get("removed", ()) if n in old_groups} - set(removed)
                          - set(changed))
        # superd applied all of it already: supervisorctl's update then asks to
        # stop, remove and add these groups, which is answered as done.
        self._applied = set(added) | set(removed) | set(changed)
        return [[added, changed, removed]]

    @rpc("boolean", "string")
    async def supervisor_addProcessGroup(self, name) -> bool:
        """Add a group from the config: superd's reload already did; ALREADY_ADDED otherwise."""
        name = _string(name)
        if name in self._applied:
            self._applied.discard(name)
            return True
        if name in self._groups():
            raise RPCError(ALREADY_ADDED, name)
        raise RPCError(BAD_NAME, name)

    @rpc("boolean", "string")
    async def supervisor_removeProcessGroup(self, name) -> bool:
        """Remove a group: superd's reload removes what the config no longer has."""
        name = _string(name)
        groups = self._groups()
        if name in groups:
            if name in self._applied:
                return True
            if any(p.active for p in groups[name]):
                raise RPCError(STILL_RUNNING, name)
            raise RPCError(FAILED, f"{name} is still in the config: remove it there and call reloadConfig")
        if name in self._applied:
            return True
        raise RPCError(BAD_NAME, name)
