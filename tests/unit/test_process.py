"""The per-process state machine, driven by a fake runtime: no process is spawned."""

from __future__ import annotations

import os
import signal

import pytest

from supervisor import config as cfg
from supervisor.core.dependencies import resolve
from supervisor.core.errors import SpawnError
from supervisor.core.policy import backoff_delay
from supervisor.core.process import Process
from supervisor.core.stopping import KILL_GRACE
from supervisor.core.states import ProcessState as S

pytestmark = pytest.mark.timeout(10)


def exit_status(code: int) -> int:
    return code << 8


def signal_status(sig: int) -> int:
    return sig


class FakeTimer:
    def __init__(self, runtime: "FakeRuntime", when: float, callback) -> None:
        self.runtime, self.when, self.callback, self.cancelled = runtime, when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeRuntime:
    """Records what the machine asks for; the test moves the clock and plays the kernel."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.next_pid = 100
        self.sent: list[tuple[int, int, bool]] = []
        self.timers: list[FakeTimer] = []
        self.transitions: list[tuple[str, str]] = []
        self.alive_groups: set[int] = set()
        self.spawn_error: SpawnError | None = None
        self.rest_signals: list[tuple[int, int, bool]] = []
        self.shutting_down = False
        self.watched = False  # True: the fake announces emptiness (group_changed), no polling
        self.readiness_events: list[tuple[str, bool]] = []
        self.health_events: list[tuple[str, str, str]] = []  # (old, new, why)
        self.watching: set[str] = set()
        self.deps: dict[str, Process] = {}   # program name -> its (one) process
        self.others: list[Process] = []      # processes told of every state change
        self.commands: list[tuple[tuple[str, ...], float]] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def spawn(self, process: Process) -> int:
        if self.spawn_error is not None:
            raise self.spawn_error
        self.next_pid += 1
        self.alive_groups.add(self.next_pid)
        return self.next_pid

    def send(self, target: int, sig: int, group: bool) -> None:
        self.sent.append((target, sig, group))

    def group_alive(self, process: Process) -> bool:
        return process.pgid in self.alive_groups

    def group_watched(self, process: Process) -> bool:
        return self.watched

    def signal_rest(self, process: Process, sig: int, group_done: bool) -> None:
        self.rest_signals.append((process.pgid, sig, group_done))

    def kill_group(self, process: Process) -> None:
        self.sent.append((process.pgid, signal.SIGKILL, True))

    def call_later(self, delay: float, callback) -> FakeTimer:
        timer = FakeTimer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def restarts_allowed(self) -> bool:
        return not self.shutting_down

    def state_changed(self, process: Process, old: S) -> None:
        self.transitions.append((old.value, process.state.value))
        for other in list(self.others):
            other.dependencies_changed()

    # Readiness, dependencies, stop commands.
    def reason_changed(self, process: Process) -> None:
        self.readiness_events.append((process.name, process.ready))
        for other in list(self.others):
            other.dependencies_changed()

    def health_changed(self, process: Process, old: str, why: str) -> None:
        self.health_events.append((old, process.health.state, why))

    def watch_ready(self, process: Process) -> None:
        self.watching.add(process.name)

    def unwatch_ready(self, process: Process) -> None:
        self.watching.discard(process.name)

    def dependencies(self, process: Process, request: bool):
        # The real resolution, over this fake's one process per program.
        return resolve(process, lambda group: [self.deps[group]], request=request,
                       may_start=self.restarts_allowed(), start=lambda dep: dep.start())

    def run_command(self, process: Process, command, timeout: float) -> None:
        self.commands.append((command, timeout))

    # -- test controls -------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in order."""
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= end), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = end

    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]


def make(runtime: FakeRuntime | None = None, **program) -> tuple[Process, FakeRuntime]:
    runtime = runtime or FakeRuntime()
    table = {"command": "prog"}
    table.update(program)
    config = cfg.parse({"program": {"p": table}}, None, {})
    return Process(config.instances[0], runtime), runtime


def die(process: Process, runtime: FakeRuntime, status: int) -> None:
    """The process (and its group, by default) ends."""
    runtime.alive_groups.discard(process.pgid)
    process.exited(status)


def test_delays() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_start_runs_after_startsecs() -> None:
    p, rt = make(startsecs=2)
    assert p.start()
    assert p.state is S.STARTING and p.pid == 101
    rt.advance(1.9)
    assert p.state is S.STARTING
    rt.advance(0.2)
    assert p.state is S.RUNNING
    assert p.runs == 1
    assert not p.start()  # already running


def test_startsecs_zero_is_running_at_once() -> None:
    p, rt = make(startsecs=0)
    p.start()
    assert p.state is S.RUNNING
    assert rt.transitions == [("stopped", "starting"), ("starting", "running")]


def test_backoff_then_fatal_counts_attempts() -> None:
    # startretries = 2 means 3 attempts, with 1 s and 2 s between them.
    p, rt = make(startsecs=1, startretries=2)
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF and "retry 1 of 2 in 1s" in p.reason
    rt.advance(0.99)
    assert p.state is S.BACKOFF
    rt.advance(0.02)
    assert p.state is S.STARTING and p.pid == 102
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF and "retry 2 of 2 in 2s" in p.reason
    rt.advance(2.0)
    assert p.state is S.STARTING
    die(p, rt, exit_status(1))
    assert p.state is S.FATAL
    assert "gave up after 3 attempts" in p.reason
    assert p.ended_for_good
    assert rt.pending() == []


def test_startretries_zero_is_one_attempt() -> None:
    p, rt = make(startsecs=1, startretries=0)
    p.start()
    die(p, rt, exit_status(2))
    assert p.state is S.FATAL and "after 1 attempt" in p.reason


def test_reaching_running_resets_attempts() -> None:
    p, rt = make(startsecs=1, startretries=1, autorestart=True)
    p.start()
    die(p, rt, exit_status(1))
    rt.advance(1)
    rt.advance(1)  # second attempt reaches RUNNING
    assert p.state is S.RUNNING and p.attempts == 0


def test_spawn_error_is_a_failed_start_with_its_reason() -> None:
    p, rt = make(startretries=1)
    rt.spawn_error = SpawnError("cannot execute 'nope': no such file or command", 127)
    p.start()
    assert p.state is S.BACKOFF
    assert "cannot execute 'nope'" in p.description()
    rt.advance(1)
    assert p.state is S.FATAL
    assert p.exit_code() == 127


@pytest.mark.parametrize(
    "autorestart, code, restarted",
    [
        (True, 0, True),
        (True, 3, True),
        (False, 3, False),
        ("unexpected", 0, False),
        ("unexpected", 3, True),
    ],
)
def test_autorestart_rules(autorestart, code, restarted) -> None:
    p, rt = make(startsecs=0, autorestart=autorestart, exitcodes=[0])
    p.start()
    rt.advance(5)  # ran fine for a while
    die(p, rt, exit_status(code))
    if restarted:
        assert p.state is S.RUNNING and p.pid == 102, "the first restart is immediate"
        assert p.restarts == 1
    else:
        assert p.state is S.EXITED and p.ended_for_good
        assert ("unexpected" in p.reason) == (code != 0)


def test_death_by_signal_is_unexpected() -> None:
    p, rt = make(startsecs=0)
    p.start()
    rt.advance(5)
    die(p, rt, signal_status(signal.SIGSEGV))
    assert p.exitstatus == -signal.SIGSEGV
    assert p.exit_code() == 128 + signal.SIGSEGV
    assert p.state is S.RUNNING  # restarted: unexpected


def test_crash_loop_with_startsecs_zero_backs_off_instead_of_spinning() -> None:
    p, rt = make(startsecs=0, autorestart=True)
    p.start()
    delays = []
    for _ in range(15):
        die(p, rt, exit_status(1))  # exits at once, every time
        if p.state is S.BACKOFF:
            timer = rt.pending()[0]
            delays.append(round(timer.when - rt.now, 3))
            rt.advance(timer.when - rt.now)
        else:
            delays.append(0.0)
        assert p.state is S.RUNNING
    # The restart policy's defaults: restart_burst = 5 immediate restarts,
    # then a crash loop doubling from 1 s to restart_backoff_max = 30 s.
    assert delays[:5] == [0.0] * 5, "the first restarts are immediate"
    assert delays[5:11] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(delays) == 30.0
    assert p.restarts == 15


def test_a_long_run_resets_the_crash_loop_throttle() -> None:
    p, rt = make(startsecs=0, autorestart=True)
    p.start()
    for _ in range(6):
        die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF
    rt.advance(1)
    rt.advance(30)  # this run lasted long
    die(p, rt, exit_status(1))
    assert p.state is S.RUNNING, "restarted at once after a good run"


def test_stop_sends_stopsignal_then_sigcont_then_kill_after_stopwaitsecs() -> None:
    p, rt = make(startsecs=0, stopsignal="INT", stopwaitsecs=3)
    p.start()
    pid = p.pid
    assert p.stop()
    assert p.state is S.STOPPING
    assert rt.sent == [(pid, signal.SIGINT, False), (pid, signal.SIGCONT, False)]
    rt.advance(2.9)
    assert (pid, signal.SIGKILL, False) not in rt.sent
    rt.advance(0.2)
    assert rt.sent[-1] == (pid, signal.SIGKILL, False)
    die(p, rt, signal_status(signal.SIGKILL))
    assert p.state is S.STOPPED and p.exitstatus == -9
    assert not p.ended_for_good


def test_stop_with_waitsecs_caps_stopwaitsecs() -> None:
    p, rt = make(startsecs=0, stopwaitsecs=30)
    p.start()
    p.stop(waitsecs=2)
    rt.advance(2.01)
    assert rt.sent[-1][1] == signal.SIGKILL


def test_second_stop_with_tighter_deadline_wins() -> None:
    p, rt = make(startsecs=0, stopwaitsecs=30)
    p.start()
    p.stop()
    p.stop(waitsecs=1)
    rt.advance(1.01)
    assert rt.sent[-1][1] == signal.SIGKILL


def test_stopasgroup_signals_the_group_and_waits_for_it_to_empty() -> None:
    p, rt = make(startsecs=0, stopasgroup=True, stopwaitsecs=5)
    p.start()
    pid = p.pid
    p.stop()
    assert rt.sent[:2] == [(pid, signal.SIGTERM, True), (pid, signal.SIGCONT, True)]
    p.exited(signal_status(signal.SIGTERM))  # leader gone, group still alive
    assert p.state is S.STOPPING and p.pid is None
    rt.advance(1)
    assert p.state is S.STOPPING
    rt.alive_groups.discard(pid)
    rt.advance(0.2)
    assert p.state is S.STOPPED


def test_killasgroup_kills_a_group_that_outlives_its_leader() -> None:
    p, rt = make(startsecs=0, stopasgroup=True, stopwaitsecs=2)
    p.start()
    pid = p.pid
    p.stop()
    p.exited(signal_status(signal.SIGTERM))
    rt.advance(2.2)
    assert (pid, signal.SIGKILL, True) in rt.sent
    rt.alive_groups.discard(pid)
    rt.advance(0.2)
    assert p.state is S.STOPPED


def test_group_that_never_empties_is_given_up_after_kill_grace() -> None:
    p, rt = make(startsecs=0, killasgroup=True, stopwaitsecs=1)
    p.start()
    p.stop()
    p.exited(signal_status(signal.SIGTERM))
    rt.advance(1 + KILL_GRACE + 0.5)
    assert p.state is S.STOPPED
    assert "did not empty" in p.reason


def test_without_group_flags_the_rest_gets_the_stop_signal_after_the_leader() -> None:
    p, rt = make(startsecs=0, stopsignal="INT")
    p.start()
    pid = p.pid
    p.stop()
    assert rt.sent[:2] == [(pid, signal.SIGINT, False), (pid, signal.SIGCONT, False)]
    p.exited(signal_status(signal.SIGINT))  # the rest of the run is still there
    assert p.state is S.STOPPING
    assert rt.rest_signals == [(pid, signal.SIGINT, False), (pid, signal.SIGCONT, False)]
    rt.alive_groups.discard(pid)
    rt.advance(0.2)
    assert p.state is S.STOPPED


def test_with_stopasgroup_the_group_is_not_signalled_twice() -> None:
    p, rt = make(startsecs=0, stopasgroup=True)
    p.start()
    pid = p.pid
    p.stop()
    p.exited(signal_status(signal.SIGTERM))
    assert rt.rest_signals == [(pid, signal.SIGTERM, True), (pid, signal.SIGCONT, True)]


def test_leftovers_of_an_exit_are_stopped_before_the_exit_counts() -> None:
    p, rt = make(startsecs=0, stopsignal="USR1", stopwaitsecs=4, autorestart=False)
    p.start()
    pid = p.pid
    rt.advance(5)
    p.exited(exit_status(0))  # its daemon is still there
    assert p.state is S.STOPPING and "outlived its leader" in p.reason
    assert rt.rest_signals == [(pid, signal.SIGUSR1, False), (pid, signal.SIGCONT, False)]
    rt.advance(4.1)
    assert (pid, signal.SIGKILL, True) in rt.sent  # at stopwaitsecs
    rt.alive_groups.discard(pid)
    rt.advance(0.2)
    assert p.state is S.EXITED and p.ended_for_good
    assert p.exitstatus == 0 and "expected" in p.reason


def test_restart_waits_until_the_leftovers_are_gone() -> None:
    p, rt = make(startsecs=0, autorestart=True, stopwaitsecs=10)
    p.start()
    first = p.pid
    rt.advance(5)
    p.exited(exit_status(1))
    assert p.state is S.STOPPING and rt.next_pid == first  # nothing spawned yet
    rt.advance(1)
    assert rt.next_pid == first
    rt.alive_groups.discard(first)
    rt.advance(0.2)
    assert p.state is S.RUNNING and p.pid == first + 1
    assert p.restarts == 1


def test_stop_during_the_clean_up_of_an_exit_ends_stopped() -> None:
    p, rt = make(startsecs=0, autorestart=True, stopwaitsecs=10)
    p.start()
    pid = p.pid
    rt.advance(5)
    p.exited(exit_status(1))
    p.stop(waitsecs=1)
    rt.advance(1.05)
    assert (pid, signal.SIGKILL, True) in rt.sent  # the tighter deadline applies
    rt.alive_groups.discard(pid)
    rt.advance(0.2)
    assert p.state is S.STOPPED and p.pid is None


def test_a_watched_group_is_not_polled() -> None:
    p, rt = make(startsecs=0, stopwaitsecs=3)
    rt.watched = True
    p.start()
    pid = p.pid
    p.stop()
    p.exited(signal_status(signal.SIGTERM))
    (timer,) = rt.pending()
    assert timer.when == pytest.approx(rt.now + 3)  # only the deadline
    rt.alive_groups.discard(pid)
    p.group_changed()  # the runtime's announcement
    assert p.state is S.STOPPED
    assert rt.pending() == []


def test_stop_in_backoff_cancels_the_retry() -> None:
    p, rt = make(startsecs=1)
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF
    p.stop()
    assert p.state is S.STOPPED
    rt.advance(10)
    assert p.state is S.STOPPED


def test_exit_during_startsecs_cancels_the_running_timer() -> None:
    p, rt = make(startsecs=1)
    p.start()
    die(p, rt, exit_status(0))
    rt.advance(0.5)
    assert p.state is S.BACKOFF
    assert p.runs == 0


def test_kill_skips_the_wait() -> None:
    p, rt = make(startsecs=0, stopwaitsecs=30, killasgroup=True)
    p.start()
    pid = p.pid
    p.stop()
    p.kill()
    assert (pid, signal.SIGKILL, False) in rt.sent
    assert (pid, signal.SIGKILL, True) in rt.sent


def test_manual_start_resets_counters() -> None:
    p, rt = make(startsecs=1, startretries=0)
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.FATAL
    assert p.start()
    assert p.state is S.STARTING and p.attempts == 0 and not p.ended_for_good


def test_signal_needs_a_pid() -> None:
    p, rt = make(startsecs=0)
    assert not p.signal(signal.SIGHUP)
    p.start()
    assert p.signal(signal.SIGHUP)
    assert rt.sent[-1] == (p.pid, signal.SIGHUP, False)


def test_description_and_exit_code() -> None:
    p, rt = make(startsecs=0)
    p.start()
    assert p.description().startswith(f"pid {p.pid}, uptime 0:00:0")
    p.stop()
    die(p, rt, exit_status(7))
    assert p.exit_code() == 7
    assert p.description() == "stopped (exited with code 7)"
    assert os.WEXITSTATUS(exit_status(7)) == 7


def test_no_restart_while_superd_shuts_down() -> None:
    p, rt = make(startsecs=0, autorestart=True)
    p.start()
    rt.advance(5)
    rt.shutting_down = True
    die(p, rt, exit_status(1))
    assert p.state is S.EXITED
    assert rt.pending() == []


def test_a_retired_process_never_starts_again() -> None:
    p, rt = make(startsecs=0)
    p.retired = True
    assert not p.start()
    assert p.state is S.STOPPED and rt.transitions == []


# -- readiness ------------------------------------------------------------------------


def test_a_ready_check_keeps_it_starting_until_ready_and_startsecs() -> None:
    p, rt = make(startsecs=1, ready="notify")
    p.start()
    assert rt.watching == {"p"}
    rt.advance(1.5)
    assert p.state is S.STARTING and not p.ready
    assert "waiting for ready (notify)" in p.description()
    p.mark_ready("READY=1")
    assert p.state is S.RUNNING and p.ready and p.runs == 1
    assert "ready (READY=1)" in p.reason


def test_ready_before_startsecs_waits_for_startsecs() -> None:
    p, rt = make(startsecs=2, ready="tcp:8000")
    p.start()
    rt.advance(0.5)
    p.mark_ready("tcp accepted")
    assert p.state is S.STARTING
    assert p.description() == f"pid {p.pid}, starting: waiting for startsecs=2"
    rt.advance(1.6)
    assert p.state is S.RUNNING and p.ready


def test_without_a_check_running_means_ready() -> None:
    p, rt = make(startsecs=0)
    p.start()
    assert p.state is S.RUNNING and p.ready
    assert rt.watching == set()


def test_not_ready_in_time_is_a_failed_start_after_a_stop() -> None:
    p, rt = make(startsecs=0, ready="notify", ready_timeout=5, startretries=1, stopwaitsecs=3)
    p.start()
    pid = p.pid
    rt.advance(5)
    assert p.state is S.STOPPING
    assert (pid, signal.SIGTERM, False) in rt.sent
    assert rt.watching == set()
    die(p, rt, signal_status(signal.SIGTERM))
    assert p.state is S.BACKOFF and "not ready within ready_timeout=5s (notify)" in p.reason
    assert p.attempts == 1
    rt.advance(1)  # the retry
    assert p.state is S.STARTING and p.pid != pid
    rt.advance(5)
    die(p, rt, signal_status(signal.SIGTERM))
    assert p.state is S.FATAL and "gave up after 2 attempts" in p.reason


def test_a_stop_request_during_a_ready_timeout_stop_ends_stopped() -> None:
    p, rt = make(startsecs=0, ready="notify", ready_timeout=1)
    p.start()
    rt.advance(1)
    assert p.state is S.STOPPING
    p.stop()
    die(p, rt, signal_status(signal.SIGTERM))
    assert p.state is S.STOPPED


def test_extend_timeout_pushes_the_ready_deadline() -> None:
    p, rt = make(startsecs=0, ready="notify", ready_timeout=2)
    p.start()
    rt.advance(1.5)
    p.extend_ready_timeout(3)
    rt.advance(2.9)
    assert p.state is S.STARTING
    p.mark_ready()
    assert p.state is S.RUNNING
    assert not [t for t in rt.pending()]  # the ready timer is gone


def test_a_running_program_can_report_itself_not_ready_and_ready_again() -> None:
    p, rt = make(startsecs=0, ready="notify")
    p.start()
    p.mark_ready("READY=1")
    p.mark_not_ready("reloading (RELOADING=1)")
    assert p.state is S.RUNNING and not p.ready
    assert "not ready: reloading (RELOADING=1)" in p.description()
    p.mark_ready("READY=1")
    assert p.ready
    assert rt.readiness_events == [("p", False), ("p", True)]


def test_readiness_of_a_previous_run_does_not_carry_over() -> None:
    p, rt = make(startsecs=0, ready="notify", autorestart=True)
    p.start()
    p.mark_ready()
    p.status_text = "serving"
    rt.advance(5)
    die(p, rt, exit_status(1))
    assert p.state is S.STARTING and not p.ready and p.status_text is None


def test_ready_after_the_process_is_gone_is_ignored() -> None:
    p, rt = make(startsecs=0, ready="notify", autorestart=False)
    p.start()
    die(p, rt, exit_status(1))
    p.mark_ready()
    assert not p.ready


# -- dependencies -----------------------------------------------------------------------


def linked(programs: dict) -> tuple[dict[str, Process], FakeRuntime]:
    """One process per program table, on one fake runtime; those with
    depends_on are told of every change."""
    config = cfg.parse({"program": programs}, None, {})
    rt = FakeRuntime()
    rt.deps = {name: Process(config.instance(name), rt) for name in programs}
    rt.others = [p for p in rt.deps.values() if p.config.program.depends_on]
    return rt.deps, rt


def pair(**dependent) -> tuple[Process, Process, FakeRuntime]:
    """db and web; web depends on db."""
    procs, rt = linked({"db": {"command": "db", "startsecs": 0, "ready": "notify"},
                        "web": {"command": "web", "startsecs": 0, "depends_on": ["db"], **dependent}})
    return procs["db"], procs["web"], rt


def migrate_then_web() -> tuple[Process, Process, FakeRuntime]:
    """A one-shot migrate job; web waits for it to complete."""
    procs, rt = linked({"migrate": {"command": "migrate", "startsecs": 0, "autorestart": False},
                        "web": {"command": "web", "startsecs": 0, "depends_on": {"migrate": "completed"}}})
    return procs["migrate"], procs["web"], rt


def test_a_dependent_starts_once_its_dependency_is_ready() -> None:
    db, web, rt = pair()
    web.start()
    assert db.state is S.STARTING and db.pid is not None  # started for web
    assert web.state is S.STARTING and web.pid is None and web.waiting_for == ("db",)
    assert web.description() == "waiting for db to be ready"
    db.mark_ready()
    assert web.state is S.RUNNING and web.pid is not None and web.waiting_for == ()


def test_stopping_a_waiting_dependent_needs_no_signal() -> None:
    db, web, rt = pair()
    web.start()
    sent = list(rt.sent)
    web.stop()
    assert web.state is S.STOPPED and rt.sent == sent
    db.mark_ready()
    assert web.state is S.STOPPED


def test_a_failed_dependency_makes_the_dependent_fatal() -> None:
    db, web, rt = pair()
    web.start()
    db.config = db.config  # db: ready = "notify", startretries = 3 by default
    for _ in range(4):  # every attempt dies before it is ready
        rt.advance(5)
        die(db, rt, exit_status(1))
    assert db.state is S.FATAL
    assert web.state is S.FATAL and "its dependency db is fatal" in web.reason and web.ended_for_good
    assert web.pid is None


def test_a_dependency_stopped_by_hand_stays_stopped() -> None:
    db, web, rt = pair()
    web.start()
    db.held = True  # what the control server marks on a stop request
    db.stop(0)
    die(db, rt, signal_status(signal.SIGKILL))
    # Stopped by hand while web waits: web goes on waiting, db is not restarted behind the operator's back.
    assert db.state is S.STOPPED
    assert web.state is S.STARTING and web.pid is None and web.waiting_for == ("db",)
    # A new start of web starts db again.
    web.stop()
    web.start()
    assert db.state is S.STARTING and db.pid is not None
    db.mark_ready()
    assert web.state is S.RUNNING


def test_waiting_names_each_condition() -> None:
    procs, rt = linked({
        "db": {"command": "db", "startsecs": 0, "ready": "notify"},
        "migrate": {"command": "m", "startsecs": 0, "autorestart": False},
        "web": {"command": "web", "startsecs": 0, "depends_on": {"db": "ready", "migrate": "completed"}}})
    procs["web"].start()
    assert procs["web"].reason == "waiting for db to be ready, migrate to complete"


def test_extend_timeout_never_shortens_the_deadline() -> None:
    p, rt = make(startsecs=0, ready="notify", ready_timeout=60)
    p.start()
    rt.advance(1)
    p.extend_ready_timeout(5)   # 6 s from the start: the 60 s deadline stays
    rt.advance(10)
    assert p.state is S.STARTING
    rt.advance(49.5)
    assert p.state is S.STOPPING


def test_a_completed_dependency_is_a_oneshot_that_exited_expectedly() -> None:
    migrate, web, rt = migrate_then_web()
    web.start()
    assert migrate.state is S.RUNNING and web.waiting_for == ("migrate",)  # running, not done yet
    die(migrate, rt, exit_status(0))
    assert migrate.state is S.EXITED and web.state is S.RUNNING


def test_a_restart_waits_for_its_dependency_again() -> None:
    db, web, rt = pair(autorestart=True)
    web.start()
    db.mark_ready()
    rt.advance(5)
    db.mark_not_ready("reloading")
    die(web, rt, exit_status(1))
    assert web.state is S.STARTING and web.pid is None and web.waiting_for == ("db",)
    db.mark_ready()
    assert web.state is S.RUNNING


# -- stop sequences -------------------------------------------------------------------------


def test_each_step_signals_then_waits_then_sigkill() -> None:
    p, rt = make(startsecs=0, stop_sequence=[{"signal": "TSTP", "wait": 20}, {"signal": "TERM", "wait": 10}])
    p.start()
    pid = p.pid
    p.stop()
    # No SIGCONT after SIGTSTP: it would discard the pending SIGTSTP.
    assert rt.sent[-1] == (pid, signal.SIGTSTP, False)
    assert "stopping with SIGTSTP, up to 20s, then 1 more step" in p.reason
    rt.advance(19.9)
    assert (pid, signal.SIGTERM, False) not in rt.sent
    rt.advance(0.1)
    assert rt.sent[-2:] == [(pid, signal.SIGTERM, False), (pid, signal.SIGCONT, False)]
    rt.advance(9.9)
    assert (pid, signal.SIGKILL, False) not in rt.sent
    rt.advance(0.1)
    assert (pid, signal.SIGKILL, False) in rt.sent
    die(p, rt, signal_status(signal.SIGKILL))
    assert p.state is S.STOPPED


def test_an_exit_during_a_step_ends_the_stop() -> None:
    p, rt = make(startsecs=0, stop_sequence=[{"signal": "TSTP", "wait": 20}, {"signal": "TERM", "wait": 10}])
    p.start()
    p.stop()
    rt.advance(3)
    die(p, rt, exit_status(0))
    assert p.state is S.STOPPED
    assert not rt.pending()


def test_a_command_step_runs_then_waits() -> None:
    p, rt = make(startsecs=0, stop_command=["drain", "now"], stopwaitsecs=4)
    p.start()
    pid = p.pid
    p.stop()
    assert rt.commands == [(("drain", "now"), 4.0)]
    assert all(sig != signal.SIGTERM for _, sig, _ in rt.sent)
    rt.advance(4)
    assert (pid, signal.SIGTERM, False) in rt.sent
    rt.advance(4)
    assert (pid, signal.SIGKILL, False) in rt.sent


def test_an_exit_during_a_command_step_leaves_the_rest_the_step_then_the_next_signal() -> None:
    p, rt = make(startsecs=0, stop_command="drain", stopwaitsecs=4)
    p.start()
    pgid = p.pgid
    p.stop()
    p.exited(exit_status(0))  # the leader is gone, its group is not
    assert p.state is S.STOPPING and not rt.rest_signals
    rt.advance(4)
    assert (pgid, signal.SIGTERM, False) in rt.rest_signals


def test_shutdown_compression_shrinks_every_step_alike() -> None:
    p, rt = make(startsecs=0, stop_sequence=[{"signal": "TSTP", "wait": 20}, {"signal": "TERM", "wait": 10}])
    p.start()
    pid = p.pid
    p.stop(3)  # 30 s of steps in 3 s: 2 s and 1 s
    rt.advance(1.99)
    assert (pid, signal.SIGTERM, False) not in rt.sent
    rt.advance(0.02)
    assert (pid, signal.SIGTERM, False) in rt.sent
    rt.advance(1)
    assert (pid, signal.SIGKILL, False) in rt.sent


def test_a_tighter_deadline_while_stopping_shrinks_what_is_left() -> None:
    p, rt = make(startsecs=0, stop_sequence=[{"signal": "TSTP", "wait": 20}, {"signal": "TERM", "wait": 10}])
    p.start()
    pid = p.pid
    p.stop()
    rt.advance(10)  # 10 s of TSTP left, then 10 s of TERM: 20 s
    p.stop(2)       # now 2 s for all of it: 1 s and 1 s
    rt.advance(1.01)
    assert (pid, signal.SIGTERM, False) in rt.sent
    rt.advance(1)
    assert (pid, signal.SIGKILL, False) in rt.sent


def test_a_dependency_that_exited_unexpectedly_for_good_fails_its_dependent() -> None:
    migrate, web, rt = migrate_then_web()
    web.start()
    die(migrate, rt, exit_status(2))
    assert web.state is S.FATAL and "migrate is exited" in web.reason


def test_a_stopped_dependency_that_was_not_held_is_started_again() -> None:
    db, web, rt = pair()
    web.start()
    first = db.pid
    db.stop(0)  # not on request (a reload, say)
    die(db, rt, signal_status(signal.SIGKILL))
    assert db.state is S.STARTING and db.pid != first


def test_an_automatic_restart_does_not_start_a_held_dependency() -> None:
    db, web, rt = pair(autorestart=True)
    web.start()
    db.mark_ready()
    rt.advance(5)
    db.held = True
    db.stop(0)
    die(db, rt, signal_status(signal.SIGKILL))
    die(web, rt, exit_status(1))
    assert db.state is S.STOPPED
    assert web.state is S.STARTING and web.pid is None


def test_a_command_step_is_cancelled_when_the_stop_ends() -> None:
    class Handle:
        cancelled = False

        def cancel(self):
            self.cancelled = True

    handles = []
    p, rt = make(startsecs=0, stop_command="drain", stopwaitsecs=4)
    rt.run_command = lambda process, command, timeout: handles.append(Handle()) or handles[-1]
    p.start()
    p.stop()
    die(p, rt, exit_status(0))
    assert p.state is S.STOPPED and handles[0].cancelled


def test_the_rest_waits_out_a_command_step_when_the_leader_exits() -> None:
    p, rt = make(startsecs=0, stop_sequence=[{"signal": "USR1", "wait": 5}, {"exec": "drain", "wait": 30}])
    p.start()
    pgid = p.pgid
    p.stop()
    rt.advance(5)                    # on to the command step
    p.exited(exit_status(0))         # the leader ends; its group does not
    assert (pgid, signal.SIGUSR1, False) not in rt.rest_signals  # the command step sends nothing
    rt.advance(29)
    assert (pgid, signal.SIGKILL, True) not in rt.sent  # the step's 30 s are not over
    rt.advance(1.5)
    assert (pgid, signal.SIGKILL, True) in rt.sent


def test_uptime_of_a_waiting_dependent_is_none() -> None:
    db, web, rt = pair()
    web.start()
    assert web.uptime() is None


def test_started_means_spawned_even_before_ready() -> None:
    db, web, rt = pair(depends_on={"db": "started"})
    web.start()
    assert db.state is S.STARTING and db.pid is not None
    assert web.state is S.RUNNING  # db spawned: started, though not ready
