"""The coordinator in supervisor/daemon, driven in-process: a real asyncio loop,
a fake runtime that plays the kernel, no process spawned.

The :class:`KernelRuntime` gives out fake pids, records what was spawned and
signalled, and makes a "process" exit a controllable moment after its stop
signal (or never, for one that ignores SIGTERM) and soon after SIGKILL, through
the loop, the way the reaper would hand an exit to ``Process.exited``. The
:class:`Supervisor` is driven piece by piece (``_start_all``, the shutdown, the
reload, the command API) without ``run()``: no signal handlers, no control
server, no cgroups, no run directory lock.

Tests synchronise on state (``sv.wait_for``, awaited tasks), never on sleeps;
every duration is a few milliseconds.
"""

from __future__ import annotations

import asyncio
import re
import signal
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from supervisor import config as cfg
from supervisor.config import ConfigError
from supervisor.core.dependencies import resolve
from supervisor.core.errors import NoSuchName, SpawnError
from supervisor.core.process import Process
from supervisor.core.states import DaemonState, ProcessState as S
from supervisor.daemon import shutdown as shutdown_module
from supervisor.daemon.supervisor import Supervisor

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

#: The longest any single wait of these tests may take before it fails
#: (generous: the waits are milliseconds, but a loaded machine stalls).
WAIT = 15.0


# --------------------------------------------------------------------------
# The fake kernel


@dataclass
class Behaviour:
    """How a fake program answers. ``term``: seconds from its stop signal to
    its exit (None: it ignores the signal); ``kill``: from SIGKILL to its
    exit; ``crash_next``: its next spawn exits with this code after
    ``crash_after`` seconds (a failed start); ``spawn_error``: its next spawn
    fails outright."""

    term: Optional[float] = 0.003
    kill: float = 0.001
    crash_next: Optional[int] = None
    crash_after: float = 0.002
    spawn_error: Optional[SpawnError] = None


@dataclass
class Event:
    at: float      # the loop's clock
    kind: str      # spawn | signal | exit | state | rest | command
    name: str
    pid: Optional[int] = None
    sig: Optional[int] = None
    detail: str = ""
    reason: str = ""  # a state event: the process's reason


class KernelRuntime:
    """A :class:`supervisor.core.runtime.Runtime` that plays the kernel on the
    loop; what it is asked for goes to :attr:`events`, in order."""

    def __init__(self) -> None:
        self.sv: Optional[Supervisor] = None
        self.next_pid = 1000
        self.live: dict[int, Process] = {}           # pid -> its process, until its exit is handed over
        self.exiting: set[int] = set()              # pids whose exit is scheduled
        self.behaviours: dict[str, Behaviour] = {}  # instance or program name -> behaviour
        self.events: list[Event] = []
        self.forgotten: list[str] = []
        # What the daemon reads of the real ProcessRuntime.
        self.blocked: set[Process] = set()
        self.checks = None
        self.monitors = None
        self.tracker = None

    def attach(self, sv: Supervisor) -> None:
        self.sv = sv

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.sv.loop

    # -- test controls ----------------------------------------------------------

    def behave(self, name: str, **settings) -> Behaviour:
        behaviour = self.behaviour_of(name) if name in self.behaviours else Behaviour()
        for key, value in settings.items():
            setattr(behaviour, key, value)
        self.behaviours[name] = behaviour
        return behaviour

    def behaviour_of(self, name_or_process) -> Behaviour:
        if isinstance(name_or_process, Process):
            for key in (name_or_process.name, name_or_process.group):
                if key in self.behaviours:
                    return self.behaviours[key]
            return self.behaviours.setdefault(name_or_process.name, Behaviour())
        return self.behaviours[name_or_process]

    def crash(self, process: Process, code: int) -> None:
        """The process exits on its own with ``code``, at the next loop turn."""
        assert process.pid is not None
        self._exit_later(process.pid, 0.0, code << 8)

    def of(self, kind: str, name: Optional[str] = None, sig: Optional[int] = None) -> list[Event]:
        return [e for e in self.events
                if e.kind == kind and (name is None or e.name == name) and (sig is None or e.sig == sig)]

    def spawned(self) -> list[str]:
        return [e.name for e in self.of("spawn")]

    def signals(self, name: str) -> list[int]:
        return [e.sig for e in self.of("signal", name)]

    def stop_budget(self, name: str) -> float:
        """The wait of the first step of ``name``'s first stop, as the stop planned it."""
        stopping = next(e for e in self.events
                        if e.kind == "state" and e.name == name and e.detail.endswith("->stopping"))
        match = re.search(r"stopping with \w+, up to ([0-9.e+-]+)s", stopping.reason)
        assert match, stopping.reason
        return float(match.group(1))

    def index(self, kind: str, name: str, sig: Optional[int] = None, nth: int = 0) -> int:
        """Where the ``nth`` matching event is in :attr:`events`."""
        found = [i for i, e in enumerate(self.events)
                 if e.kind == kind and e.name == name and (sig is None or e.sig == sig)]
        assert len(found) > nth, f"no {kind} {sig} of {name} (#{nth}) in {self.events}"
        return found[nth]

    # -- the kernel's side --------------------------------------------------------

    def _record(self, kind: str, name: str, pid=None, sig=None, detail: str = "", reason: str = "") -> None:
        self.events.append(Event(self.loop.time(), kind, name, pid, sig, detail, reason))

    def _exit_later(self, pid: int, delay: float, status: int) -> None:
        if pid in self.exiting or pid not in self.live:
            return
        self.exiting.add(pid)
        self.loop.call_later(delay, self.collected, pid, status)

    def collected(self, pid: int, status: int) -> None:
        """What the reaper hands over: the exit of ``pid``."""
        self.exiting.discard(pid)
        process = self.live.pop(pid, None)
        if process is None:
            return
        self._record("exit", process.name, pid, detail=str(status))
        process.exited(status)

    # -- Runtime ---------------------------------------------------------------------

    def monotonic(self) -> float:
        return self.loop.time()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, callback)

    def restarts_allowed(self) -> bool:
        return self.sv.state is not DaemonState.SHUTTING_DOWN

    def state_changed(self, process: Process, old: S) -> None:
        self._record("state", process.name, process.pid, detail=f"{old.value}->{process.state.value}",
                     reason=process.reason)
        self.sv.state_changed(process, old)

    def reason_changed(self, process: Process) -> None:
        self.sv.schedule_check()

    def spawn(self, process: Process) -> int:
        if self.sv.state is DaemonState.SHUTTING_DOWN:  # as the real runtime
            raise SpawnError("superd is shutting down", 1)
        behaviour = self.behaviour_of(process)
        if behaviour.spawn_error is not None:
            error, behaviour.spawn_error = behaviour.spawn_error, None
            raise error
        self.next_pid += 1
        pid = self.next_pid
        self.live[pid] = process
        self._record("spawn", process.name, pid)
        if behaviour.crash_next is not None:
            code, behaviour.crash_next = behaviour.crash_next, None
            self._exit_later(pid, behaviour.crash_after, code << 8)
        return pid

    def send(self, target: int, sig: int, group: bool) -> None:
        process = self.live.get(target)  # a group's id is its leader's pid here
        if process is None:
            return  # gone already: daemon.kill ignores that too
        self._record("signal", process.name, target, sig, "group" if group else "")
        behaviour = self.behaviour_of(process)
        if sig == signal.SIGKILL:
            self._exit_later(target, behaviour.kill, signal.SIGKILL)
        elif sig != signal.SIGCONT and behaviour.term is not None:
            self._exit_later(target, behaviour.term, sig)

    def group_alive(self, process: Process) -> bool:
        # Nothing but the leader: once it is reaped, the run is over.
        return process.pgid in self.live

    def group_watched(self, process: Process) -> bool:
        return True

    def signal_rest(self, process: Process, sig: int, group_done: bool) -> None:
        self._record("rest", process.name, None, sig)

    def kill_group(self, process: Process) -> None:
        self._record("rest", process.name, process.pgid, signal.SIGKILL, "kill_group")

    def watch_ready(self, process: Process) -> None:
        pass

    def unwatch_ready(self, process: Process) -> None:
        pass

    def watch_running(self, process: Process) -> None:
        pass

    def unwatch_running(self, process: Process) -> None:
        pass

    def dependencies(self, process: Process, request: bool):
        # As ProcessRuntime.dependencies: the real resolution over the supervisor's names.
        resolution = resolve(process, self.sv.members, request=request, may_start=self.restarts_allowed(),
                             start=lambda dependency: dependency.start())
        if resolution.waiting:
            self.blocked.add(process)
        else:
            self.blocked.discard(process)
        return resolution

    def run_command(self, process: Process, command, timeout: float):
        self._record("command", process.name, process.pid, detail=" ".join(command))
        return None

    def forget(self, name: str) -> None:
        self.forgotten.append(name)

    def live_runs(self) -> list[dict]:
        return []


class NoReaper:
    """The test process's own children are none of these tests' business."""

    def reap(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_leftovers(monkeypatch):
    """The shutdown looks for leftover descendants in /proc and would signal
    the test process's real children: here there are none."""
    monkeypatch.setattr(shutdown_module, "descendants", lambda root=None: [])


# --------------------------------------------------------------------------
# Helpers


def header(tmp_path: Path, daemon: str = "") -> str:
    return (f'[superd]\nrun_dir = "{tmp_path / "run"}"\nlogs_dir = "{tmp_path / "logs"}"\n'
            + textwrap.dedent(daemon) + "\n")


def write_config(tmp_path: Path, programs: str, daemon: str = "") -> Path:
    path = tmp_path / "superd.toml"
    path.write_text(header(tmp_path, daemon) + textwrap.dedent(programs))
    return path


def load(tmp_path: Path, programs: str, daemon: str = "") -> cfg.Config:
    return cfg.load(str(write_config(tmp_path, programs, daemon)), {})


async def supervisor(config: cfg.Config) -> tuple[Supervisor, KernelRuntime]:
    """A Supervisor with what ``run()`` would set up, minus signals, sockets,
    tracking, the control server and the run directory."""
    runtime = KernelRuntime()
    sv = Supervisor(config, single=False, environ={}, runtime=runtime)
    runtime.attach(sv)
    sv.loop = asyncio.get_running_loop()
    sv.outputs.configure(sv.processes, sv.loop)
    sv._done = sv.loop.create_future()
    sv.reaper = NoReaper()
    return sv, runtime


async def start_all(sv: Supervisor) -> None:
    """Start-up as ``run()`` does it: every autostart process, then RUNNING."""
    await sv._start_all()
    sv.set_state(DaemonState.RUNNING)


async def until(sv: Supervisor, predicate: Callable[[], bool], what: str = "") -> None:
    assert await sv.wait_for(predicate, WAIT), f"timed out waiting for {what or predicate}: {sv.summary()}"


async def all_running(sv: Supervisor, names=None) -> None:
    procs = [sv.processes[n] for n in names] if names else [p for p in sv.processes.values()
                                                            if p.config.program.autostart]
    await until(sv, lambda: all(p.state is S.RUNNING for p in procs), "every process to be running")


async def shut_down(sv: Supervisor, reason: str = "test") -> int:
    sv.request_shutdown(reason)
    task = sv.shutdown.task
    await asyncio.wait_for(asyncio.shield(task), WAIT)
    assert sv.finished
    return sv._done.result()


def run(coroutine) -> None:
    asyncio.run(coroutine)


# --------------------------------------------------------------------------
# Start-up order and dependencies


def test_start_order_by_priority_then_name(tmp_path):
    config = load(tmp_path, """
        [program.late]
        command = "late"
        priority = 30
        startsecs = 0
        [program.b]
        command = "b"
        priority = 5
        startsecs = 0
        [program.pool]
        command = "pool"
        numprocs = 2
        priority = 5
        startsecs = 0
        [program.a]
        command = "a"
        priority = 5
        startsecs = 0
        [program.first]
        command = "first"
        priority = 1
        startsecs = 0
        [program.manual]
        command = "manual"
        priority = 0
        autostart = false
    """)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        assert rt.spawned() == ["first", "a", "b", "pool_0", "pool_1", "late"]
        assert sv.processes["manual"].state is S.STOPPED and sv.processes["manual"].pid is None
        await all_running(sv)
        # The processes keep the config's order (what status lists).
        assert list(sv.processes) == [i.name for i in config.instances] == [
            "manual", "first", "a", "b", "pool_0", "pool_1", "late"]

    run(body())


def test_dependent_waits_without_pid_until_dependency_running(tmp_path):
    # web comes first by priority, but waits for db (which it starts) to be running.
    config = load(tmp_path, """
        [program.web]
        command = "web"
        priority = 1
        startsecs = 0
        depends_on = ["db"]
        [program.db]
        command = "db"
        priority = 50
        startsecs = 0.05
    """)

    async def body():
        sv, rt = await supervisor(config)
        web, db = sv.processes["web"], sv.processes["db"]
        await start_all(sv)
        # db was started by web's start; web waits: STARTING without a pid.
        assert rt.spawned() == ["db"]
        assert db.state is S.STARTING and db.pid is not None
        assert web.state is S.STARTING and web.pid is None
        assert web.waiting_for == ("db",)
        assert web in rt.blocked
        await until(sv, lambda: web.pid is not None, "web to be spawned")
        assert db.state is S.RUNNING
        assert rt.spawned() == ["db", "web"]
        # web was spawned only after db reached RUNNING.
        assert rt.index("state", "db") < rt.index("spawn", "web")
        db_running = [i for i, e in enumerate(rt.events)
                      if e.kind == "state" and e.name == "db" and e.detail.endswith("->running")]
        assert db_running and db_running[0] < rt.index("spawn", "web")
        await all_running(sv)
        assert web.waiting_for == () and web not in rt.blocked

    run(body())


def test_held_dependency_not_restarted_by_automatic_restart_but_by_start_request(tmp_path):
    config = load(tmp_path, """
        [program.db]
        command = "db"
        priority = 1
        startsecs = 0
        [program.web]
        command = "web"
        priority = 2
        startsecs = 0
        autorestart = true
        depends_on = ["db"]
    """)

    async def body():
        sv, rt = await supervisor(config)
        web, db = sv.processes["web"], sv.processes["db"]
        await start_all(sv)
        await all_running(sv)
        first_db = db.pid

        # db stopped by hand: held.
        (stopped,) = await sv.commands.stop([db], True, WAIT)
        assert stopped["ok"] and db.state is S.STOPPED and db.held
        assert web.state is S.RUNNING  # a stop does not cascade

        # web crashes: its automatic restart waits for db, and does not start it.
        rt.crash(web, 1)
        await until(sv, lambda: web.state is S.STARTING and web.pid is None, "web to wait for db")
        assert web.restarts == 1 and web.waiting_for == ("db",)
        sv.waits._check()  # the waiters looked again: still nothing
        assert db.state is S.STOPPED and rt.spawned().count("db") == 1

        # A start someone asked for starts the held dependency, then web.
        (stopped,) = await sv.commands.stop([web], True, WAIT)
        assert stopped["ok"] and web.state is S.STOPPED
        (started,) = await sv.commands.start([web], True, WAIT)
        assert started["ok"], started
        assert web.state is S.RUNNING and db.state is S.RUNNING
        assert db.pid != first_db and not db.held
        assert rt.spawned() == ["db", "web", "db", "web"]

    run(body())


def test_start_request_on_a_held_dependency_itself(tmp_path):
    config = load(tmp_path, """
        [program.db]
        command = "db"
        startsecs = 0
    """)

    async def body():
        sv, rt = await supervisor(config)
        db = sv.processes["db"]
        await start_all(sv)
        await sv.commands.stop([db], True, WAIT)
        assert db.held
        (started,) = await sv.commands.start(sv.resolve(["db"]), True, WAIT)
        assert started["ok"] and db.state is S.RUNNING and not db.held
        assert rt.spawned() == ["db", "db"]

    run(body())


def test_exit_with_requests_shutdown_with_its_code(tmp_path):
    config = load(tmp_path, """
        [program.job]
        command = "job"
        startsecs = 0
        autorestart = false
        exit_with = true
        [program.other]
        command = "other"
        startsecs = 0
    """)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        rt.crash(sv.processes["job"], 3)
        await until(sv, lambda: sv.shutdown.requested, "the shutdown request")
        assert sv.state is DaemonState.SHUTTING_DOWN
        await asyncio.wait_for(asyncio.shield(sv.shutdown.task), WAIT)
        assert sv._done.result() == 3
        assert sv.processes["other"].state is S.STOPPED
        assert rt.signals("other")[0] == signal.SIGTERM

    run(body())


# --------------------------------------------------------------------------
# The shutdown


def test_shutdown_phases_priority_dependencies_parallel(tmp_path):
    # Priorities alone: db (999) first, then front (100), pool (50), web (1).
    # web depends on db: db moves after web. Phases: front, pool_0+pool_1, web, db.
    config = load(tmp_path, """
        [program.db]
        command = "db"
        startsecs = 0
        [program.front]
        command = "front"
        priority = 100
        startsecs = 0
        [program.pool]
        command = "pool"
        numprocs = 2
        priority = 50
        startsecs = 0
        [program.web]
        command = "web"
        priority = 1
        startsecs = 0
        depends_on = ["db"]
        [program.idle]
        command = "idle"
        autostart = false
    """)

    async def body():
        sv, rt = await supervisor(config)
        for name in ("front", "pool", "web", "db"):
            rt.behave(name, term=0.005)
        await start_all(sv)
        await all_running(sv)
        rt.events.clear()
        assert await shut_down(sv) == 0
        assert all(p.state is S.STOPPED for p in sv.processes.values())

        term = lambda name: rt.index("signal", name, signal.SIGTERM)  # noqa: E731
        gone = lambda name: rt.index("exit", name)  # noqa: E731
        # Higher priority number first.
        assert gone("front") < term("pool_0") and gone("front") < term("pool_1")
        # One phase stops in parallel: both had SIGTERM before either exited.
        assert max(term("pool_0"), term("pool_1")) < min(gone("pool_0"), gone("pool_1"))
        # The next phase begins once the whole phase is gone.
        assert max(gone("pool_0"), gone("pool_1")) < term("web")
        # The dependent before its dependency, whatever the priorities say.
        assert gone("web") < term("db")
        # Nobody needed SIGKILL; the process that never ran got nothing.
        assert not rt.of("signal", sig=signal.SIGKILL)
        assert rt.signals("idle") == []

    run(body())


def test_shutdown_sigkills_a_term_ignoring_process_within_its_budget(tmp_path):
    config = load(tmp_path, """
        [program.stubborn]
        command = "stubborn"
        startsecs = 0
        stopwaitsecs = 0.05
        [program.polite]
        command = "polite"
        startsecs = 0
        stopwaitsecs = 0.05
    """, daemon="shutdown_timeout = 10")

    async def body():
        sv, rt = await supervisor(config)
        rt.behave("stubborn", term=None)
        await start_all(sv)
        await all_running(sv)
        await shut_down(sv)
        # Its own stopwaitsecs (the shutdown's 10 s leave it whole), then SIGKILL.
        assert rt.stop_budget("stubborn") == pytest.approx(0.05)
        term = rt.of("signal", "stubborn", signal.SIGTERM)[0]
        kill = rt.of("signal", "stubborn", signal.SIGKILL)[0]
        waited = kill.at - term.at
        assert 0.045 <= waited < 5.0, waited  # not the shutdown's 10 s
        assert sv.processes["stubborn"].state is S.STOPPED
        assert sv.processes["stubborn"].exitstatus == -signal.SIGKILL
        assert signal.SIGKILL not in rt.signals("polite")

    run(body())


def test_shutdown_timeout_compresses_stopwaitsecs(tmp_path):
    # Two phases that each want 10 s; the whole shutdown has 1 s: each phase
    # gets a share, and both TERM-ignoring processes are killed in time.
    config = load(tmp_path, """
        [program.first]
        command = "first"
        priority = 2
        startsecs = 0
        stopwaitsecs = 10
        [program.second]
        command = "second"
        priority = 1
        startsecs = 0
        stopwaitsecs = 10
    """, daemon="shutdown_timeout = 1")

    async def body():
        sv, rt = await supervisor(config)
        rt.behave("first", term=None)
        rt.behave("second", term=None)
        await start_all(sv)
        await all_running(sv)
        started = sv.loop.time()
        await shut_down(sv)
        elapsed = sv.loop.time() - started
        # The first phase gets half of what is usable (0.9 s less two kill
        # margins of 0.05 s): 0.4 s; the second what is left of the 0.9 s.
        budgets = [rt.stop_budget("first"), rt.stop_budget("second")]
        assert 0.1 <= budgets[0] <= 0.4 + 1e-3, budgets
        assert 0.0 <= budgets[1] <= 0.9 - budgets[0] + 1e-3, budgets
        for name, budget in zip(("first", "second"), budgets):
            term = rt.of("signal", name, signal.SIGTERM)[0]
            kill = rt.of("signal", name, signal.SIGKILL)[0]
            assert budget - 0.005 <= kill.at - term.at < 5.0, (name, budget, kill.at - term.at)
        assert rt.index("exit", "first") < rt.index("signal", "second", signal.SIGTERM)
        assert elapsed < 10.0, elapsed  # not 20 s
        assert all(p.state is S.STOPPED for p in sv.processes.values())

    run(body())


def test_second_shutdown_request_escalates_to_sigkill(tmp_path):
    config = load(tmp_path, """
        [program.stubborn]
        command = "stubborn"
        priority = 2
        startsecs = 0
        stopwaitsecs = 30
        [program.later]
        command = "later"
        priority = 1
        startsecs = 0
        stopwaitsecs = 30
    """, daemon="shutdown_timeout = 60")

    async def body():
        sv, rt = await supervisor(config)
        rt.behave("stubborn", term=None)
        await start_all(sv)
        await all_running(sv)
        stubborn, later = sv.processes["stubborn"], sv.processes["later"]
        started = sv.loop.time()
        sv.request_shutdown("first TERM")
        await until(sv, lambda: stubborn.state is S.STOPPING, "stubborn to be stopping")
        assert rt.signals("stubborn") == [signal.SIGTERM, signal.SIGCONT]
        assert later.state is S.RUNNING  # its phase comes after

        sv.request_shutdown("second TERM")
        # At once, without a loop turn: SIGKILL to the group and to the process.
        assert sv.shutdown.escalated
        assert signal.SIGKILL in rt.signals("stubborn")
        await asyncio.wait_for(asyncio.shield(sv.shutdown.task), WAIT)
        assert sv.loop.time() - started < 10.0  # not 30 s
        # The phase after gets no grace either: SIGKILL, no SIGTERM.
        assert signal.SIGTERM not in rt.signals("later") and signal.SIGKILL in rt.signals("later")
        assert stubborn.state is S.STOPPED and later.state is S.STOPPED
        # A third request changes nothing.
        sv.request_shutdown("third TERM")
        assert sv.finished

    run(body())


# --------------------------------------------------------------------------
# Reload


RELOAD_BEFORE = """
    [program.kept]
    command = "kept"
    startsecs = 0
    [program.changed]
    command = "changed --old"
    startsecs = 0
    [program.gone]
    command = "gone"
    startsecs = 0
    [program.pool]
    command = "pool"
    numprocs = 2
    startsecs = 0
"""

RELOAD_AFTER = """
    [program.kept]
    command = "kept"
    startsecs = 0
    [program.changed]
    command = "changed --new"
    startsecs = 0
    stopwaitsecs = 3
    [program.pool]
    command = "pool"
    numprocs = 2
    startsecs = 0
    [program.added]
    command = "added"
    startsecs = 0
    [program.manual]
    command = "manual"
    autostart = false
"""


def test_reload_applies_added_removed_changed_untouched(tmp_path):
    config = load(tmp_path, RELOAD_BEFORE)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        before = dict(sv.processes)
        pids = {name: p.pid for name, p in before.items()}
        rt.events.clear()

        write_config(tmp_path, RELOAD_AFTER)
        result = await sv.reload()
        assert sorted(result["added"]) == ["added", "manual"]
        assert result["removed"] == ["gone"]
        assert result["changed"] == ["changed"]
        assert sv.state is DaemonState.RUNNING

        # Removed: stopped with its own settings, then gone (and its names with it).
        assert "gone" not in sv.processes and before["gone"].state is S.STOPPED
        assert rt.signals("gone")[0] == signal.SIGTERM and rt.of("exit", "gone")
        assert "gone" in rt.forgotten
        with pytest.raises(NoSuchName):
            sv.resolve(["gone"])
        # Changed: the old run stopped before the new one started, with the new settings.
        new = sv.processes["changed"]
        assert new is not before["changed"] and before["changed"].retired
        assert new.config.command == ("changed", "--new") and new.config.program.stopwaitsecs == 3
        assert rt.index("exit", "changed") < rt.index("spawn", "changed")
        await all_running(sv)
        assert new.pid != pids["changed"]
        # Added: autostart starts, autostart = false does not.
        assert sv.processes["added"].state is S.RUNNING
        assert sv.processes["manual"].state is S.STOPPED
        assert sorted(rt.spawned()) == ["added", "changed"]
        # Untouched: the same process, the same pid, not a signal.
        for name in ("kept", "pool_0", "pool_1"):
            assert sv.processes[name] is before[name] and sv.processes[name].pid == pids[name]
            assert rt.signals(name) == []
        assert list(sv.processes) == [i.name for i in sv.config.instances] == [
            "added", "changed", "kept", "manual", "pool_0", "pool_1"]
        assert [p.name for p in sv.resolve(["added", "pool"])] == ["added", "pool_0", "pool_1"]

    run(body())


def test_reload_with_an_invalid_config_changes_nothing(tmp_path):
    config = load(tmp_path, RELOAD_BEFORE)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        before = dict(sv.processes)
        pids = {name: p.pid for name, p in before.items()}
        events = len(rt.events)

        for broken in (RELOAD_AFTER + '\n[program.bad]\ncommand = "x"\npriority = "high"\n',
                       RELOAD_AFTER + "\n[program.worse\n"):
            write_config(tmp_path, broken)
            with pytest.raises(ConfigError):
                await sv.reload()
            assert sv.config is config
            assert sv.processes == before
            assert {name: p.pid for name, p in sv.processes.items()} == pids
            assert all(p.state is S.RUNNING for p in sv.processes.values())
            assert sv.state is DaemonState.RUNNING
            assert len(rt.events) == events  # not a spawn, not a signal

    run(body())


# --------------------------------------------------------------------------
# Rolling restart


POOL = """
    [program.pool]
    command = "pool"
    numprocs = 3
    startsecs = 0.01
    startretries = 0
    [program.other]
    command = "other"
    startsecs = 0
"""


def test_rolling_restart_one_after_another(tmp_path):
    config = load(tmp_path, POOL)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        old = {name: sv.processes[name].pid for name in ("pool_0", "pool_1", "pool_2")}
        rt.events.clear()

        results = await sv.commands.restart(sv.resolve(["pool"]), True, WAIT, rolling=True)
        assert [r["ok"] for r in results] == [True, True, True], results
        assert [r["name"] for r in results] == ["pool_0", "pool_1", "pool_2"]
        for name, pid in old.items():
            assert sv.processes[name].state is S.RUNNING and sv.processes[name].pid != pid
        assert rt.spawned() == ["pool_0", "pool_1", "pool_2"]

        def running_again(name: str) -> int:
            return next(i for i, e in enumerate(rt.events)
                        if e.kind == "state" and e.name == name and e.detail == "starting->running")

        # The next one gets its SIGTERM only once the one before runs again.
        for previous, following in (("pool_0", "pool_1"), ("pool_1", "pool_2")):
            assert running_again(previous) < rt.index("signal", following, signal.SIGTERM)
        assert rt.signals("other") == []

    run(body())


def test_rolling_restart_stops_at_the_first_failure(tmp_path):
    config = load(tmp_path, POOL)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        old = {name: sv.processes[name].pid for name in ("pool_0", "pool_1", "pool_2")}
        rt.events.clear()
        # pool_1's next run exits before startsecs: a failed start, and with
        # startretries = 0 it is FATAL at once.
        rt.behave("pool_1", crash_next=1, crash_after=0.002)

        results = await sv.commands.restart(sv.resolve(["pool"]), True, WAIT, rolling=True)
        assert [r["ok"] for r in results] == [True, False, False], results
        assert "ERROR" in results[1]["message"]
        assert "stopped at pool_1" in results[2]["message"]
        assert sv.processes["pool_0"].state is S.RUNNING and sv.processes["pool_0"].pid != old["pool_0"]
        assert sv.processes["pool_1"].state is S.FATAL
        # The rest is untouched: same pid, never signalled.
        assert sv.processes["pool_2"].state is S.RUNNING and sv.processes["pool_2"].pid == old["pool_2"]
        assert rt.signals("pool_2") == []
        assert rt.spawned() == ["pool_0", "pool_1"]

    run(body())


def test_restart_refused_while_shutting_down(tmp_path):
    from supervisor.core.errors import ShuttingDown

    config = load(tmp_path, POOL)

    async def body():
        sv, rt = await supervisor(config)
        await start_all(sv)
        await all_running(sv)
        sv.request_shutdown("test")
        with pytest.raises(ShuttingDown):
            await sv.commands.restart(sv.resolve(["pool"]), True, WAIT, rolling=True)
        with pytest.raises(ShuttingDown):
            await sv.commands.start(sv.resolve(["other"]), True, WAIT)
        await asyncio.wait_for(asyncio.shield(sv.shutdown.task), WAIT)
        assert all(p.state is S.STOPPED for p in sv.processes.values())

    run(body())


# --------------------------------------------------------------------------
# Names and waits


def test_names(tmp_path):
    config = load(tmp_path, """
        [program.web]
        command = "web"
        numprocs = 3
        [program.db]
        command = "db"
        [program.cron]
        command = "cron"
        numprocs = 2
    """)

    async def body():
        sv, _ = await supervisor(config)
        names = lambda *wanted: [p.name for p in sv.resolve(wanted)]  # noqa: E731
        assert names("all") == ["cron_0", "cron_1", "db", "web_0", "web_1", "web_2"]  # the config's order
        assert names("web") == names("web:*") == ["web_0", "web_1", "web_2"]
        assert names("db") == names("db:*") == ["db"]
        assert names("web_1") == ["web_1"]
        # Each once, in the order the names list them.
        assert names("web_1", "web", "db", "all") == ["web_1", "web_0", "web_2", "db", "cron_0", "cron_1"]
        assert [p.name for p in sv.members("cron")] == ["cron_0", "cron_1"]
        assert sv.members("nope") == []
        for unknown in ("nope", "nope:*", "web_3", "web_", "db_0", "all:*"):
            with pytest.raises(NoSuchName):
                sv.resolve([unknown])
        with pytest.raises(NoSuchName):
            sv.resolve(["db", "nope"])

    run(body())


def test_wait_for_times_out_and_wakes_on_state_change(tmp_path):
    config = load(tmp_path, """
        [program.slow]
        command = "slow"
        startsecs = 0.02
    """)

    async def body():
        sv, _ = await supervisor(config)
        slow = sv.processes["slow"]
        assert not await sv.wait_for(lambda: slow.state is S.RUNNING, 0.01)
        assert not await sv.wait_for(lambda: False, 0)
        await start_all(sv)
        assert slow.state is S.STARTING
        assert await sv.wait_for(lambda: slow.state is S.RUNNING, WAIT)
        assert sv.waits._waiters == []

    run(body())
