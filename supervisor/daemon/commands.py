"""The supervisor's command API: what a control request asks superd to do.

Start, stop, restart (one by one with ``rolling``), signal, wait, tail and
the views of processes. Each takes checked arguments and returns plain data;
refusals are :mod:`supervisor.core.errors`. The control handlers check a
request's parameters, call these and map the errors to codes.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable, Collection, Iterable, Optional

from ..core.errors import Failed, NoStdin, NotRunning, ShuttingDown
from ..core.process import Process
from ..core.states import ACTIVE_STATES, DaemonState, ProcessState
from ..output import MAX_FOLLOWERS, MAX_TAIL_LINES, captured

#: Told each step of a waiting start, stop or restart: (process, step).
Progress = Callable[[Process, str], None]

#: The members of a process as ``status`` shows it, in their order; the last
#: ones only where the runtime tracks them.
PROCESS_FIELDS = ("name", "group", "program", "state", "pid", "exitstatus", "since", "uptime", "restarts",
                  "description", "ready", "ready_check", "status_text", "waiting_for", "sockets", "health",
                  "stdin", "captured", "cgroup", "pids", "memory", "memory_source", "dropped")
#: What the tracker reads from the process's cgroup and /proc: a few file reads a process.
USAGE_FIELDS = frozenset({"cgroup", "pids", "memory", "memory_source"})


def process_info(process: Process) -> dict:
    """A process as ``status`` shows it."""
    return process_infos([process])[0]


def process_infos(processes: Iterable[Process], fields: Optional[Collection[str]] = None) -> list[dict]:
    """Processes as ``status`` shows them; with ``fields``, only those members
    (names not in :data:`PROCESS_FIELDS` are ignored), and only what they
    need is read: without "description" nor the usage fields nothing is read
    from /proc or the cgroups, which is most of a status of many processes."""
    if fields is None:
        return [_info(p, True, True, True) for p in processes]
    wanted = frozenset(fields)
    usage, dropped, text = bool(wanted & USAGE_FIELDS), "dropped" in wanted, "description" in wanted
    return [{key: value for key, value in _info(p, usage, dropped, text).items() if key in wanted}
            for p in processes]


def _info(process: Process, usage: bool, dropped: bool, text: bool) -> dict:
    config = process.config
    program = config.program
    health = process.health
    uptime = process.uptime()
    info = {
        "name": process.name,
        "group": process.group,           # its [group.NAME], else its program's name
        "program": program.name,
        "state": process.state.value,
        "pid": process.pid,
        "exitstatus": process.exitstatus,
        "since": round(process.since, 3),
        "uptime": None if uptime is None else round(uptime, 3),
        "restarts": process.restarts,
        "description": description(process) if text else None,
        # Readiness: true once running and its check passed (always, without one);
        # "ready_check" is how it is checked, "status_text" its last sd_notify STATUS=.
        "ready": process.ready,
        "ready_check": None if config.ready is None else str(config.ready),
        "status_text": process.status_text,
        "waiting_for": list(process.waiting_for),
        "sockets": list(program.sockets),  # held sockets it gets, as fds 3, 4, ...
        # The alive check: null without one, else "unknown", "healthy" or "unhealthy".
        "health": None if health is None else health.state,
        "stdin": program.stdin,  # superd holds a pipe as its stdin (superctl fg)
        "captured": list(captured(config)),  # the streams tail reads, a merged pair once
    }
    # What the process's cgroup knows: "cgroup", "pids", "memory" (bytes) and
    # "memory_source" ("memory.current", or "rss" summed over its processes);
    # all null without cgroup tracking. A few small file reads a process.
    if usage:
        usage_of = getattr(process.runtime, "usage", None)
        if usage_of is not None:
            info.update(usage_of(process))
    # What the log files or the console lost of its output since its streams
    # were made: {"stdout": {"bytes": n, "lines": m}, "stderr": {...}}.
    if dropped:
        dropped_of = getattr(process.runtime, "dropped", None)
        if dropped_of is not None:
            info["dropped"] = dropped_of(process)
    return info


def description(process: Process) -> str:
    """The process's description, and "paused" while a job-control signal
    (``superctl signal STOP``, SIGTSTP) holds it stopped: it is still RUNNING
    to superd, but does nothing until SIGCONT."""
    text = process.description()
    if process.pid is not None and process.active and _stopped(process.pid):
        text += f", paused (stopped by a signal; superctl signal CONT {process.name} resumes it)"
    return text


def _stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a job-control signal: state "T" in
    /proc/PID/stat ("t", a tracer's stop, is not a pause). What
    :func:`procfs.stopped` tells, in one raw read instead of a Python file
    object's (a status of every process reads it for each: this halves it)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        data = os.read(fd, 4096)  # one record, made whole at the first read, well under 4 KiB
    except OSError:
        return False
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2:][:1] == b"T"


def result(process: Process, ok: bool, message: str) -> dict:
    return {"name": process.name, "ok": ok, "state": process.state.value, "pid": process.pid, "message": message}


class Commands:
    """What can be asked of one supervisor."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self._restart_locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task] = set()

    def refuse_when_shutting_down(self) -> None:
        if self.sv.state is DaemonState.SHUTTING_DOWN:
            raise ShuttingDown()

    # ``progress(process, step)``, where given, hears each step of a waiting
    # request as it happens ("stopping", "stopped", "starting", "running",
    # "ready"): the control handler sends it on as notifications.

    async def start(self, processes: list[Process], wait: bool, timeout: Optional[float],
                    progress: Optional[Progress] = None) -> list[dict]:
        self.refuse_when_shutting_down()
        return list(await asyncio.gather(*(self._start(p, wait, timeout, progress) for p in processes)))

    async def stop(self, processes: list[Process], wait: bool, timeout: Optional[float],
                   progress: Optional[Progress] = None) -> list[dict]:
        return list(await asyncio.gather(*(self._stop(p, wait, timeout, progress) for p in processes)))

    async def restart(self, processes: list[Process], wait: bool, timeout: Optional[float],
                      rolling: bool, progress: Optional[Progress] = None) -> list[dict]:
        self.refuse_when_shutting_down()
        if rolling and wait:
            return await self._rolling(processes, timeout, progress)
        if wait:
            return list(await asyncio.gather(*(self._restart(p, wait, timeout, progress) for p in processes)))
        # --no-wait: the restart goes on inside superd after the answer.
        if rolling:
            self._in_background(self._rolling(processes, timeout))
        else:
            for process in processes:
                self._in_background(self._restart(process, wait, timeout))
        return [result(p, True, "restarting") for p in processes]

    def signal(self, processes: list[Process], sig) -> list[dict]:
        return [result(p, True, f"sent {sig.name}") if p.signal(sig) else result(p, False, "not running")
                for p in processes]

    async def wait(self, processes: list[Process], state: str, timeout: Optional[float]) -> tuple[bool, list[Process]]:
        """Wait until every process is in ``state`` (or "ready"); (reached, those behind)."""
        def there(x: Process) -> bool:
            return x.ready if state == "ready" else x.state.value == state

        reached = await self.sv.wait_for(lambda: all(there(x) for x in processes), timeout)
        return reached, [x for x in processes if not there(x)]

    def tail(self, process: Process, which: str, count: int, follow: bool, writer) -> list[str]:
        """The last ``count`` lines of a process's stream; with ``follow`` new
        lines go on to ``writer`` as ``tail`` notifications."""
        sv = self.sv
        if sv.single:
            raise Failed(f"{process.name} writes straight to superd's own output "
                         "in single-program mode: there is nothing to tail")
        target = getattr(process.config, which)
        if which == "stderr" and target == "stdout":
            target = process.config.stdout
        if target == "inherit":
            raise Failed(f"{process.name}'s {which} is not captured: it goes straight to superd's own {which} "
                         f'({which} = "inherit")')
        if target == "null":
            raise Failed(f"{process.name}'s {which} is not captured: it goes to /dev/null ({which} = \"null\")")
        if follow and not sv.outputs.can_follow():
            raise Failed(f"too many tail -f readers ({MAX_FOLLOWERS}); try again later")
        stream = sv.outputs.stream(process.config, which, sv.config.daemon.logs_dir)
        try:
            lines = stream.last_lines(min(count, MAX_TAIL_LINES))
        except OSError as exc:
            raise Failed(f"cannot read {stream.path}: {exc.strerror or exc}") from None
        if follow:
            sv.outputs.follow(stream, writer, sv.config.daemon.client_timeout)
        return [line.decode("utf-8", "replace") for line in lines]

    def maintail(self, count: int, follow: bool, writer) -> list[str]:
        """The last ``count`` lines of superd's own log; with ``follow`` new
        lines go on to ``writer`` as ``tail`` notifications."""
        sv = self.sv
        if follow and not sv.outputs.can_follow():
            raise Failed(f"too many tail -f readers ({MAX_FOLLOWERS}); try again later")
        lines = sv.mainlog.last_lines(min(count, MAX_TAIL_LINES))
        if follow:
            sv.outputs.follow(sv.mainlog.stream, writer, sv.config.daemon.client_timeout)
        return [line.decode("utf-8", "replace") for line in lines]

    def clear(self, processes: list[Process]) -> list[dict]:
        """Empty each process's log files and forget its output for ``tail``."""
        sv = self.sv
        results = []
        for process in processes:
            if sv.single:
                results.append(result(process, False, "single-program mode keeps no output to clear"))
                continue
            try:
                sv.outputs.clear(process.config, sv.config.daemon.logs_dir)
            except OSError as exc:
                results.append(result(process, False, f"cannot clear its log: {exc.strerror or exc}"))
            else:
                results.append(result(process, True, "cleared"))
        return results

    def avail(self) -> dict:
        """Every configured instance: in use, or in the config file and not
        loaded yet (a reload would add it); ``config_error`` when the file
        cannot be read."""
        from .available import configured

        instances, problem, _ = configured(self.sv)
        return {"processes": [{"name": instance.name, "group": instance.group, "in_use": in_use,
                               "autostart": instance.program.autostart, "priority": instance.program.priority}
                              for instance, in_use in instances],
                "config_error": problem}

    def write_stdin(self, process: Process, data: bytes) -> int:
        """Send ``data`` to the process's stdin pipe (``stdin = true``); the
        number of bytes taken (all, or an error). Empty ``data`` only checks
        that it could be written."""
        if not process.config.program.stdin:
            raise NoStdin(f"{process.name} has no stdin pipe: set stdin = true in "
                          f"[program.{process.config.program.name}]")
        if process.pid is None or process.state not in (ProcessState.STARTING, ProcessState.RUNNING):
            raise NotRunning(f"{process.name} is not running ({process.state.value})")
        return self.sv.stdin.write(process.name, data)

    def events(self, names: Optional[list[str]], follow: bool, since: Optional[float], writer) -> list[dict]:
        """Recent events (of ``names``' processes); with ``follow`` new ones go
        on to ``writer`` as ``events`` notifications."""
        from .events import MAX_FOLLOWERS as MAX_EVENT_FOLLOWERS, matcher

        sv = self.sv
        match = matcher(names, sv.resolve(names) if names else ())
        if follow and not sv.events.can_follow():
            raise Failed(f"too many event followers ({MAX_EVENT_FOLLOWERS}); try again later")
        recent = sv.events.recent(match, since)
        if follow:
            sv.events.follow(writer, match, sv.config.daemon.client_timeout)
        return recent

    def close(self) -> None:
        for task in list(self._background):
            task.cancel()

    # -- the steps ---------------------------------------------------------------

    def _in_background(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start(self, process: Process, wait: bool, timeout: Optional[float],
                     progress: Optional[Progress] = None) -> dict:
        if process.state is ProcessState.STOPPING:
            await self.sv.wait_for(lambda: not process.active, timeout)
            self.refuse_when_shutting_down()
        if process.retired:
            return result(process, False, "replaced by a config reload meanwhile; ask again")
        if process.state is ProcessState.RUNNING:
            return result(process, True, "already running")
        runs = process.runs
        if process.state is ProcessState.STARTING:
            # Started by someone else: its outcome is what this caller waits for.
            if not wait:
                return result(process, True, "already starting")
        elif not process.start():
            return result(process, False, f"cannot start from {process.state.value}")
        elif not wait:
            return result(process, True, "starting")
        if progress is not None:
            progress(process, "starting")
        await self.sv.wait_for(lambda: process.state is not ProcessState.STARTING, timeout)
        if process.state is ProcessState.RUNNING or process.runs > runs:
            if progress is not None and process.state is ProcessState.RUNNING:
                progress(process, "running")
            return result(process, True, "started")
        if process.state is ProcessState.STARTING:
            return result(process, False, f"still starting after {timeout:g}s")
        return result(process, False, f"ERROR ({process.description()})")

    async def _stop(self, process: Process, wait: bool, timeout: Optional[float],
                    progress: Optional[Progress] = None) -> dict:
        process.held = True  # a dependent waiting for it does not start it again behind the caller's back
        if process.state not in ACTIVE_STATES and process.state is not ProcessState.BACKOFF:
            return result(process, True, "not running")
        process.stop()
        if not wait:
            return result(process, True, "stopping")
        if progress is not None:
            progress(process, "stopping")
        if await self.sv.wait_for(lambda: not process.active, timeout):
            if progress is not None:
                progress(process, "stopped")
            return result(process, True, "stopped")
        return result(process, False, f"still stopping after {timeout:g}s")

    async def _restart(self, process: Process, wait: bool, timeout: Optional[float],
                       progress: Optional[Progress] = None) -> dict:
        # One restart of a process at a time, whoever asks: two clients
        # restarting at once get two restarts in a row, never two instances.
        async with self._restart_locks.setdefault(process.name, asyncio.Lock()):
            stopped = await self._stop(process, True, timeout, progress)
            if not stopped["ok"]:
                return stopped
            if self.sv.state is DaemonState.SHUTTING_DOWN:
                return result(process, False, "superd is shutting down")
            return await self._start(process, wait, timeout, progress)

    async def _rolling(self, processes: list[Process], timeout: Optional[float],
                       progress: Optional[Progress] = None) -> list[dict]:
        # The next instance stops only once the one before is running and
        # ready again, so a pool of N keeps N - 1 serving; the first that
        # fails ends it, the rest keep running.
        results: list[dict] = []
        for index, process in enumerate(processes):
            async with self._restart_locks.setdefault(process.name, asyncio.Lock()):
                outcome = await self._stop(process, True, timeout, progress)
                if outcome["ok"] and self.sv.state is not DaemonState.SHUTTING_DOWN:
                    outcome = await self._start(process, True, timeout, progress)
                if outcome["ok"] and not process.ready:
                    reached = await self.sv.wait_for(lambda: process.ready or not process.active, timeout)
                    if not (reached and process.ready):
                        outcome = result(process, False, f"not ready ({process.description()})")
                if outcome["ok"] and progress is not None:
                    progress(process, f"ready ({index + 1} of {len(processes)})")
            results.append(outcome)
            if not outcome["ok"]:
                results += [result(rest, False, f"not restarted: the rolling restart stopped at {process.name}")
                            for rest in processes[index + 1:]]
                break
        return results

