"""supervisord's log and stdin methods (``readProcessStdoutLog``, ``tail...``,
``clearProcessLogs``, ``sendProcessStdin``, ...), a part of
:class:`~supervisor.http.rpcinterface.RpcInterface`."""

from __future__ import annotations

import os
from typing import Any, Optional

from ..core.errors import Failed, NoStdin, NotRunning
from ..core.process import Process
from .rpcbase import MAX_READ, integer as _integer, namespec as _namespec, rpc
from .xmlrpc import BAD_ARGUMENTS, FAILED, INCORRECT_PARAMETERS, NO_FILE, NOT_RUNNING, RPCError


class LogMethods:
    """Needs ``sv``, ``_process``, ``_logfile``, ``_all`` and ``_each`` of the interface."""

    # ------------------------------------------------------------------ logs and stdin

    def _log_of(self, name: Any, which: str) -> Optional[str]:
        process = self._process(name)
        path = self._logfile(process, which)
        if not path and which == "stderr" and process.config.stderr == "stdout":
            path = self._logfile(process, "stdout")
        return path or None

    async def _read_log(self, name, offset, length, which: str) -> str:
        path = self._log_of(name, which)
        if path is None or not os.path.exists(path):
            raise RPCError(NO_FILE, path or f"{name}'s {which} is not written to a file")
        return read_range(path, _integer(offset), _integer(length))

    async def _tail_log(self, name, offset, length, which: str) -> list:
        path = self._log_of(name, which)
        offset, length = _integer(offset), _integer(length)
        if path is None or not os.path.exists(path):
            return ["", 0, False]
        return tail_range(path, offset, length)

    @rpc("string", "string", "int", "int")
    async def supervisor_readProcessStdoutLog(self, name, offset, length) -> str:
        """Read length bytes of a process's stdout log from offset (a negative offset: from the end)."""
        return await self._read_log(name, offset, length, "stdout")

    @rpc("string", "string", "int", "int")
    async def supervisor_readProcessStderrLog(self, name, offset, length) -> str:
        """Read length bytes of a process's stderr log from offset (a negative offset: from the end)."""
        return await self._read_log(name, offset, length, "stderr")

    @rpc("array", "string", "int", "int")
    async def supervisor_tailProcessStdoutLog(self, name, offset, length) -> list:
        """[bytes, offset, overflow]: at most length bytes of the stdout log from offset, or its end."""
        return await self._tail_log(name, offset, length, "stdout")

    @rpc("array", "string", "int", "int")
    async def supervisor_tailProcessStderrLog(self, name, offset, length) -> list:
        """[bytes, offset, overflow]: at most length bytes of the stderr log from offset, or its end."""
        return await self._tail_log(name, offset, length, "stderr")

    def _clear(self, process: Process) -> None:
        if not self.sv.commands.clear([process])[0]["ok"]:
            raise RPCError(FAILED, _namespec(process))

    @rpc("boolean", "string")
    async def supervisor_clearProcessLogs(self, name) -> bool:
        """Empty a process's stdout and stderr log files."""
        self._clear(self._process(name))
        return True

    @rpc("array")
    async def supervisor_clearAllProcessLogs(self) -> list:
        """Empty every process's log files."""
        async def action(p: Process) -> None:
            self._clear(p)
        return await self._each(self._all(), action)

    @rpc("boolean", "string", "string")
    async def supervisor_sendProcessStdin(self, name, chars) -> bool:
        """Write chars to a process's stdin (a program with stdin = true)."""
        if not isinstance(chars, (str, bytes)):
            raise RPCError(INCORRECT_PARAMETERS, chars)
        process = self._process(name)
        try:
            self.sv.commands.write_stdin(process, chars.encode() if isinstance(chars, str) else chars)
        except NotRunning:
            raise RPCError(NOT_RUNNING, name) from None
        except NoStdin:
            raise RPCError(NO_FILE, name) from None
        except Failed as exc:  # its buffer is full: it does not read its stdin
            raise RPCError(FAILED, str(exc)) from None
        return True

    @rpc("boolean", "string", "string")
    async def supervisor_sendRemoteCommEvent(self, type, data) -> bool:
        """Send a REMOTE_COMMUNICATION event to event listeners."""
        self.sv.events.emit("remote_communication", reason=str(type), data=str(data))
        return True


def read_range(path: str, offset: int, length: int) -> str:
    """supervisord's readLog: length bytes from offset (0: to the end); a
    negative offset reads that many bytes from the end (length must be 0)."""
    try:
        with open(path, "rb") as f:
            if offset < 0:
                if length:
                    raise RPCError(BAD_ARGUMENTS)
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size + offset))
                data = f.read(min(-offset, MAX_READ))
            else:
                if length < 0:
                    raise RPCError(BAD_ARGUMENTS)
                f.seek(offset)
                data = f.read(min(length, MAX_READ) if length else MAX_READ)
    except OSError:
        raise RPCError(FAILED) from None
    return data.decode("utf-8", "replace")


def tail_range(path: str, offset: int, length: int) -> list:
    """supervisord's tail: ``[bytes, next offset, overflow]``."""
    length = max(0, min(length, MAX_READ))
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            overflow = size > offset + length
            if overflow:
                offset = size - 1
            if offset + length > size:
                if offset > size - 1:
                    length = 0
                offset = size - length
            offset = max(0, offset)
            f.seek(offset)
            data = f.read(length) if length else b""
            return [data.decode("utf-8", "replace"), size, overflow]
    except OSError:
        return ["", offset, False]
