"""The supervisor: owns every process, superd's state, its signals and its waits.

One asyncio loop drives everything. Processes reach the world through the
:class:`~supervisor.daemon.runtime.ProcessRuntime`; the
:class:`~supervisor.daemon.pid1.Reaper` alone collects exit statuses; the
shutdown, reload and command API live in their own modules and work on this
object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Callable, Iterable, Optional

from . import heap, ownlog, pid1, priority, runstate, tracking
from .commands import Commands
from .events import Events
from .hooks import Hooks
from .listeners import Listeners
from .mainlog import MainLog
from .notify import Notifier
from .reserve import Reserve
from .runtime import ProcessRuntime
from .shutdown import Shutdown
from .signal_actions import SignalActions
from .statefile import StateFile
from .sockets import Sockets
from .stdin import StdinPipes
from .waits import Waits
from ..config import Config, ConfigError
from ..core.names import grouped, select
from ..core.process import Process
from ..core.states import ACTIVE_STATES, DaemonState, ProcessState
from .. import output

log = logging.getLogger("superd")

#: Start-up spawns this many processes, then lets signals and requests in.
START_SLICE = 50


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        single: bool = False,
        environ: Optional[dict] = None,
        notifier: Optional[Notifier] = None,
        runtime=None,
        mainlog: Optional[MainLog] = None,
    ) -> None:
        self.config = config
        self.single = single
        self.environ = dict(os.environ if environ is None else environ)
        self.notifier = notifier or Notifier(self.environ)
        self.state = DaemonState.STARTING
        self.since = time.time()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        # The processes' runtime: the real one, or a fake that plays the kernel (tests).
        self.runtime = runtime if runtime is not None else ProcessRuntime(self)
        self.processes: dict[str, Process] = {inst.name: Process(inst, self.runtime) for inst in config.instances}
        self.reaper = pid1.Reaper(self.runtime.collected)
        self.server = None  # the control server, when there is a socket
        self.http = None  # the HTTP server ([http]: XML-RPC, metrics), made by cli.superd
        self.commands = Commands(self)
        self.shutdown = Shutdown(self)
        self.exit_code = 0
        self.foreground_tty: Optional[int] = None
        self.outputs = output.Outputs()  # program output: pipes, log files, console, tail
        self.stdin = StdinPipes()  # the stdin pipes of programs with stdin = true
        self.mainlog = mainlog or MainLog()  # superd's own log: its log_file, its lines for maintail
        # The run directory's lock and state file; single-program mode has none.
        self.rundir: Optional[runstate.RunDir] = None if single else runstate.RunDir(config.daemon.run_dir)
        self.statefile = StateFile(self, self.rundir)
        self.reserve = Reserve(0)  # spare descriptors, taken when superd runs
        self.sockets = Sockets()  # [socket.NAME]: bound when superd runs, held across restarts
        self.events = Events(time.time)  # what superd sees: the ring, followers, listeners, hooks
        self.hooks = Hooks(self)  # before_start and after_stop
        self.listeners = Listeners(self)  # supervisord's event listener protocol (events = [...])
        self.events.subscribers += [self.hooks.on_event, self.listeners.on_event]
        self.reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self.signals = SignalActions(self)  # what superd does on each signal, while it runs
        self.waits = Waits(self)  # what waits for a state change: requests, dependents, sd_notify's STATUS
        self._done: Optional[asyncio.Future] = None
        # (group -> its processes, program -> its instances), made when a name is first resolved
        self._names: Optional[tuple[dict[str, list[Process]], dict[str, list[Process]]]] = None
        self.starting = ""  # start-up's progress, while it lasts
        # superd's own nice value, raised in run()
        self.priority = priority.OwnPriority(lambda: self.config.daemon.nice,
                                             priority.Scheduler() if priority.usable() else None)

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Run until shut down; returns superd's exit code."""
        self.loop = asyncio.get_running_loop()
        self.loop.set_exception_handler(ownlog.loop_error)
        self.outputs.timestamps = self.config.daemon.log_timestamps
        self.outputs.configure(self.processes, self.loop)  # console prefix width, the loop
        self.mainlog.use_loop(self.loop)
        self._done = self.loop.create_future()
        self.reserve = Reserve()
        self.events.emit("daemon", to_state=self.state.value, reason=f"superd starting (pid {os.getpid()})")
        if self.rundir is not None:
            self.rundir.lock()  # raises runstate.Locked: another superd owns the run directory
        try:
            self.priority.apply()  # above its programs from now on (daemon/priority.py)
            self.signals.install()
            self.reaper.reap()  # anything that died before the handler was there
            if self.rundir is not None and self.rundir.left_behind():
                # What a killed superd left running goes before anything starts.
                from . import recovery

                await recovery.recover(self.rundir, self.config, lambda: self.shutdown.escalated)
            try:  # after recovery (a killed superd's programs may hold the ports), before any start
                self.sockets.open(self.config.sockets)
            except ConfigError as exc:
                log.error("cannot bind the sockets; nothing started:\n%s", exc)
                return 2
            tracker = self.runtime.tracker = tracking.choose(self.config.daemon.cgroups, self.loop)
            tracker.on_change = self.runtime._run_changed
            log.info("process tracking: %s", tracker.description)
            from .cgroup_limits import prepare  # memory_max, cpu_max, pids_max

            refused = prepare(tracker, self.config)
            if refused:
                log.error("invalid config: cgroup limits this system cannot give; nothing started:\n%s", refused)
                return 2
            self.statefile.start()
            if self.server is not None:
                await self.server.start()
            if self.http is not None:
                await self.http.start()
            await self._start_all()
            if self.state is DaemonState.STARTING:
                self.set_state(DaemonState.RUNNING)
                self.background(self._announce_ready())
                if self.signals.reload_pending:
                    self.signals.on_hup()
            if self.notifier.watchdog_usec:
                self._watchdog()
            try:
                return await self._done
            finally:
                self.commands.close()
                self.events.close()
                if self.server is not None:
                    await self.server.close()
                if self.http is not None:
                    await self.http.close()
                self.notifier.close()
                if self.runtime.checks is not None:
                    self.runtime.checks.close()
        finally:
            self.hooks.close()
            self.listeners.close()
            self.stdin.close_all()
            self._close_tracking()
            self.sockets.close()
            self.reserve.release_all()
            # Last: a late signal meanwhile is one more shutdown request, not
            # the default action that would leave the socket and cgroups behind.
            self.signals.remove()

    def finish(self) -> None:
        """The shutdown is over: :meth:`run` returns the exit code."""
        if self._done is not None and not self._done.done():
            self._done.set_result(self.exit_code)

    @property
    def finished(self) -> bool:
        return self._done is not None and self._done.done()

    async def _start_all(self) -> None:
        """Spawn every autostart instance, lowest priority number first, in
        slices: between two slices signals and control requests get in, and a
        shutdown stops the start-up (what started is stopped, nothing more is
        spawned)."""
        order = [p for p in sorted(self.processes.values(), key=lambda p: (p.config.program.priority, p.name))
                 if p.config.program.autostart]
        tracker = self.runtime.tracker
        for first in range(0, len(order), START_SLICE):
            if first:
                self.starting = f"starting: {first} of {len(order)} started"
                self.notifier.send(STATUS=self.starting)
                await asyncio.sleep(0)
            # One slice spawns with nothing in between: superd hops from one
            # program's cgroup to the next and goes home once (tracking.batch).
            with tracker.batch() if tracker is not None else contextlib.nullcontext():
                for index in range(first, min(first + START_SLICE, len(order))):
                    if self.state is DaemonState.SHUTTING_DOWN:
                        log.info("start-up interrupted: %d of %d not started", len(order) - index, len(order))
                        self.starting = ""
                        return
                    order[index].start()
        self.starting = ""
        heap.trim("the start-up")

    def background(self, coroutine) -> asyncio.Task:
        """Run a coroutine alongside, keeping a reference until it is done."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _announce_ready(self) -> None:
        """READY=1 once every autostart process is running (or superd gave up on it)."""
        def settled() -> bool:
            return all(
                p.state in (ProcessState.RUNNING, ProcessState.FATAL, ProcessState.EXITED)
                for p in self.processes.values()
                if p.config.program.autostart
            )

        await self.wait_for(settled)
        if self.state is DaemonState.RUNNING:
            log.info("ready: %s", self.counts())
            self.notifier.send(READY=1, STATUS=self.summary())

    def _watchdog(self) -> None:
        """WATCHDOG=1 every half of systemd's WATCHDOG_USEC, while superd lives."""
        self.notifier.send(WATCHDOG=1)
        self.loop.call_later(self.notifier.watchdog_usec / 2e6, self._watchdog)

    def set_state(self, state: DaemonState) -> None:
        if state is not self.state:
            log.debug("superd: %s -> %s", self.state.value, state.value)
            old, self.state = self.state, state
            self.events.daemon_changed(old, state)
            self.since = time.time()
            self.schedule_check()

    def counts(self) -> str:
        """How many processes are in each state, running first: "1 running, 5 fatal"."""
        counts: dict[ProcessState, int] = {}
        for process in self.processes.values():
            counts[process.state] = counts.get(process.state, 0) + 1
        order = [ProcessState.RUNNING] + [s for s in ProcessState if s is not ProcessState.RUNNING]
        parts = [f"{counts[state]} {state.value}" for state in order if state in counts]
        return ", ".join(parts) if parts else "no programs"

    def summary(self) -> str:
        """superd's state and the counts: "running: 1 running, 5 fatal"."""
        return f"{self.state.value}: {self.counts()}"

    def socket_path(self) -> Optional[str]:
        """The control socket programs may call superctl on, when there is one."""
        return self.config.daemon.socket if self.server is not None else None

    # ------------------------------------------------------------------ requests

    def request_shutdown(self, reason: str, sig: Optional[int] = None) -> None:
        self.shutdown.request(reason, sig)

    def quit_now(self, reason: str = "SIGQUIT") -> None:
        self.shutdown.quit_now(reason)

    async def reload(self, only: Optional[list[str]] = None) -> dict:
        before = {p.group for p in self.processes.values()}
        from . import reload as reloading  # loaded at the first reload, not at every start

        result = await reloading.reload(self, only)
        after = {p.group for p in self.processes.values()}
        self.events.reloaded(result, after - before, before - after)
        heap.trim("the reload")
        return result

    def reopen_logs(self) -> int:
        """SIGUSR2: reopen every program log file and superd's own (logrotate renamed them)."""
        count = self.mainlog.reopen() + self.outputs.reopen()
        log.info("reopened %d log file%s", count, "" if count == 1 else "s")
        return count

    # ------------------------------------------------------------------ process events

    def state_changed(self, process: Process, old: ProcessState) -> None:
        level = logging.WARNING if process.state in (ProcessState.BACKOFF, ProcessState.FATAL) else logging.INFO
        if process.state is ProcessState.EXITED and process.exitstatus not in process.config.program.exitcodes:
            level = logging.WARNING
        if old is process.state:  # the same state for a new reason (a retry, a new backoff)
            log.log(level, "%s: still %s: %s", process.name, old.value, process.reason)
        else:
            log.log(level, "%s: %s -> %s: %s", process.name, old.value, process.state.value, process.reason)
        self.events.process_changed(process, old)
        self.schedule_check()
        if process.active and old not in ACTIVE_STATES:
            # A run began: its pid goes into the state file before this turn
            # ends. An ended run leaves it with the next write: a stale entry is
            # harmless (pid and start time are checked), a missing one is not.
            self.statefile.run_began(process.name)
        if process.ended_for_good and process.config.program.exit_with and self.state is not DaemonState.SHUTTING_DOWN:
            self.exit_code = process.exit_code()
            self.request_shutdown(f"{process.name} ended ({process.reason})")

    # ------------------------------------------------------------------ waiting

    def schedule_check(self) -> None:
        """Look at the waiters (and waiting dependents) once this loop turn ends."""
        self.waits.schedule()

    async def wait_for(self, predicate: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        """Wait until ``predicate()`` holds after a state change; False at the timeout."""
        return await self.waits.wait_for(predicate, timeout)

    # ------------------------------------------------------------------ names

    def resolve(self, names: Iterable[str]) -> list[Process]:
        """Processes named by instance, program, group (``web:*``, ``web:``, ``group:web``),
        ``GROUP:NAME`` or ``all`` (:mod:`supervisor.core.names`); raises NoSuchName."""
        return select(self.processes, *self._index(), names)

    def members(self, program: str) -> list[Process]:
        """The instances of one program."""
        return self._index()[1].get(program, [])

    def _index(self) -> tuple[dict[str, list[Process]], dict[str, list[Process]]]:
        if self._names is None:
            processes = self.processes.values()
            self._names = (grouped(processes, lambda p: p.group), grouped(processes, lambda p: p.config.program.name))
        return self._names

    def processes_changed(self) -> None:
        """A reload replaced the set of processes."""
        self._names = None
        self.outputs.timestamps = self.config.daemon.log_timestamps
        self.outputs.configure(self.processes, self.loop)  # removed programs' files and followers go

    def _close_tracking(self) -> None:
        """superd is ending: its cgroups go, and with nothing left, its state file."""
        self.priority.restore()
        tracker = self.runtime.tracker
        if tracker is not None:
            tracker.close()
        self.statefile.close(tracker)
