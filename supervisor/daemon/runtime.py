"""The real :class:`~supervisor.core.runtime.Runtime`: what a process's state
machine asks of the world, done with fork, signals, the event loop's timers,
process tracking, readiness checks and helper processes.

It keeps what belongs to each spawn (the child, its output capture, its run)
and hands the reaper's exit statuses back to the processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

from . import procfs, spawn, tracking
from .kill import send, send_group
from ..core.dependencies import Resolution, resolve
from ..core.errors import SpawnError
from ..core.process import Process, describe_status, signal_name
from ..core.states import ACTIVE_STATES, DaemonState, ProcessState
from .. import output

if TYPE_CHECKING:  # imported when a program first needs them: most configs never do
    from . import health, readiness
    from .helpers import Helper

log = logging.getLogger("superd")


class Child(NamedTuple):
    """A spawned process superd is the parent of, until it is reaped."""

    process: Process
    popen: subprocess.Popen
    capture: object  # its output capture, or output.PASSTHROUGH


class ProcessRuntime:
    """The runtime of every :class:`Process` of one supervisor."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self.children: dict[int, Child] = {}
        self.helpers: dict[int, "Helper"] = {}  # pid -> a probe or stop command superd runs
        self.identities: dict[str, spawn.Identity] = {}
        self.tracker: Optional[tracking.Tracker] = None  # chosen when superd runs (tracking.choose)
        self.runs: dict[str, tracking.Run] = {}  # instance -> its current (or last) run
        self.checks: Optional["readiness.Checks"] = None  # notify sockets and probes, once one is needed
        self.monitors: Optional["health.Monitors"] = None  # alive checks and memory_restart, once one is needed
        self.blocked: set[Process] = set()  # index of the processes waiting for their dependencies

    # -- clock and timers --------------------------------------------------------

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.sv.loop.call_later(delay, callback)

    def restarts_allowed(self) -> bool:
        return self.sv.state is not DaemonState.SHUTTING_DOWN

    def state_changed(self, process: Process, old: ProcessState) -> None:
        self.sv.state_changed(process, old)

    def reason_changed(self, process: Process) -> None:
        log.info("%s: %s", process.name, process.reason)
        self.sv.schedule_check()
        self.sv.events.process_noted(process)

    def health_changed(self, process: Process, old: str, why: str) -> None:
        new = process.health.state
        log.log(logging.WARNING if new == "unhealthy" else logging.INFO, "%s: %s -> %s: %s",
                process.name, old, new, why)
        self.sv.events.health_changed(process, old, why)

    # -- spawning -----------------------------------------------------------------

    def spawn(self, process: Process) -> int:
        sv = self.sv
        if sv.state is DaemonState.SHUTTING_DOWN:
            raise SpawnError("superd is shutting down", 1)
        instance = process.config
        identity = self._identity(instance)
        env = spawn.build_environment(instance, sv.environ, identity, sv.socket_path())
        if instance.ready is not None and instance.ready.kind == "notify":
            try:
                env["NOTIFY_SOCKET"] = self._checks().notify_socket(process, None if identity is None else identity.uid)
            except OSError as exc:
                raise SpawnError(f"cannot make its NOTIFY_SOCKET: {exc.strerror or exc}", 1) from None
            if instance.program.watchdog:  # WATCHDOG_PID is set in the child (spawn)
                env["WATCHDOG_USEC"] = str(int(instance.program.watchdog * 1e6))
        tracker = self._tracker()
        try:
            run = tracker.new_run(instance.name)
        except OSError as exc:
            raise SpawnError(f"cannot make its cgroup: {exc.strerror or exc}", 1) from None
        program = instance.program
        if run.cgroup is not None and (program.memory_max or program.cpu_max or program.pids_max):
            from .cgroup_limits import apply

            try:
                apply(run.cgroup, program)
            except OSError as exc:
                raise SpawnError(f"cannot set its cgroup limits: {exc.strerror or exc}", 1) from None
            tracker.limited(run)
        env[tracking.RUN_ID] = run.token
        capture = self._capture(instance)
        # An event listener (events = [...]) talks to superd on its stdin and stdout (daemon/listeners.py).
        stdin, stdout, channel = sv.listeners.stdio(process, capture)
        pipe = self._stdin_pipe(instance.name, capture) if instance.program.stdin else None
        if pipe is not None:
            stdin = pipe.child_fd
        before = procfs.boot_ns()
        try:
            with tracker.spawning(run):  # born in its cgroup, where there is one
                popen = spawn.spawn(
                    instance,
                    env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=capture.stderr,
                    identity=identity,
                    foreground_tty=sv.foreground_tty if sv.single else None,
                    listen=sv.sockets.fds(instance.program.sockets),
                )
        except OSError as exc:  # superd could not step into the cgroup
            capture.abort()
            if channel is not None:
                channel.abort()
            if pipe is not None:
                sv.stdin.close(instance.name)
            raise SpawnError(f"cannot start it in its cgroup {run.cgroup}: {exc.strerror or exc}", 1) from None
        except BaseException:
            capture.abort()
            if channel is not None:
                channel.abort()
            if pipe is not None:
                sv.stdin.close(instance.name)
            raise
        capture.started()
        if channel is not None:
            channel.started()
        if pipe is not None:
            pipe.started()
        tracker.started(run, popen.pid)
        run.start = procfs.start_between(before, procfs.boot_ns())  # None: the state file reads /proc
        self.runs[instance.name] = run
        self.children[popen.pid] = Child(process, popen, capture)
        return popen.pid

    def _identity(self, instance) -> Optional[spawn.Identity]:
        user = instance.program.user
        if user is None:
            return None
        if user not in self.identities:
            try:
                self.identities[user] = spawn.lookup_user(user)
            except KeyError:
                raise SpawnError(f"no such user {user!r}", 126) from None
        return self.identities[user]

    def _stdin_pipe(self, name: str, capture):
        """A fresh stdin pipe (``stdin = true``) for a spawn of ``name``."""
        try:
            return self.sv.stdin.open(name)
        except OSError as exc:  # out of descriptors, most likely
            capture.abort()
            raise SpawnError(f"cannot make a pipe for its stdin: {exc.strerror or exc}", 1) from None

    def _capture(self, instance):
        """Where a program about to be spawned writes: a capture whose ``stdout``
        and ``stderr`` go to Popen (see :mod:`supervisor.output`)."""
        if self.sv.single:
            return output.PASSTHROUGH  # like tini: straight to superd's own stdout and stderr
        try:
            return self.sv.outputs.capture(instance, self.sv.config.daemon.logs_dir)
        except OSError as exc:  # out of descriptors, most likely
            raise SpawnError(f"cannot make pipes for its output: {exc.strerror or exc}", 1) from None

    # -- signals and what is left of a run ----------------------------------------

    def send(self, target: int, sig: int, group: bool) -> None:
        if group:
            send_group(target, sig)
        else:
            send(target, sig)

    def _tracker(self) -> tracking.Tracker:
        if self.tracker is None:  # not running yet (tests that drive a Supervisor by hand)
            self.tracker = tracking.choose(self.sv.config.daemon.cgroups, self.sv.loop)
            self.tracker.on_change = self._run_changed
        return self.tracker

    def group_alive(self, process: Process) -> bool:
        run = self.runs.get(process.name)
        if run is None:
            return False
        if process.pid is None and run.reaped and not self.restarts_allowed():
            return not self._tracker().retire(run)  # shutting down: no other run of it will start
        return self._tracker().alive(run)

    def group_watched(self, process: Process) -> bool:
        run = self.runs.get(process.name)
        return run is not None and self._tracker().watch(run)

    def signal_rest(self, process: Process, sig: int, group_done: bool) -> None:
        run = self.runs.get(process.name)
        if run is not None:
            if sig != signal.SIGCONT:
                log.info("%s: sending %s to what is left of it", process.name, signal_name(sig))
            self._tracker().signal_rest(run, sig, group_done)

    def kill_group(self, process: Process) -> None:
        run = self.runs.get(process.name)
        if run is not None:
            self._tracker().kill(run)

    def _run_changed(self, name: str) -> None:
        """The tracker saw something of ``name``'s run end (its cgroup emptied)."""
        process = self.sv.processes.get(name)
        if process is not None:
            process.group_changed()

    def usage(self, process: Process) -> dict:
        """What the tracker knows of the process's resources, for ``status``."""
        if self.tracker is None:
            return tracking.Tracker().usage(process.name)
        return self.tracker.usage(process.name)

    def dropped(self, process: Process) -> dict:
        """What the sinks lost of the process's output, for ``status``."""
        return self.sv.outputs.dropped(process.name)

    def forget(self, name: str) -> None:
        """A reload removed the instance: its run, cgroup and notify socket go."""
        self.runs.pop(name, None)
        if self.tracker is not None:
            self.tracker.forget(name)

    # -- readiness and dependencies -------------------------------------------------

    def watch_ready(self, process: Process) -> None:
        self._checks().watch(process)

    def unwatch_ready(self, process: Process) -> None:
        self._checks().unwatch(process.name)

    def watch_running(self, process: Process) -> None:
        if self.monitors is None:
            from . import health

            self.monitors = health.Monitors(self._run_helper, self._memory)
        self.monitors.watch(process)

    def unwatch_running(self, process: Process) -> None:
        if self.monitors is not None:
            self.monitors.unwatch(process.name)

    def _memory(self, process: Process) -> Optional[int]:
        """The run's memory: its cgroup's, else the summed RSS of its process tree."""
        memory = self.usage(process).get("memory")
        if memory is None and process.pid is not None:
            from .health import tree_rss

            memory = tree_rss(process.pid)
        return memory

    def _checks(self) -> "readiness.Checks":
        if self.checks is None:
            from . import readiness

            self.checks = readiness.Checks(self.sv.loop, os.path.join(self.sv.config.daemon.run_dir, "notify"),
                                           lambda name: self.sv.processes.get(name), self._run_helper,
                                           self._from_run)
        return self.checks

    def _from_run(self, process: Process, pid: int, uid: int) -> bool:
        """Did a notify message come from the process's current run?

        A sender that is gone already (``systemd-notify``, a script that sends
        and exits) cannot be looked up: then its user must be the program's.
        """
        run = self.runs.get(process.name)
        member = None if run is None else self._tracker().member(run, pid)
        if member is None:
            identity = self.identities.get(process.config.program.user or "")
            return uid == (identity.uid if identity is not None else os.geteuid())
        return member

    def dependencies(self, process: Process, request: bool) -> Resolution:
        def start(dependency: Process) -> None:
            log.info("%s: starting %s, which it depends on", process.name, dependency.name)
            dependency.start()

        resolution = resolve(process, self.sv.members, request=request, may_start=self.restarts_allowed(),
                             start=start)
        if resolution.waiting:
            self.blocked.add(process)
        else:
            self.blocked.discard(process)
        return resolution

    # -- hooks (daemon/hooks.py) -----------------------------------------------------

    def before_start(self, process: Process) -> Optional[str]:
        return self.sv.hooks.before_start(process)

    def cancel_before_start(self, process: Process) -> None:
        self.sv.hooks.cancel(process)

    # -- helper processes (probes, stop commands) ------------------------------------

    def run_command(self, process: Process, command: tuple[str, ...], timeout: float) -> Optional["Helper"]:
        shown = " ".join(command)

        def done(code: Optional[int], output_text: str) -> None:
            how = f"killed after {timeout:g}s" if code is None else f"exited with code {code}"
            log.log(logging.INFO if code == 0 else logging.WARNING, "%s: stop command %s %s%s",
                    process.name, shown, how, f": {output_text}" if output_text else "")

        log.info("%s: running stop command %s", process.name, shown)
        try:
            return self._run_helper(process, command, timeout, done, {"MAINPID": str(process.pid or "")})
        except SpawnError as exc:
            log.warning("%s: cannot run stop command %s: %s", process.name, shown, exc)
            return None

    def _run_helper(self, process: Process, command: tuple[str, ...], timeout: float, on_exit,
                    extra: Optional[dict] = None) -> "Helper":
        """Run a probe or stop command with the program's settings; superd's reaper collects it."""
        instance = process.config
        identity = self._identity(instance)
        env = spawn.build_environment(instance, self.sv.environ, identity, self.sv.socket_path())
        env.update(extra or {})
        self._tracker().settle()  # born in superd's own cgroup, not in the last spawned run's
        popen = spawn.spawn(instance, env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, identity=identity, command=command)
        from .helpers import Helper

        helper = Helper(popen, self.sv.loop, timeout, on_exit)
        self.helpers[popen.pid] = helper
        return helper

    # -- reaping ---------------------------------------------------------------------

    def collected(self, pid: int, status: int) -> None:
        """The reaper collected ``pid``: a program, a helper or an adopted orphan."""
        child = self.children.pop(pid, None)
        if child is None and pid in self.helpers:
            self.helpers.pop(pid).exited(status)
            return
        if child is None:
            log.debug("reaped orphan pid %d (%s)", pid, describe_status(status)[1])
            for process in self.sv.processes.values():
                process.group_changed()
            return
        process, popen, capture = child
        spawn.forget(popen, status)
        run = self.runs.get(process.name)
        if run is not None and run.pid == pid:
            run.reaped = True
        self.sv.stdin.close(process.name)  # whatever it left behind reads EOF
        if capture is output.PASSTHROUGH:
            process.exited(status)
            return

        def hand_over() -> None:
            if not capture.done:
                log.debug("%s: a descendant still holds its output open; going on without waiting", process.name)
            process.exited(status)

        # The last lines before the exit reach the log before the exit is known.
        capture.after_exit(hand_over)

    def live_runs(self) -> list[dict]:
        """The state file's records of the runs still going."""
        return [self.runs[p.name].record() for p in self.sv.processes.values()
                if p.state in ACTIVE_STATES and p.name in self.runs]
