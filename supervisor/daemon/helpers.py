"""Short commands superd runs for a program: readiness probes and stop commands.

A helper runs with the program's environment, user and directory, in a new
process group, with its output on a pipe superd reads (the last
``MAX_OUTPUT`` bytes are kept for the log). After ``timeout`` seconds its
whole group is killed. superd's one reaper collects its exit status and hands
it to :meth:`Helper.exited`; nothing here waits for a child.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Callable, Optional

from . import spawn

#: How much of a helper's output is kept (its end).
MAX_OUTPUT = 2048


class Helper:
    """One running helper command."""

    def __init__(self, popen: subprocess.Popen, loop: asyncio.AbstractEventLoop, timeout: float,
                 on_exit: Callable[[Optional[int], str], None]) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._loop = loop
        self._on_exit: Optional[Callable[[Optional[int], str], None]] = on_exit
        self._output = bytearray()
        self._timed_out = False
        assert popen.stdout is not None
        self._pipe = popen.stdout.fileno()
        os.set_blocking(self._pipe, False)
        loop.add_reader(self._pipe, self._read)
        self._timer: Optional[asyncio.TimerHandle] = loop.call_later(max(0.0, timeout), self._expire)

    def _read(self) -> None:
        try:
            data = os.read(self._pipe, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_pipe()
            return
        self._output += data
        del self._output[:-MAX_OUTPUT]

    def _close_pipe(self) -> None:
        if self._popen.stdout is not None and not self._popen.stdout.closed:
            self._loop.remove_reader(self._pipe)
            self._popen.stdout.close()

    def _kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _expire(self) -> None:
        self._timer = None
        self._timed_out = True
        self._kill()

    def cancel(self) -> None:
        """Kill it; its exit goes unreported."""
        self._on_exit = None
        self._kill()

    def exited(self, status: int) -> None:
        """The reaper collected it: report ``(exit code or None when it timed out, output)``."""
        spawn.forget(self._popen, status)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._read()  # what it wrote last, if the pipe has it
        self._close_pipe()
        self._kill()  # whatever it started in its group goes with it
        on_exit, self._on_exit = self._on_exit, None
        if on_exit is not None:
            code = None if self._timed_out else os.waitstatus_to_exitcode(status)
            text = self._output.decode("utf-8", "replace").strip()
            on_exit(code, " / ".join(line.strip() for line in text.splitlines()[-3:] if line.strip()))
