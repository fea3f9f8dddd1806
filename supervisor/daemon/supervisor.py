"""The supervisor: owns every process, the reaper, the signals and the shutdown.

One asyncio event loop drives everything. The supervisor is the
:class:`~supervisor.process.Runtime` of its processes: it spawns them, sends
their signals, keeps their timers and hands them their exit statuses, which
only the :class:`~supervisor.pid1.Reaper` collects. What belongs to each run
of a program (its cgroup, or its process group and marked descendants) is the
:mod:`~supervisor.tracking` module's business; the run directory's lock and
state file (crash-only restart) are :mod:`~supervisor.runstate`'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from . import ownlog, pid1, runstate, spawn, tracking
from ..core import shutdown
from .signals import SignalQueue
from ..config.model import Config, ConfigError, InstanceConfig, load
from ..output import outputs as output
from .notify import Notifier, monotonic_usec
from ..config.diff import RESTART_ONLY, compare
from ..core.process import Process, SpawnError, describe_status, signal_name
from ..core.states import ACTIVE_STATES, DaemonState, ProcessState

if TYPE_CHECKING:  # imported when a program first needs them: most configs never do
    from . import readiness
    from .helpers import Helper

log = logging.getLogger("superd")

#: How long leftover descendants get between SIGTERM and SIGKILL at most.
LEFTOVER_GRACE = 2.0
#: After SIGKILL, how long a phase waits for its processes to be reaped.
KILL_WAIT = 1.0


class NoSuchName(LookupError):
    """A name matched no program, instance or group."""


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        single: bool = False,
        environ: Optional[dict] = None,
        notifier: Optional[Notifier] = None,
    ) -> None:
        self.config = config
        self.single = single
        self.environ = dict(os.environ if environ is None else environ)
        self.notifier = notifier or Notifier(self.environ)
        self.state = DaemonState.STARTING
        self.since = time.time()
        self.processes: dict[str, Process] = {
            inst.name: Process(inst, self) for inst in config.instances
        }
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.reaper = pid1.Reaper(self._collected)
        self.server = None  # the control server, when there is a socket
        self.exit_code = 0
        self.foreground_tty: Optional[int] = None
        self._children: dict[int, tuple[Process, subprocess.Popen]] = {}
        self.outputs = output.Outputs()  # program output: pipes, log files, console, tail
        self._captures: dict[int, output.Capture] = {}
        self._identities: dict[str, spawn.Identity] = {}
        # Process tracking, chosen when superd runs (see tracking.choose).
        self.tracker: Optional[tracking.Tracker] = None
        self._runs: dict[str, tracking.Run] = {}  # instance -> its current (or last) run
        # The run directory's lock and state file; single-program mode has none.
        self.rundir: Optional[runstate.RunDir] = None if single else runstate.RunDir(config.daemon.run_dir)
        self._state_scheduled = False
        self._recovered = False  # the previous superd's state file has been dealt with
        self._tasks: set[asyncio.Task] = set()
        self._signals: Optional[SignalQueue] = None  # superd's signal handlers, while it runs
        self._reload_lock = asyncio.Lock()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._check_scheduled = False
        self._shutdown_task: Optional[asyncio.Task] = None
        self._escalated = False
        self._done: Optional[asyncio.Future] = None
        # Readiness and dependencies (see supervisor.readiness).
        self.checks: Optional[readiness.Checks] = None  # notify sockets and probes, once one is needed
        self._helpers: dict[int, Helper] = {}  # pid -> a probe or stop command superd runs
        self._blocked: set[Process] = set()  # processes waiting for their dependencies
        self._groups: Optional[dict[str, list[Process]]] = None  # program -> its instances

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Run until shut down; returns superd's exit code."""
        self.loop = asyncio.get_running_loop()
        self._done = self.loop.create_future()
        if self.rundir is not None:
            self.rundir.lock()  # raises runstate.Refused: another superd owns the run directory
        try:
            self._install_signals()
            self.reaper.reap()  # anything that died before the handler was there
            if self.rundir is not None:
                # What a killed superd left running goes before anything starts.
                await runstate.recover(self.rundir, self.config, lambda: self._escalated)
                self._recovered = True
            self.tracker = tracking.choose(self.config.daemon.cgroups, self.loop)
            self.tracker.on_change = self._run_changed
            log.info("process tracking: %s", self.tracker.description)
            self._write_state()
            if self.server is not None:
                await self.server.start()
            self._start_all()
            if self.state is DaemonState.STARTING:
                self._set_state(DaemonState.RUNNING)
                self._background(self._announce_ready())
            if self.notifier.watchdog_usec:
                self._watchdog()
            try:
                return await self._done
            finally:
                if self.server is not None:
                    await self.server.close()
                self.notifier.close()
                if self.checks is not None:
                    self.checks.close()
        finally:
            self._close_tracking()
            # Last: a late signal meanwhile is one more shutdown request, not
            # the default action that would leave the socket and cgroups behind.
            self._remove_signals()

    def _start_all(self) -> None:
        """Spawn every autostart instance, lowest priority number first."""
        for process in sorted(self.processes.values(), key=lambda p: (p.config.program.priority, p.name)):
            if process.config.program.autostart and self.state is not DaemonState.SHUTTING_DOWN:
                process.start()

    def _background(self, coroutine) -> asyncio.Task:
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
            log.info("ready: %s", self.summary())
            self.notifier.send(READY=1, STATUS=self.summary())

    def _watchdog(self) -> None:
        """WATCHDOG=1 every half of systemd's WATCHDOG_USEC, while superd lives."""
        self.notifier.send(WATCHDOG=1)
        self.loop.call_later(self.notifier.watchdog_usec / 2e6, self._watchdog)

    def _set_state(self, state: DaemonState) -> None:
        if state is not self.state:
            log.debug("superd: %s -> %s", self.state.value, state.value)
            self.state = state
            self.since = time.time()
            self._schedule_check()

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for process in self.processes.values():
            counts[process.state.value] = counts.get(process.state.value, 0) + 1
        parts = [f"{n} {state}" for state, n in sorted(counts.items())]
        return f"{self.state.value}: " + (", ".join(parts) if parts else "no programs")

    # ------------------------------------------------------------------ signals

    def _install_signals(self) -> None:
        self._handle(signal.SIGCHLD, self.reaper.reap)
        if self.single:
            for sig in pid1.forwardable_signals():
                if sig in (signal.SIGTERM, signal.SIGINT):
                    self._handle(sig, self.request_shutdown, f"SIG{sig.name[3:]}", sig)
                else:
                    self._handle(sig, self._forward, sig)
            if self.foreground_tty is not None:
                # Handing the terminal to the program from a background group.
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                signal.signal(signal.SIGTTIN, signal.SIG_IGN)
            return
        self._handle(signal.SIGTERM, self.request_shutdown, "SIGTERM")
        self._handle(signal.SIGINT, self.request_shutdown, "SIGINT")
        self._handle(signal.SIGQUIT, self.quit_now, "SIGQUIT")
        self._handle(signal.SIGHUP, self._on_hup)
        self._handle(signal.SIGUSR2, self._on_usr2)
        self._handle(signal.SIGUSR1, self._ignored, signal.SIGUSR1)

    def _handle(self, sig: int, callback, *args) -> None:
        if self._signals is None:
            self._signals = SignalQueue(self.loop)
            self._signals.open()
        self._signals.add(sig, callback, *args)

    def _remove_signals(self) -> None:
        if self._signals is not None:
            self._signals.close()
            self._signals = None

    def _forward(self, sig: int) -> None:
        for process in self.processes.values():
            if process.signal(sig):
                log.debug("forwarded %s to %s (pid %s)", signal_name(sig), process.name, process.pid)

    def _ignored(self, sig: int) -> None:
        log.info("ignoring %s", signal_name(sig))

    def _on_hup(self) -> None:
        log.info("SIGHUP: reloading %s", self.config.path)
        self._background(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except (ConfigError, ReloadRefused):
            pass  # already logged by reload()

    def _on_usr2(self) -> None:
        log.info("SIGUSR2: reopening log files")
        self.reopen_logs()

    # ------------------------------------------------------------------ Runtime

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, callback)

    def spawn(self, process: Process) -> int:
        if self.state is DaemonState.SHUTTING_DOWN:
            raise SpawnError("superd is shutting down", 1)
        instance = process.config
        identity = self._identity(instance)
        env = spawn.build_environment(instance, self.environ, identity, self._socket_path())
        if instance.ready is not None and instance.ready.kind == "notify":
            try:
                env["NOTIFY_SOCKET"] = self._checks().notify_socket(process, None if identity is None else identity.uid)
            except OSError as exc:
                raise SpawnError(f"cannot make its NOTIFY_SOCKET: {exc.strerror or exc}", 1) from None
        tracker = self._tracker()
        try:
            run = tracker.new_run(instance.name)
        except OSError as exc:
            raise SpawnError(f"cannot make its cgroup: {exc.strerror or exc}", 1) from None
        env[tracking.RUN_ID] = run.token
        capture = self._outputs(instance)
        try:
            with tracker.spawning(run):  # born in its cgroup, where there is one
                popen = spawn.spawn(
                    instance,
                    env,
                    stdin=None if self.single else subprocess.DEVNULL,
                    stdout=capture.stdout,
                    stderr=capture.stderr,
                    identity=identity,
                    foreground_tty=self.foreground_tty if self.single else None,
                )
        except OSError as exc:  # superd could not step into the cgroup
            capture.abort()
            raise SpawnError(f"cannot start it in its cgroup {run.cgroup}: {exc.strerror or exc}", 1) from None
        except BaseException:
            capture.abort()
            raise
        capture.started()
        tracker.started(run, popen.pid)
        self._runs[instance.name] = run
        self._children[popen.pid] = (process, popen)
        if capture is not output.PASSTHROUGH:
            self._captures[popen.pid] = capture
        return popen.pid

    def _from_run(self, process: Process, pid: int, uid: int) -> bool:
        """Did a notify message come from the process's current run?

        A sender that is gone already (``systemd-notify``, a script that sends
        and exits) cannot be looked up: then its user must be the program's.
        """
        run = self._runs.get(process.name)
        member = None if run is None else self._tracker().member(run, pid)
        if member is None:
            identity = self._identities.get(process.config.program.user or "")
            return uid == (identity.uid if identity is not None else os.geteuid())
        return member

    def _identity(self, instance: InstanceConfig) -> Optional[spawn.Identity]:
        user = instance.program.user
        if user is None:
            return None
        if user not in self._identities:
            try:
                self._identities[user] = spawn.lookup_user(user)
            except KeyError:
                raise SpawnError(f"no such user {user!r}", 126) from None
        return self._identities[user]

    def _socket_path(self) -> Optional[str]:
        return self.config.daemon.socket if self.server is not None else None

    def _outputs(self, instance: InstanceConfig):
        """Where a program about to be spawned writes: a capture whose ``stdout``
        and ``stderr`` go to Popen (see :mod:`supervisor.output`)."""
        if self.single:
            return output.PASSTHROUGH  # like tini: straight to superd's own stdout and stderr
        outputs = self.outputs
        outputs.loop = self.loop
        outputs.width = max(map(len, self.processes), default=0)
        outputs.forget(self.processes)  # processes a reload removed
        try:
            return outputs.capture(instance, self.config.daemon.logs_dir)
        except OSError as exc:  # out of descriptors, most likely
            raise SpawnError(f"cannot make pipes for its output: {exc.strerror or exc}", 1) from None

    def restarts_allowed(self) -> bool:
        return self.state is not DaemonState.SHUTTING_DOWN

    def reason_changed(self, process: Process) -> None:
        log.info("%s: %s", process.name, process.reason)
        self._schedule_check()

    def watch_ready(self, process: Process) -> None:
        self._checks().watch(process)

    def unwatch_ready(self, process: Process) -> None:
        self._checks().unwatch(process.name)

    def _checks(self) -> readiness.Checks:
        if self.checks is None:
            from . import readiness

            self.checks = readiness.Checks(self.loop, os.path.join(self.config.daemon.run_dir, "notify"),
                                           lambda name: self.processes.get(name), self._run_helper, self._from_run)
        return self.checks

    def dependencies(self, process: Process, request: bool) -> tuple[list[tuple[str, str]], Optional[str]]:
        waiting = []
        for group, condition, _ in process.config.program.depends_on:
            for dependency in self._group(group):
                if dependency.satisfies(condition):
                    continue
                if dependency.state is ProcessState.FATAL or (
                        dependency.state is ProcessState.EXITED and dependency.ended_for_good):
                    self._blocked.discard(process)
                    return [], f"{dependency.name} is {dependency.state.value} ({dependency.reason})"
                if (dependency.state in (ProcessState.STOPPED, ProcessState.EXITED)
                        and (request or not dependency.held)
                        and self.restarts_allowed() and not dependency.retired):
                    log.info("%s: starting %s, which it depends on", process.name, dependency.name)
                    dependency.start()
                    if dependency.satisfies(condition):
                        continue
                waiting.append((dependency.name, condition))
        if waiting:
            self._blocked.add(process)
        else:
            self._blocked.discard(process)
        return waiting, None

    def _group(self, name: str) -> list[Process]:
        if self._groups is None:
            self._groups = {}
            for process in self.processes.values():
                self._groups.setdefault(process.group, []).append(process)
        return self._groups.get(name, [])

    def run_command(self, process: Process, command: tuple[str, ...], timeout: float) -> Optional[Helper]:
        shown = " ".join(command)

        def done(code: Optional[int], output: str) -> None:
            how = f"killed after {timeout:g}s" if code is None else f"exited with code {code}"
            log.log(logging.INFO if code == 0 else logging.WARNING, "%s: stop command %s %s%s",
                    process.name, shown, how, f": {output}" if output else "")

        log.info("%s: running stop command %s", process.name, shown)
        try:
            return self._run_helper(process, command, timeout, done, {"MAINPID": str(process.pid or "")})
        except SpawnError as exc:
            log.warning("%s: cannot run stop command %s: %s", process.name, shown, exc)
            return None

    def _run_helper(self, process: Process, command: tuple[str, ...], timeout: float, on_exit,
                    extra: Optional[dict] = None) -> Helper:
        """Run a probe or stop command with the program's settings; superd's reaper collects it."""
        instance = process.config
        identity = self._identity(instance)
        env = spawn.build_environment(instance, self.environ, identity, self._socket_path())
        env.update(extra or {})
        popen = spawn.spawn(instance, env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, identity=identity, command=command)
        from .helpers import Helper

        helper = Helper(popen, self.loop, timeout, on_exit)
        self._helpers[popen.pid] = helper
        return helper

    def send(self, target: int, sig: int, group: bool) -> None:
        try:
            if group:
                os.killpg(target, sig)
            else:
                os.kill(target, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:  # pragma: no cover - only with foreign pids
            log.warning("cannot send %s to %s %d: %s", signal_name(sig), "group" if group else "pid", target, exc)

    def _tracker(self) -> tracking.Tracker:
        if self.tracker is None:  # not running yet (tests that drive a Supervisor by hand)
            self.tracker = tracking.choose(self.config.daemon.cgroups, self.loop)
            self.tracker.on_change = self._run_changed
        return self.tracker

    def group_alive(self, process: Process) -> bool:
        run = self._runs.get(process.name)
        return run is not None and self._tracker().alive(run)

    def group_watched(self, process: Process) -> bool:
        return self._tracker().watched

    def signal_rest(self, process: Process, sig: int, group_done: bool) -> None:
        run = self._runs.get(process.name)
        if run is not None:
            if sig != signal.SIGCONT:
                log.info("%s: sending %s to what is left of it", process.name, signal_name(sig))
            self._tracker().signal_rest(run, sig, group_done)

    def kill_group(self, process: Process) -> None:
        run = self._runs.get(process.name)
        if run is not None:
            self._tracker().kill(run)

    def _run_changed(self, name: str) -> None:
        """The tracker saw something of ``name``'s run end (its cgroup emptied)."""
        process = self.processes.get(name)
        if process is not None:
            process.group_changed()

    def usage(self, process: Process) -> dict:
        """What the tracker knows of the process's resources, for ``status``."""
        if self.tracker is None:
            return tracking.Tracker().usage(process.name)
        return self.tracker.usage(process.name)

    # ------------------------------------------------------------------ state file

    def _schedule_state(self) -> None:
        """Write the state file at the end of this event-loop turn (once)."""
        if self.rundir is not None and self._recovered and not self._state_scheduled and self.loop is not None:
            self._state_scheduled = True
            self.loop.call_soon(self._write_state)

    def _state(self) -> dict:
        tracker = self.tracker.state() if self.tracker is not None else {"mode": None, "cgroup_root": None}
        runs = [self._runs[p.name].record() for p in self.processes.values() if p.active and p.name in self._runs]
        return {"version": runstate.VERSION, "superd": runstate.superd_record(), **tracker, "processes": runs}

    def _write_state(self) -> None:
        self._state_scheduled = False
        if self.rundir is not None and self._recovered:
            self.rundir.write(self._state())

    def _close_tracking(self) -> None:
        """superd is ending: its cgroups go, and with nothing left, its state file."""
        if self.tracker is not None:
            self.tracker.close()
        if self.rundir is not None:
            if self._recovered:
                state = self._state()
                if state["processes"] and self.tracker is not None and not self.tracker.empty():
                    self.rundir.write(state)  # what could not be stopped, for the next superd
                else:
                    self.rundir.remove()
            self.rundir.unlock()

    def state_changed(self, process: Process, old: ProcessState) -> None:
        level = logging.WARNING if process.state in (ProcessState.BACKOFF, ProcessState.FATAL) else logging.INFO
        if process.state is ProcessState.EXITED and process.exitstatus not in process.config.program.exitcodes:
            level = logging.WARNING
        log.log(level, "%s: %s -> %s: %s", process.name, old.value, process.state.value, process.reason)
        self._schedule_check()
        if process.active and old not in ACTIVE_STATES:
            # A run began: its pid goes into the state file before this turn
            # ends. An ended run leaves it with the next write: a stale entry is
            # harmless (pid and start time are checked), a missing one is not.
            self._schedule_state()
        if process.ended_for_good and process.config.program.exit_with and self.state is not DaemonState.SHUTTING_DOWN:
            self.exit_code = process.exit_code()
            self.request_shutdown(f"{process.name} ended ({process.reason})")

    # ------------------------------------------------------------------ reaping

    def _collected(self, pid: int, status: int) -> None:
        entry = self._children.pop(pid, None)
        if entry is None and pid in self._helpers:
            self._helpers.pop(pid).exited(status)
            return
        if entry is None:
            log.debug("reaped orphan pid %d (%s)", pid, describe_status(status)[1])
            for process in self.processes.values():
                process.group_changed()
            return
        process, popen = entry
        spawn.forget(popen, status)
        capture = self._captures.pop(pid, None)
        if capture is None:
            process.exited(status)
            return

        def hand_over() -> None:
            if not capture.done:
                log.debug("%s: a descendant still holds its output open; going on without waiting", process.name)
            process.exited(status)

        # The last lines before the exit reach the log before the exit is known.
        capture.after_exit(hand_over)

    # ------------------------------------------------------------------ output

    def reopen_logs(self) -> int:
        """SIGUSR2: reopen every program log file (logrotate renamed them)."""
        count = self.outputs.reopen()
        log.info("reopened %d log file%s", count, "" if count == 1 else "s")
        return count

    async def tail(self, params: dict, writer) -> dict:
        """The ``tail`` method: ``{name, stream?, lines?, follow?}`` -> ``{lines}``.

        With ``follow``, new lines go to ``writer`` as ``tail`` notifications
        until the client closes the connection.
        """
        from ..control import protocol
        from ..control.server import RpcError

        def invalid(message: str) -> RpcError:
            return RpcError(protocol.INVALID_PARAMS, message)

        allowed = ("name", "stream", "lines", "follow")
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise invalid(f"unknown param(s): {', '.join(unknown)}; expected: {', '.join(allowed)}")
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("'name' is required: a program or instance name")
        which = params.get("stream", "stdout")
        if which not in ("stdout", "stderr"):
            raise invalid("'stream' must be \"stdout\" or \"stderr\"")
        count = params.get("lines", 10)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise invalid("'lines' must be an integer >= 0")
        follow = params.get("follow", False)
        if not isinstance(follow, bool):
            raise invalid("'follow' must be true or false")
        processes = self.resolve([name])
        if len(processes) != 1:
            names = ", ".join(p.name for p in processes)
            raise invalid(f"{name} names {len(processes)} processes ({names}): tail one of them")
        process = processes[0]
        if self.single:
            raise RpcError(protocol.FAILED, f"{process.name} writes straight to superd's own output "
                                            "in single-program mode: there is nothing to tail")
        self.outputs.loop = self.loop
        stream = self.outputs.stream(process.config, which, self.config.daemon.logs_dir)
        try:
            lines = stream.last_lines(min(count, output.MAX_TAIL_LINES))
        except OSError as exc:
            raise RpcError(protocol.FAILED, f"cannot read {stream.path}: {exc.strerror or exc}") from None
        if follow:
            self.outputs.follow(stream, writer)
        return {"lines": [line.decode("utf-8", "replace") for line in lines]}

    # ------------------------------------------------------------------ waiting

    def _schedule_check(self) -> None:
        if not self._check_scheduled and self.loop is not None:
            self._check_scheduled = True
            self.loop.call_soon(self._check_waiters)

    def _check_waiters(self) -> None:
        self._check_scheduled = False
        for process in list(self._blocked):
            if process.waiting_for and process.state is ProcessState.STARTING and process.pid is None:
                process.dependencies_changed()
            else:
                self._blocked.discard(process)
        if self._waiters:
            still = []
            for predicate, future in self._waiters:
                if future.done():
                    continue
                if predicate():
                    future.set_result(True)
                else:
                    still.append((predicate, future))
            self._waiters = still
        if self.notifier.enabled:
            self.notifier.send(STATUS=self.summary())

    async def wait_for(self, predicate: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        """Wait until ``predicate()`` holds after a state change; False at the timeout."""
        if predicate():
            return True
        if timeout is not None and timeout <= 0:
            return False
        future = self.loop.create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return predicate()
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    async def _poll_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Poll ``condition`` (5 ms doubling to 100 ms) for at most ``timeout`` seconds.

        For things no event announces, like the last member of a process group
        that is not superd's child; used only while something is being stopped.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        delay = 0.005
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
        return True

    # ------------------------------------------------------------------ names

    def resolve(self, names: Iterable[str]) -> list[Process]:
        """Processes named by instance, program, ``group:*`` or ``all``, in config order."""
        chosen: dict[str, Process] = {}
        for name in names:
            matched = self._match(name)
            if not matched:
                raise NoSuchName(name)
            for process in matched:
                chosen.setdefault(process.name, process)
        return list(chosen.values())

    def _match(self, name: str) -> list[Process]:
        if name == "all":
            return list(self.processes.values())
        if name in self.processes:
            return [self.processes[name]]
        group = name[:-2] if name.endswith(":*") else name
        return [p for p in self.processes.values() if p.group == group]

    # ------------------------------------------------------------------ shutdown

    def request_shutdown(self, reason: str, sig: Optional[int] = None) -> None:
        """Graceful shutdown; asked again while shutting down, SIGKILL what is left."""
        if self._shutdown_task is not None:
            if not self._escalated:
                log.warning("%s during shutdown: killing what is left", reason)
                self._escalate()
            return
        log.info("%s: shutting down (timeout %gs)", reason, self.config.daemon.shutdown_timeout)
        self._set_state(DaemonState.SHUTTING_DOWN)
        self.notifier.send(
            STOPPING=1,
            STATUS=f"shutting down: {reason}",
            EXTEND_TIMEOUT_USEC=int((self.config.daemon.shutdown_timeout + 5) * 1e6),
        )
        self._shutdown_task = asyncio.ensure_future(self._shutdown(sig))

    def quit_now(self, reason: str = "SIGQUIT") -> None:
        """Immediate shutdown: SIGKILL everything, exit."""
        log.warning("%s: killing everything now", reason)
        if self._shutdown_task is None:
            self._set_state(DaemonState.SHUTTING_DOWN)
            self.notifier.send(STOPPING=1, STATUS=f"killing everything: {reason}")
            self._shutdown_task = asyncio.ensure_future(self._shutdown(None))
        self._escalate()

    def _escalate(self) -> None:
        self._escalated = True
        for process in self.processes.values():
            if process.pid is not None and process.pgid is not None and process.active:
                # Only while the leader lives is its pgid surely still its group.
                self.send(process.pgid, signal.SIGKILL, True)
            process.kill()
        if self.tracker is not None:
            self.tracker.kill_everything()
        pid1.send_all(pid1.descendants(), signal.SIGKILL)

    async def _shutdown(self, sig: Optional[int]) -> None:
        try:
            await self._stop_everything(sig)
        except Exception:  # pragma: no cover - last line of defence
            log.exception("shutdown failed; killing what is left")
            self.exit_code = 1
            pid1.send_all(pid1.descendants(), signal.SIGKILL)
        if self.single:
            (process,) = self.processes.values()
            self.exit_code = process.exit_code()
        self.reaper.reap()  # stragglers
        log.info("superd exits with code %d", self.exit_code)
        if self._done is not None and not self._done.done():
            self._done.set_result(self.exit_code)

    async def _stop_everything(self, sig: Optional[int]) -> None:
        timeout = self.config.daemon.shutdown_timeout
        started = time.monotonic()
        end = started + timeout - shutdown.reserve(timeout)  # when the phases must be over

        # A reload may still be rearranging self.processes: work on a snapshot.
        processes = dict(self.processes)
        for process in processes.values():
            if process.state is ProcessState.BACKOFF:
                process.stop()

        phases = shutdown.plan(
            (shutdown.StopItem(p.name, p.config.program.priority, p.config.stop_time())
             for p in processes.values() if p.active),
            self._dependency_names(processes.values()),
        )
        for index, phase in enumerate(phases):
            now = time.monotonic()
            later = [ph.want for ph in phases[index + 1 :]]
            budget = 0.0 if self._escalated else shutdown.phase_budget(phase.want, later, end - now)
            members = [processes[name] for name in phase.names]
            log.info(
                "stopping %s (priority %d, up to %.2fs)", ", ".join(phase.names), phase.priority, budget
            )
            for process in members:
                process.stop(budget, sig)
            if index == 0:
                pid1.warm_up()  # while the programs are stopping, not after
            limit = min(end - now, budget + KILL_WAIT)
            if not await self.wait_for(lambda: not any(p.active for p in members), max(0.0, limit)):
                stuck = [p.name for p in members if p.active]
                log.error("still not gone after SIGKILL: %s", ", ".join(stuck))

        await self._stop_leftovers(started + timeout)

    def _dependency_names(self, processes: Iterable[Process]) -> dict[str, list[str]]:
        """Instance -> the instances it depends on."""
        return {
            p.name: [d.name for dependency in p.config.program.depends_on for d in self._group(dependency.program)]
            for p in processes if p.config.program.depends_on
        }

    async def _stop_leftovers(self, deadline: float) -> None:
        """TERM, then KILL, whatever descendants are still around."""
        left = pid1.descendants()
        if not left:
            return
        grace = 0.0 if self._escalated else min(LEFTOVER_GRACE, (deadline - time.monotonic()) * 0.5)
        if grace > 0:
            log.info("sending SIGTERM to %d leftover process(es): %s", len(left), _pids(left))
            pid1.send_all(left, signal.SIGTERM)
            pid1.send_all(left, signal.SIGCONT)
            if await self._poll_until(lambda: not pid1.descendants(), grace):
                return
            left = pid1.descendants()
        log.warning("sending SIGKILL to %d leftover process(es): %s", len(left), _pids(left))
        pid1.send_all(left, signal.SIGKILL)
        await self._poll_until(lambda: not pid1.descendants(), max(0.05, deadline - time.monotonic()))

    # ------------------------------------------------------------------ reload

    async def reload(self) -> dict:
        """Re-read the config and apply the difference; an invalid config changes nothing.

        Removed instances stop (with their own stop settings), changed ones stop
        and start again with the new settings, added ones start (autostart);
        untouched ones keep running with the same pid.
        """
        if self.single or self.config.path is None:
            raise ReloadRefused("single-program mode has no config to reload")
        async with self._reload_lock:
            if self.state is DaemonState.SHUTTING_DOWN:
                raise ReloadRefused("superd is shutting down")
            if self.state is DaemonState.STARTING:
                raise ReloadRefused("superd is still starting; reload once it runs")
            try:
                new = load(self.config.path, self.environ)  # a few ms: no need to leave the loop
            except ConfigError as exc:
                log.error("reload refused, nothing changed: invalid config:\n%s", exc)
                raise
            difference = compare(self.config, new)
            if difference.empty:
                log.info("reload: no changes")
                return difference.as_dict()
            log.info(
                "reload: added %s; removed %s; changed %s",
                ", ".join(difference.added) or "none",
                ", ".join(difference.removed) or "none",
                ", ".join(difference.changed) or "none",
            )
            later = [key for key in difference.daemon_changed if key in RESTART_ONLY]
            if later:
                log.warning("reload: %s take effect when superd starts again", ", ".join(later))
            self._set_state(DaemonState.RELOADING)
            self.notifier.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec(), STATUS="reloading")
            try:
                await self._apply(new, difference)
            finally:
                if self.state is DaemonState.RELOADING:
                    self._set_state(DaemonState.RUNNING)
                    self.notifier.send(READY=1, STATUS=self.summary())
            return difference.as_dict()

    async def _apply(self, new: Config, difference) -> None:
        leaving = [self.processes[name] for name in difference.removed + difference.changed]
        restart = {name for name in difference.changed if self.processes[name].active}
        for process in leaving:
            process.stop()
            process.retired = True  # a request still holding it must not start it again
        await self.wait_for(lambda: not any(p.active for p in leaving))
        if self.state is DaemonState.SHUTTING_DOWN:
            return  # the shutdown owns the processes now
        self.config = new
        if {"log_level", "log_format"} & set(difference.daemon_changed):
            ownlog.setup(new.daemon.log_level, new.daemon.log_format)
        if self.server is not None:
            self.server.configure(new.daemon)
        instances = {i.name: i for i in new.instances}
        if self.checks is not None:
            for name in difference.removed + difference.changed:
                self.checks.forget(name)  # a changed program gets a fresh NOTIFY_SOCKET
        for name in difference.removed:
            del self.processes[name]
            self._runs.pop(name, None)
            if self.tracker is not None:
                self.tracker.forget(name)  # its cgroup goes with it
        fresh = [Process(instances[name], self) for name in difference.added + difference.changed]
        # Keep the config's order: the dict order is what status lists.
        for process in fresh:
            self.processes[process.name] = process
        self.processes = {name: self.processes[name] for name in instances}
        self._groups = None
        self.outputs.forget(self.processes)  # removed programs' files and followers
        for process in sorted(fresh, key=lambda p: (p.config.program.priority, p.name)):
            if self.state is DaemonState.SHUTTING_DOWN:
                break
            if process.config.program.autostart or process.name in restart:
                process.start()


class ReloadRefused(Exception):
    """A reload that cannot happen now (single-program mode, shutting down)."""


def _pids(pids: list[int]) -> str:
    shown = ", ".join(str(p) for p in pids[:10])
    return shown + (f" and {len(pids) - 10} more" if len(pids) > 10 else "")
