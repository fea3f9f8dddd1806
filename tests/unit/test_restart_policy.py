"""The restart policy, the alive check's bookkeeping and the watchdog, with a fake clock."""

from __future__ import annotations

import signal

import pytest

from supervisor.core.health import Health
from supervisor.core.policy import RestartHistory, RestartPolicy
from supervisor.core.states import ProcessState as S
from supervisor.daemon.commands import process_info

from .test_process import FakeRuntime, die, exit_status, make

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Runtime(FakeRuntime):
    """The fake runtime, plus the running checks it was asked to watch."""

    def __init__(self) -> None:
        super().__init__()
        self.running_watched: list[str] = []

    def watch_running(self, process) -> None:
        self.running_watched.append(process.name)

    def unwatch_running(self, process) -> None:
        if process.name in self.running_watched:
            self.running_watched.remove(process.name)


def restart_delays(policy: RestartPolicy, runs: list[float]) -> list[float]:
    """The wait before each restart of runs lasting ``runs`` seconds, back to back."""
    history, now, delays = RestartHistory(), 0.0, []
    for lived in runs:
        now += lived
        delay, _ = history.next_delay(policy, now, lived)
        delays.append(delay)
        now += delay
    return delays


def test_defaults_burst_then_double_up_to_the_cap() -> None:
    assert restart_delays(RestartPolicy(), [0.2] * 12) == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]


def test_restart_delay_applies_to_every_restart() -> None:
    assert restart_delays(RestartPolicy(delay=0.5, burst=2), [0.1] * 5) == [0.5, 0.5, 1, 2, 4]


def test_a_long_run_resets_the_count_and_ends_the_crash_loop() -> None:
    policy = RestartPolicy(burst=2, interval=10)
    history = RestartHistory()
    for now in (1, 2, 3, 5):
        delay, loop = history.next_delay(policy, now, 0.5)
    assert loop and delay == 2
    delay, loop = history.next_delay(policy, 100, 10)  # lasted restart_interval
    assert (delay, loop) == (0, False) and not history.crash_loop


def test_restarts_spread_out_never_back_off() -> None:
    # A run of 3 s: at most 4 restarts in any 10 s, under the burst of 5.
    assert set(restart_delays(RestartPolicy(), [3.0] * 30)) == {0}


def test_a_long_loop_starts_a_handful_of_times_per_interval() -> None:
    policy, history, now, starts = RestartPolicy(), RestartHistory(), 0.0, []
    while now < 600:
        starts.append(now)
        now += 0.2
        delay, _ = history.next_delay(policy, now, 0.2)
        now += delay
    late = [t for t in starts if t > 60]
    assert max(sum(1 for t in late if w <= t < w + 10) for w in range(60, 590)) <= 1
    assert max(sum(1 for t in starts if w <= t < w + 10) for w in range(0, 590)) <= 9


def test_the_crash_loop_in_the_state_machine_and_its_status() -> None:
    p, rt = make(Runtime(), startsecs=0, autorestart=True)
    p.start()
    for _ in range(5):
        rt.advance(0.2)
        die(p, rt, exit_status(1))
        assert p.state is S.RUNNING, "restarted at once within the burst"
    rt.advance(0.2)
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF
    assert "crash loop: restarting in 1 s" in p.reason
    assert p.description().endswith("crash loop: restarting in 1 s")
    for wait in (1, 2, 4, 8):
        rt.advance(wait)
        assert p.state is S.RUNNING
        die(p, rt, exit_status(1))
    assert p.description().endswith("crash loop: restarting in 16 s")
    rt.advance(8)
    assert p.description().endswith("crash loop: restarting in 8 s")
    rt.advance(8)
    assert p.state is S.RUNNING and p.restarts == 10


def test_a_start_on_request_forgets_the_crash_loop() -> None:
    p, rt = make(Runtime(), startsecs=0, autorestart=True, restart_burst=0)
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF and "restarting in 1 s" in p.reason


def test_restart_delay_waits_in_backoff() -> None:
    p, rt = make(Runtime(), startsecs=0, autorestart=True, restart_delay=3)
    p.start()
    rt.advance(60)
    die(p, rt, exit_status(0))
    assert p.state is S.BACKOFF and "restart_delay: restarting in 3 s" in p.reason
    rt.advance(2.9)
    assert p.state is S.BACKOFF
    rt.advance(0.2)
    assert p.state is S.RUNNING


def test_failed_starts_keep_startretries() -> None:
    p, rt = make(Runtime(), startsecs=1, startretries=1)
    p.start()
    die(p, rt, exit_status(1))
    assert p.state is S.BACKOFF and "retry 1 of 1 in 1s" in p.reason


# -- alive ------------------------------------------------------------------------


def test_health_bookkeeping() -> None:
    health = Health(3)
    assert health.state == "unknown"
    assert health.passed() and health.state == "healthy"
    assert not health.failed("a") and not health.failed("b")
    assert health.state == "healthy"
    assert health.failed("c") and health.state == "unhealthy" and health.last_error == "c"
    health.reset()
    assert (health.state, health.failures) == ("unknown", 0)


def test_alive_failures_restart_through_the_stop_sequence() -> None:
    p, rt = make(Runtime(), startsecs=0, alive={"tcp": 8000, "failures": 2},
                 stop_sequence=[{"signal": "INT", "wait": 5}, {"signal": "TERM", "wait": 5}])
    assert process_info(p)["health"] == "unknown"
    p.start()
    assert rt.running_watched == ["p"]
    pid = p.pid
    p.alive_result(True)
    assert process_info(p)["health"] == "healthy"
    p.alive_result(False, "connection refused")
    assert p.state is S.RUNNING and "1 failed checks, last: connection refused" in p.description()
    p.alive_result(False, "connection refused")
    assert p.state is S.STOPPING and rt.running_watched == []
    assert "unhealthy: 2 failed checks in a row (tcp:127.0.0.1:8000); last: connection refused" in p.reason
    assert rt.sent[0] == (pid, signal.SIGINT, False)
    assert process_info(p)["health"] == "unhealthy"
    die(p, rt, signal.SIGINT)
    assert p.state is S.RUNNING and p.pid != pid and p.restarts == 1
    assert process_info(p)["health"] == "unknown" and rt.running_watched == ["p"]


def test_health_changes_are_reported_with_the_checks_last_result() -> None:
    p, rt = make(Runtime(), startsecs=0, alive={"tcp": 8000, "failures": 2})
    p.start()
    p.alive_result(True)
    p.alive_result(True)  # no change: nothing reported
    p.alive_result(False, "connection refused")  # one failure of two: still healthy
    assert rt.health_events == [("unknown", "healthy", "tcp:127.0.0.1:8000: passed")]
    p.alive_result(False, "connection refused")
    assert rt.health_events[1] == ("healthy", "unhealthy", "2 failed checks in a row (tcp:127.0.0.1:8000); "
                                   "last: connection refused")
    assert p.state is S.STOPPING  # the restart follows the report
    die(p, rt, signal.SIGTERM)
    assert p.state is S.RUNNING
    p.alive_result(False, "refused")
    p.alive_result(False, "refused")  # the new run: from "unknown" again
    assert rt.health_events[2][:2] == ("unknown", "unhealthy") and len(rt.health_events) == 3


def test_a_stop_request_during_a_health_restart_wins() -> None:
    p, rt = make(Runtime(), startsecs=0, alive={"tcp": 8000, "failures": 1})
    p.start()
    p.alive_result(False, "refused")
    assert p.state is S.STOPPING
    p.stop()
    die(p, rt, signal.SIGTERM)
    assert p.state is S.STOPPED


def test_no_health_and_no_watching_without_alive() -> None:
    p, rt = make(Runtime(), startsecs=0)
    p.start()
    assert process_info(p)["health"] is None and rt.running_watched == []
    p.alive_result(False, "ignored")
    assert p.state is S.RUNNING


# -- watchdog ---------------------------------------------------------------------


def test_watchdog_pings_keep_it_and_silence_restarts_it() -> None:
    p, rt = make(Runtime(), startsecs=0, ready="notify", watchdog=2)
    p.start()
    pid = p.pid
    p.mark_ready("READY=1")
    for _ in range(5):
        rt.advance(1.5)
        p.watchdog_ping()
    assert p.state is S.RUNNING and p.pid == pid
    rt.advance(2.1)
    assert p.state is S.STOPPING and "watchdog: no WATCHDOG=1 within 2s" in p.reason
    die(p, rt, signal.SIGTERM)
    assert p.state is S.STARTING and p.pid != pid


def test_watchdog_trigger_restarts_at_once_and_a_stop_disarms_it() -> None:
    p, rt = make(Runtime(), startsecs=0, ready="notify", watchdog=2)
    p.start()
    p.mark_ready()
    p.watchdog_ping(trigger=True)
    assert p.state is S.STOPPING and "WATCHDOG=trigger" in p.reason
    p.stop()
    die(p, rt, signal.SIGTERM)
    assert p.state is S.STOPPED
    rt.advance(10)
    assert p.state is S.STOPPED and rt.pending() == []
