"""A program's hooks: ``before_start`` and ``after_stop``.

``before_start`` runs to completion before every spawn (the process is
STARTING without a pid meanwhile); a non-zero exit or a timeout is a failed
start. ``after_stop`` runs after every end of a run (a stop, an exit, a
failed start that had spawned), with ``SUPERD_EXIT_CODE``,
``SUPERD_EXIT_SIGNAL`` and ``SUPERD_STATE``; the next start of the same
process waits for it, at most until its ``hook_timeout`` kills it.

Hooks are helper processes (:mod:`.helpers`): the program's environment, user
and directory, a process group of their own killed at the timeout, collected
by superd's one reaper. Their output goes to superd's log.
"""

from __future__ import annotations

import logging
import signal
import shlex
from typing import TYPE_CHECKING, Optional

from ..core.errors import SpawnError

if TYPE_CHECKING:
    from .helpers import Helper

log = logging.getLogger("superd")

#: A run is live in these states; leaving them for one of ENDED ends it.
LIVE = ("starting", "running", "stopping")
ENDED = ("exited", "stopped", "backoff", "fatal")


class Hooks:
    """The hooks of every process of one supervisor."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self.before: dict[str, "Helper"] = {}   # instance -> its before_start running
        self.after: dict[str, "Helper"] = {}    # instance -> its after_stop running
        self.pending: dict[str, "Process"] = {}  # instances whose start waits for their after_stop
        self.live: dict[str, int] = {}          # instance -> the pid of its live run

    @property
    def running(self) -> int:
        return len(self.before) + len(self.after)

    # -- the start -------------------------------------------------------------

    def before_start(self, process: "Process") -> Optional[str]:
        """Called before a spawn: None to spawn now, else why it waits (then
        :meth:`Process.hook_done` comes later)."""
        name = process.name
        if name in self.after:
            self.pending[name] = process
            return "waiting for its after_stop hook to end"
        command = process.config.program.before_start
        if not command:
            return None
        timeout = process.config.program.hook_timeout
        shown = shlex.join(command)

        def done(code: Optional[int], text: str) -> None:
            self.before.pop(name, None)
            self.sv.schedule_check()
            said = f": {text}" if text else ""
            if code == 0:
                log.info("%s: before_start %s exited with code 0%s", name, shown, said)
                process.hook_done(None)
                return
            how = f"timed out after {timeout:g}s" if code is None else f"exited with code {code}"
            log.warning("%s: before_start %s %s%s", name, shown, how, said)
            process.hook_done(f"before_start {how}{said}")

        log.info("%s: running before_start %s", name, shown)
        try:
            self.before[name] = self.sv.runtime._run_helper(process, command, timeout, done)
        except (SpawnError, OSError) as exc:
            log.warning("%s: cannot run before_start %s: %s", name, shown, exc)
            self.sv.loop.call_soon(process.hook_done, f"cannot run before_start: {exc}")
            return "running before_start"
        return f"running before_start ({shown})"

    def cancel(self, process: "Process") -> None:
        """The start was called off (a stop): its before_start is killed."""
        self.pending.pop(process.name, None)
        helper = self.before.pop(process.name, None)
        if helper is not None:
            log.info("%s: killing its before_start: the start was called off", process.name)
            helper.cancel()
            self.sv.schedule_check()

    # -- the end of a run ----------------------------------------------------------

    def on_event(self, event: dict) -> None:
        """An event subscriber: a run that ended runs the process's after_stop."""
        if event.get("type") != "process":
            return
        name = event["name"]
        if event["to_state"] in LIVE and event.get("pid"):
            self.live[name] = event["pid"]
            return
        if event["to_state"] not in ENDED or name not in self.live:
            return
        del self.live[name]
        process = self.sv.processes.get(name)
        if process is None or not process.config.program.after_stop:
            return
        self._after_stop(process, event)

    def _after_stop(self, process: "Process", event: dict) -> None:
        name = process.name
        command = process.config.program.after_stop
        timeout = process.config.program.hook_timeout
        shown = shlex.join(command)
        status = process.exitstatus
        killed = _signal_name(-status) if status is not None and status < 0 else ""
        extra = {"SUPERD_EXIT_CODE": "" if status is None or killed else str(status),
                 "SUPERD_EXIT_SIGNAL": killed,
                 "SUPERD_STATE": event["to_state"].upper(),
                 "SUPERD_PID": str(event.get("pid") or "")}

        def done(code: Optional[int], text: str) -> None:
            self.after.pop(name, None)
            self.sv.schedule_check()
            how = f"timed out after {timeout:g}s" if code is None else f"exited with code {code}"
            log.log(logging.INFO if code == 0 else logging.WARNING, "%s: after_stop %s %s%s",
                    name, shown, how, f": {text}" if text else "")
            waiting = self.pending.pop(name, None)
            if waiting is not None:
                reason = self.before_start(waiting)
                if reason is None:
                    waiting.hook_done(None)

        log.info("%s: running after_stop %s", name, shown)
        try:
            self.after[name] = self.sv.runtime._run_helper(process, command, timeout, done, extra)
        except (SpawnError, OSError) as exc:
            log.warning("%s: cannot run after_stop %s: %s", name, shown, exc)

    def close(self) -> None:
        """superd is ending: what still runs is killed."""
        for helper in list(self.before.values()) + list(self.after.values()):
            helper.cancel()
        self.before.clear()
        self.after.clear()
        self.pending.clear()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
