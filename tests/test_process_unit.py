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
        self.group_stops: list[tuple[int, int, float, bool]] = []

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

    def group_alive(self, pgid: int) -> bool:
        return pgid in self.alive_groups

    def call_later(self, delay: float, callback) -> FakeTimer:
        timer = FakeTimer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def stop_group(self, pgid: int, sig: int, waitsecs: float, kill: bool) -> None:
        self.group_stops.append((pgid, sig, waitsecs, kill))

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


def test_without_group_flags_only_the_leader_counts() -> None:
    p, rt = make(startsecs=0)
    p.start()
    p.stop()
    p.exited(signal_status(signal.SIGTERM))  # group left alive on purpose
    assert p.state is S.STOPPED


def test_leader_exiting_on_its_own_hands_its_group_to_stop_group() -> None:
    p, rt = make(startsecs=0, killasgroup=True, stopsignal="USR1", stopwaitsecs=4, autorestart=False)
    p.start()
    pid = p.pid
    rt.advance(5)
    p.exited(exit_status(0))
    assert rt.group_stops == [(pid, signal.SIGUSR1, 4.0, True)]
    assert p.state is S.EXITED


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
