"""What superd does on each signal it handles.

The signals arrive through superd's own queue (:mod:`.signals`) as callbacks
on the event loop, never inside a Python signal handler. As a supervisor:
SIGTERM and SIGINT shut down gracefully, SIGQUIT at once, SIGHUP reloads the
config, SIGUSR2 reopens the log files, SIGUSR1 is logged and ignored, SIGCHLD
runs the reaper. In single-program mode SIGTERM and SIGINT shut down and every
other forwardable signal goes on to the program.
"""

from __future__ import annotations

import logging
import signal
from typing import Optional

from . import pid1
from .signals import SignalQueue
from ..config import ConfigError
from ..core.errors import Refused
from ..core.process import signal_name
from ..core.states import DaemonState

log = logging.getLogger("superd")


class SignalActions:
    """superd's signal handlers, installed while it runs."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self._queue: Optional[SignalQueue] = None
        self.reload_pending = False  # a SIGHUP came during start-up

    def install(self) -> None:
        sv = self.sv
        self._handle(signal.SIGCHLD, sv.reaper.reap)
        if sv.single:
            for sig in pid1.forwardable_signals():
                if sig in (signal.SIGTERM, signal.SIGINT):
                    self._handle(sig, sv.request_shutdown, f"SIG{sig.name[3:]}", sig)
                else:
                    self._handle(sig, self._forward, sig)
            if sv.foreground_tty is not None:
                # Handing the terminal to the program from a background group.
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                signal.signal(signal.SIGTTIN, signal.SIG_IGN)
                from . import jobcontrol  # Ctrl-Z stops superd with its program

                tty = sv.foreground_tty
                sv.reaper.on_stop = lambda pid, status: jobcontrol.follow_stop(tty, pid, status)
            return
        self._handle(signal.SIGTERM, sv.request_shutdown, "SIGTERM")
        self._handle(signal.SIGINT, sv.request_shutdown, "SIGINT")
        self._handle(signal.SIGQUIT, sv.quit_now, "SIGQUIT")
        self._handle(signal.SIGHUP, self.on_hup)
        self._handle(signal.SIGUSR2, self._on_usr2)
        self._handle(signal.SIGUSR1, self._ignored, signal.SIGUSR1)

    def _handle(self, sig: int, callback, *args) -> None:
        if self._queue is None:
            self._queue = SignalQueue(self.sv.loop)
            self._queue.open()
        self._queue.add(sig, callback, *args)

    def remove(self) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    def _forward(self, sig: int) -> None:
        for process in self.sv.processes.values():
            if process.signal(sig):
                log.debug("forwarded %s to %s (pid %s)", signal_name(sig), process.name, process.pid)

    def _ignored(self, sig: int) -> None:
        log.info("ignoring %s", signal_name(sig))

    def on_hup(self) -> None:
        sv = self.sv
        if sv.state is DaemonState.STARTING and not sv.single:
            log.info("SIGHUP during start-up: reloading %s once start-up ends", sv.config.path)
            self.reload_pending = True
            return
        self.reload_pending = False
        log.info("SIGHUP: reloading %s", sv.config.path)
        sv.background(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        try:
            await self.sv.reload()
        except ConfigError:
            pass  # already logged by reload()
        except Refused as exc:
            log.warning("SIGHUP: not reloading: %s", exc)

    def _on_usr2(self) -> None:
        log.info("SIGUSR2: reopening log files")
        self.sv.reopen_logs()
