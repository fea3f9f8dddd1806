"""supervisord's process-control methods (``startProcess``, ``stopProcessGroup``,
``signalAllProcesses``, ...), a part of
:class:`~supervisor.http.rpcinterface.RpcInterface`."""

from __future__ import annotations

import asyncio
from typing import Any

from ..config import parse_signal
from ..core.process import Process
from ..core.states import DaemonState, ProcessState
from .rpcbase import namespec as _namespec, rpc
from .xmlrpc import (ABNORMAL_TERMINATION, ALREADY_STARTED, BAD_SIGNAL, FAILED, NOT_RUNNING, SHUTDOWN_STATE,
                     SPAWN_ERROR, SUCCESS, RPCError)

RUNNING_STATES = (ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STARTING)


class ProcessMethods:
    """Needs ``sv``, ``_applied``, ``_lookup``, ``_groups``, ``_group`` and ``_all`` of the interface."""

    # ------------------------------------------------------------------ start, stop, signal

    def _refuse_when_shutting_down(self) -> None:
        if self.sv.state is DaemonState.SHUTTING_DOWN:
            raise RPCError(SHUTDOWN_STATE)

    async def _start_one(self, process: Process, wait: bool) -> bool:
        self._refuse_when_shutting_down()
        if process.state in RUNNING_STATES:
            raise RPCError(ALREADY_STARTED, _namespec(process))
        outcome = (await self.sv.commands.start([process], False, None))[0]
        if not outcome["ok"]:
            raise RPCError(FAILED, outcome["message"])
        if process.spawn_exit_code is not None or process.reason.startswith("spawn error"):
            raise RPCError(SPAWN_ERROR, _namespec(process))
        if wait and process.state is not ProcessState.RUNNING:
            await self.sv.wait_for(lambda: process.state is not ProcessState.STARTING)
            if process.state is not ProcessState.RUNNING:
                if process.spawn_exit_code is not None or process.reason.startswith("spawn error"):
                    raise RPCError(SPAWN_ERROR, _namespec(process))
                raise RPCError(ABNORMAL_TERMINATION, _namespec(process))
        return True

    async def _stop_one(self, process: Process, wait: bool) -> bool:
        if process.state not in RUNNING_STATES:
            raise RPCError(NOT_RUNNING, _namespec(process))
        outcome = (await self.sv.commands.stop([process], wait, None))[0]
        if not outcome["ok"]:
            raise RPCError(FAILED, outcome["message"])
        return True

    def _signal_one(self, process: Process, sig) -> bool:
        if process.state not in RUNNING_STATES or not process.signal(sig):
            raise RPCError(NOT_RUNNING, _namespec(process))
        return True

    async def _each(self, processes: list[Process], action) -> list[dict]:
        """Run ``action`` on every process at once; one status struct each, in order."""
        async def one(process: Process) -> dict:
            try:
                await action(process)
            except RPCError as exc:
                return {"name": process.name, "group": process.group, "status": exc.code, "description": exc.text}
            return {"name": process.name, "group": process.group, "status": SUCCESS, "description": "OK"}
        return list(await asyncio.gather(*(one(p) for p in processes)))

    @rpc("boolean", "string", "boolean")
    async def supervisor_startProcess(self, name, wait=True):
        """Start a process (name, group:name or group:*); with wait, until it is running."""
        group, process = self._lookup(name)
        if process is None:
            return await self.supervisor_startProcessGroup(group, wait)
        return await self._start_one(process, bool(wait))

    @rpc("array", "string", "boolean")
    async def supervisor_startProcessGroup(self, name, wait=True) -> list:
        """Start every process of a group that is not running."""
        members = self._group(name)
        self._refuse_when_shutting_down()
        return await self._each([p for p in members if p.state not in RUNNING_STATES],
                                lambda p: self._start_one(p, bool(wait)))

    @rpc("array", "boolean")
    async def supervisor_startAllProcesses(self, wait=True) -> list:
        """Start every process that is not running."""
        self._refuse_when_shutting_down()
        return await self._each([p for p in self._all() if p.state not in RUNNING_STATES],
                                lambda p: self._start_one(p, bool(wait)))

    @rpc("boolean", "string", "boolean")
    async def supervisor_stopProcess(self, name, wait=True):
        """Stop a process (name, group:name or group:*); with wait, until it is gone."""
        group, process = self._lookup(name)
        if process is None:
            return await self.supervisor_stopProcessGroup(group, wait)
        return await self._stop_one(process, bool(wait))

    @rpc("array", "string", "boolean")
    async def supervisor_stopProcessGroup(self, name, wait=True) -> list:
        """Stop every running process of a group."""
        if isinstance(name, str) and name in self._applied and name not in self._groups():
            return []  # a reloadConfig removed it already
        members = self._group(name)
        return await self._each([p for p in members if p.state in RUNNING_STATES],
                                lambda p: self._stop_one(p, bool(wait)))

    @rpc("array", "boolean")
    async def supervisor_stopAllProcesses(self, wait=True) -> list:
        """Stop every running process."""
        return await self._each([p for p in reversed(self._all()) if p.state in RUNNING_STATES],
                                lambda p: self._stop_one(p, bool(wait)))

    @staticmethod
    def _signal(value: Any):
        try:
            if isinstance(value, str) and value.isdecimal():
                value = int(value)
            return parse_signal(value, allow_stop=True)
        except (ValueError, TypeError):
            raise RPCError(BAD_SIGNAL, value) from None

    @rpc("boolean", "string", "string")
    async def supervisor_signalProcess(self, name, signal="HUP"):
        """Send a signal (name or number) to a process."""
        group, process = self._lookup(name)
        if process is None:
            return await self.supervisor_signalProcessGroup(group, signal)
        return self._signal_one(process, self._signal(signal))

    @rpc("array", "string", "string")
    async def supervisor_signalProcessGroup(self, name, signal="HUP") -> list:
        """Send a signal to every running process of a group."""
        members = self._group(name)
        sig = self._signal(signal)

        async def action(p: Process) -> bool:
            return self._signal_one(p, sig)
        return await self._each([p for p in members if p.state in RUNNING_STATES], action)

    @rpc("array", "string")
    async def supervisor_signalAllProcesses(self, signal="HUP") -> list:
        """Send a signal to every running process."""
        sig = self._signal(signal)

        async def action(p: Process) -> bool:
            return self._signal_one(p, sig)
        return await self._each([p for p in self._all() if p.state in RUNNING_STATES], action)
