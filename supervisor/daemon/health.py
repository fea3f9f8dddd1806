"""Checks on running programs: HTTP probes, ``alive`` checks and ``memory_restart``.

* ``tcp_attempt`` / ``http_attempt`` / ``exec_attempt``: one try of a check,
  None when it passed, else why not.
* ``HttpProbe``: a ``ready`` check by HTTP (a GET answered 2xx or 3xx),
  retried every ``interval`` until it passes.
* ``Monitors``: per running process that has an ``alive`` check or
  ``memory_restart``, one task that checks every interval and tells the
  process (:meth:`Process.alive_result`, :meth:`Process.restart_because`).

Nothing here runs for a program that configures none of it: no timer, no task.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Callable, Optional

from ..config import ReadyCheck
from ..core.errors import SpawnError

if TYPE_CHECKING:
    from ..core.process import Process

log = logging.getLogger("superd")

#: Seconds between two looks at a program's memory (``memory_restart``): it
#: must be above the limit at two looks in a row to be restarted.
MEMORY_INTERVAL = 3.0
#: The longest status line of an HTTP answer superd reads.
_MAX_LINE = 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


async def tcp_attempt(check: ReadyCheck) -> Optional[str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(check.host, check.port), check.timeout)
    except asyncio.TimeoutError:
        return f"{check}: no connection within {check.timeout:g}s"
    except (OSError, UnicodeError, ValueError) as exc:
        return f"{check}: {_why(exc)}"
    writer.close()
    return None


async def http_attempt(check: ReadyCheck) -> Optional[str]:
    async def get() -> bytes:
        reader, writer = await asyncio.open_connection(check.host, check.port, limit=_MAX_LINE)
        try:
            host = f"[{check.host}]" if ":" in check.host else check.host
            writer.write(f"GET {check.path} HTTP/1.1\r\nHost: {host}:{check.port}\r\nUser-Agent: superd\r\n"
                         "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1", "replace"))
            return await reader.readline()
        finally:
            writer.close()

    try:
        line = await asyncio.wait_for(get(), check.timeout)
    except asyncio.TimeoutError:
        return f"{check}: no answer within {check.timeout:g}s"
    except (OSError, UnicodeError, ValueError) as exc:
        return f"{check}: {_why(exc)}"
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"{check}: not an HTTP answer"
    code = int(parts[1])
    return None if 200 <= code < 400 else f"{check} answered {code}"


async def exec_attempt(check: ReadyCheck, run: Callable) -> Optional[str]:
    """``run(timeout, on_exit)`` starts the command as a helper (see ``ExecProbe``)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def exited(code: Optional[int], output: str) -> None:
        if not done.done():
            done.set_result((code, output))

    try:
        handle = run(check.timeout, exited)
    except (OSError, SpawnError) as exc:
        return f"cannot run {check}: {_why(exc)}"
    try:
        code, output = await done
    except asyncio.CancelledError:
        handle.cancel()
        raise
    if code == 0:
        return None
    how = f"timed out after {check.timeout:g}s" if code is None else f"exited {code}"
    return f"{check} {how}" + (f": {output}" if output else "")


def tree_rss(pid: int) -> Optional[int]:
    """The summed resident set size of ``pid`` and its descendants (None: it is gone)."""
    from . import procfs

    total, found = 0, False
    for member in [pid, *procfs.descendants(pid)]:
        try:
            with open(f"/proc/{member}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE_SIZE
            found = True
        except (OSError, IndexError, ValueError):
            pass
    return total if found else None


class HttpProbe:
    """Ready once a GET of the check's URL is answered 2xx or 3xx."""

    def __init__(self, check: ReadyCheck, on_ready: Callable[[str], None]) -> None:
        self._check = check
        self._on_ready = on_ready
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            why = await http_attempt(self._check)
            if why is None:
                self._on_ready(f"{self._check} answered")
                return
            log.debug("not ready yet: %s", why)
            await asyncio.sleep(self._check.interval)

    def cancel(self) -> None:  # a Probe of readiness.Checks
        self._task.cancel()


class Monitors:
    """The running checks, one task per process, keyed by instance name.

    ``run_helper(process, command, timeout, on_exit)`` runs an exec check;
    ``memory(process)`` is the run's memory in bytes (None: unknown).
    """

    def __init__(self, run_helper: Callable, memory: Callable[["Process"], Optional[int]]) -> None:
        self._run_helper = run_helper
        self._memory = memory
        self._tasks: dict[str, list[asyncio.Task]] = {}

    def watch(self, process: "Process") -> None:
        self.unwatch(process.name)
        tasks = []
        if process.config.alive is not None:
            tasks.append(self._alive(process, process.pid))
        if process.config.program.memory_restart:
            tasks.append(self._memory_watch(process, process.pid))
        if tasks:
            self._tasks[process.name] = [asyncio.ensure_future(task) for task in tasks]

    def unwatch(self, name: str) -> None:
        for task in self._tasks.pop(name, ()):
            task.cancel()

    def close(self) -> None:
        for name in list(self._tasks):
            self.unwatch(name)

    async def _attempt(self, process: "Process", check: ReadyCheck) -> Optional[str]:
        if check.kind == "http":
            return await http_attempt(check)
        if check.kind == "tcp":
            return await tcp_attempt(check)
        return await exec_attempt(check, lambda timeout, on_exit: self._run_helper(
            process, check.command, timeout, on_exit))

    async def _alive(self, process: "Process", pid: Optional[int]) -> None:
        check = process.config.alive
        while process.pid == pid:
            why = await self._attempt(process, check)
            if process.pid != pid:
                return
            if why is not None:
                log.warning("%s: alive check failed: %s", process.name, why)
            process.alive_result(why is None, why or "")
            await asyncio.sleep(check.interval)

    async def _memory_watch(self, process: "Process", pid: Optional[int]) -> None:
        limit = process.config.program.memory_restart
        over = 0
        while process.pid == pid:
            await asyncio.sleep(MEMORY_INTERVAL)
            used = self._memory(process)
            over = over + 1 if used is not None and used > limit else 0
            if over >= 2 and process.pid == pid:
                log.warning("%s: using %d MB, above memory_restart (%d MB) for %gs: restarting it",
                            process.name, used >> 20, limit >> 20, MEMORY_INTERVAL)
                process.restart_because(f"memory_restart: {used >> 20} MB used, above {limit >> 20} MB")
                return
