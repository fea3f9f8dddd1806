"""The per-process state machine, driven by a fake runtime: no process is spawned."""

from __future__ import annotations

import os
import signal

import pytest

from supervisor import config as cfg
from supervisor.process import (
    KILL_GRACE,
    MAX_RESTART_DELAY,
    Process,
    SpawnError,
    backoff_delay,
    restart_delay,
)
from supervisor.states import ProcessState as S

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


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

    def monotonic(self) -> float:
        return self.now

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
    assert [restart_delay(n) for n in (0, 1, 2, 3)] == [0.0, 0.0, 1.0, 2.0]
    assert restart_delay(1000) == MAX_RESTART_DELAY


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
    assert delays[0] == 0.0, "first restart is immediate"
    assert delays[1:5] == [1.0, 2.0, 3.0, 4.0]
    assert max(delays) == MAX_RESTART_DELAY
    assert p.restarts == 15


def test_a_long_run_resets_the_crash_loop_throttle() -> None:
    p, rt = make(startsecs=0, autorestart=True)
    p.start()
    die(p, rt, exit_status(1))
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
