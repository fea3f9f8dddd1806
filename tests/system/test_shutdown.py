"""Graceful shutdown with real processes and real signals: order, parallelism, deadline."""

from __future__ import annotations

import re
import signal
import time

import psutil
import pytest

from tests.conftest import IGNORE_TERM, pid_alive, script, wait_until
from tests.system.conftest import setting

pytestmark = pytest.mark.timeout(60)


def ignoring_programs(tmp_path, count: int, **settings) -> str:
    prog = script(tmp_path, "ignore_term.py", IGNORE_TERM)
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    return "".join(
        f'[program.ign{i}]\ncommand = ["{prog}", "{tmp_path}/ready{i}"]\nstartsecs = 0\n{extra}\n'
        for i in range(count)
    )


def wait_ready_files(tmp_path, count: int) -> None:
    wait_until(lambda: all((tmp_path / f"ready{i}").exists() for i in range(count)), 15, what="programs to ignore TERM")


def test_term_ignoring_program_is_killed_after_stopwaitsecs(superd_factory, tmp_path):
    d = superd_factory(ignoring_programs(tmp_path, 1, stopwaitsecs=2))
    wait_ready_files(tmp_path, 1)
    pid = d.status("ign0")["ign0"]["pid"]
    began = time.monotonic()
    result = d.call("stop", names=["ign0"])
    took = time.monotonic() - began
    assert result[0]["ok"] and result[0]["state"] == "stopped"
    assert 1.9 <= took < 6.0, took  # at stopwaitsecs (2 s), far from the default 10 s
    assert not pid_alive(pid)
    assert d.status("ign0")["ign0"]["exitstatus"] == -signal.SIGKILL


def test_twenty_term_ignoring_programs_of_one_priority_stop_in_parallel(superd_factory, tmp_path):
    d = superd_factory(ignoring_programs(tmp_path, 20, stopwaitsecs=2), daemon="shutdown_timeout = 30")
    wait_ready_files(tmp_path, 20)
    pids = [p["pid"] for p in d.status().values()]
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    code = d.wait_exit(15)
    took = time.monotonic() - began
    assert code == 0
    # In parallel: one phase signals all twenty at once (superd's log), and the
    # whole stop takes about one stopwaitsecs, far from the 40 s of one after
    # the other (with room for a loaded machine).
    # (The line names the first ten and counts the rest.)
    phases = re.findall(r"stopping ([^(]*) \(priority", d.log())
    assert len(phases) == 1, phases
    shown, _, more = phases[0].partition(" and ")
    names = set(shown.split(", "))
    assert len(names) == 10 and names <= {f"ign{i}" for i in range(20)} and more.strip() == "10 more", phases
    assert 1.9 <= took < 10, f"20 programs took {took:.2f}s to stop; in parallel they take about 2s"
    assert not any(pid_alive(pid) for pid in pids)


def test_priorities_stop_in_descending_order(superd_factory, tmp_path):
    # Each program notes when it got TERM and leaves 0.3 s later.
    prog = script(
        tmp_path,
        "note.py",
        """
        import signal, sys, time
        def on_term(*_):
            with open(sys.argv[1], "a") as f:
                f.write(f"{sys.argv[2]} {time.time()}\\n")
            time.sleep(0.3)
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        open(sys.argv[1] + "." + sys.argv[2], "w").close()
        while True:
            time.sleep(1)
        """,
    )
    notes = tmp_path / "notes"
    config = ""
    for name, priority in (("db", 10), ("web_a", 900), ("web_b", 900), ("worker", 500)):
        config += f'[program.{name}]\ncommand = ["{prog}", "{notes}", "{name}"]\npriority = {priority}\nstartsecs = 0\n'
    d = superd_factory(config)
    wait_until(lambda: all((tmp_path / f"notes.{n}").exists() for n in ("db", "web_a", "web_b", "worker")), 15)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(15) == 0
    got = {}
    for line in notes.read_text().splitlines():
        name, when = line.split()
        got[name] = float(when)
    assert set(got) == {"db", "web_a", "web_b", "worker"}
    # Same priority: together (one phase of superd's plan, and TERM at about the
    # same time, with room for a loaded machine; one after the other they would
    # be 0.3 s apart at least). Lower priority: only after the higher one has exited.
    phases = [set(names.split(", ")) for names in re.findall(r"stopping ([^(]*) \(priority", d.log())]
    assert phases == [{"web_a", "web_b"}, {"worker"}, {"db"}], phases
    assert abs(got["web_a"] - got["web_b"]) < 1.0
    assert got["worker"] - max(got["web_a"], got["web_b"]) >= 0.25
    assert got["db"] - got["worker"] >= 0.25


def test_shutdown_timeout_beats_a_long_stopwaitsecs(superd_factory, tmp_path):
    d = superd_factory(ignoring_programs(tmp_path, 2, stopwaitsecs=30), daemon="shutdown_timeout = 3")
    wait_ready_files(tmp_path, 2)
    pids = [p["pid"] for p in d.status().values()]
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    took = time.monotonic() - began
    # The deadline, not stopwaitsecs (30 s), rules: superd's plan gives the
    # programs what fits in the 3 s, and the wall clock agrees, with room for
    # a loaded machine (the exact timing is the benchmark's business).
    budgets = [float(b) for b in re.findall(r"stopping [^(]*\(priority \d+, up to ([\d.]+)s\)", d.log())]
    assert budgets and sum(budgets) <= 3.0, d.log()
    assert took < 3.0 + 2.0, f"superd needed {took:.2f}s with shutdown_timeout = 3"
    assert took > 2.0, "the programs should have had most of the 3 s"
    assert not any(pid_alive(pid) for pid in pids)


def test_second_term_kills_at_once(superd_factory, tmp_path):
    d = superd_factory(ignoring_programs(tmp_path, 3, stopwaitsecs=30), daemon="shutdown_timeout = 40")
    wait_ready_files(tmp_path, 3)
    d.signal(signal.SIGTERM)
    wait_until(lambda: "shutting down" in d.log(), 5)
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    assert "SIGTERM during shutdown: killing what is left" in d.log()
    assert time.monotonic() - began < 10  # at once: not after stopwaitsecs (30 s)


def test_quit_kills_everything_immediately(superd_factory, tmp_path):
    d = superd_factory(ignoring_programs(tmp_path, 2, stopwaitsecs=30))
    wait_ready_files(tmp_path, 2)
    pids = [p["pid"] for p in d.status().values()]
    began = time.monotonic()
    d.signal(signal.SIGQUIT)
    d.wait_exit(10)
    assert "SIGQUIT: killing everything now" in d.log()
    assert time.monotonic() - began < 10  # at once: not after stopwaitsecs (30 s)
    assert not any(pid_alive(pid) for pid in pids)


def test_worker_finishes_its_in_flight_job_on_term(superd_factory, tmp_path):
    worker = script(
        tmp_path,
        "worker.py",
        """
        import signal, sys, time
        stopping = False
        def on_term(*_):
            global stopping
            stopping = True
        signal.signal(signal.SIGTERM, on_term)
        log = open(sys.argv[1], "a", buffering=1)
        job = 0
        while not stopping:
            job += 1
            log.write(f"start {job}\\n")
            time.sleep(1.5)          # the job: TERM must not cut it short
            log.write(f"done {job}\\n")
        log.write("clean exit\\n")
        """,
    )
    jobs = tmp_path / "jobs"
    d = superd_factory(f'[program.worker]\ncommand = ["{worker}", "{jobs}"]\nstopwaitsecs = 10\nstartsecs = 0\n')
    wait_until(lambda: jobs.exists() and "start 1" in jobs.read_text(), 10)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(15) == 0
    lines = jobs.read_text().splitlines()
    assert lines[-1] == "clean exit"
    starts = [l for l in lines if l.startswith("start")]
    dones = [l for l in lines if l.startswith("done")]
    assert len(starts) == len(dones), f"a job was left half done: {lines}"


def test_stopasgroup_kills_background_children(superd_factory, tmp_path):
    d = superd_factory(
        '[program.family]\ncommand = ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]\n'
        "stopasgroup = true\nstartsecs = 0\n"
    )
    pid = d.wait_state("family", "running")["pid"]
    children = wait_until(lambda: [c.pid for c in psutil.Process(pid).children()] if len(psutil.Process(pid).children()) == 2 else None, 10)
    result = d.call("stop", names=["family"])
    assert result[0]["ok"]
    assert not pid_alive(pid)
    assert not any(pid_alive(c) for c in children)


def test_without_stopasgroup_the_rest_is_stopped_once_the_leader_is_gone(superd_factory, tmp_path, mode):
    # The stop signal goes to the leader alone (a trap shows the child did not
    # get it first); once the leader is gone, what it left gets it too:
    # nothing of a program survives its stop, in either tracking mode (this
    # one in tests/system, the cgroup one in tests/privileged/test_cgroup_tracking.py).
    log = tmp_path / "child.log"
    d = superd_factory(
        '[program.family]\ncommand = ["sh", "-c", "sh -c \'trap \\"echo TERM >> '
        + str(log)
        + '; exit 0\\" TERM; sleep 1000 & wait\' & wait"]\nstartsecs = 0\n',
        daemon=setting(mode),
    )
    pid = d.wait_state("family", "running")["pid"]
    child = wait_until(lambda: psutil.Process(pid).children(), 10)[0].pid
    d.call("stop", names=["family"])
    assert not pid_alive(pid) and not pid_alive(child)
    assert log.read_text() == "TERM\n"
    assert "what is left of it" in d.log()


def test_group_that_outlives_its_leader_is_stopped_when_the_leader_exits(superd_factory, tmp_path):
    # The leader exits on its own; its background child must not be left behind.
    d = superd_factory(
        '[program.leaky]\ncommand = ["sh", "-c", "sleep 1000 & echo $! > '
        + str(tmp_path / "child")
        + '; sleep 0.3; exit 0"]\nkillasgroup = true\nautorestart = false\nstartsecs = 0\nstopwaitsecs = 1\n'
    )
    wait_until(lambda: (tmp_path / "child").exists() and (tmp_path / "child").read_text().strip(), 10)
    child = int((tmp_path / "child").read_text())
    d.wait_state("leaky", "exited")
    wait_until(lambda: not pid_alive(child), 5, what="the leftover child to be stopped")


def children_running(pid: int, argv: list[str]) -> list[int]:
    """Direct children of ``pid`` running ``argv`` (processes may vanish meanwhile)."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if child.cmdline() == argv:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def zombie_children(pid: int) -> list[int]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def test_orphans_come_back_to_superd_and_are_reaped(superd_factory, tmp_path):
    # The program double-forks children that exit later, after their parent is gone.
    d = superd_factory(
        '[program.forker]\ncommand = ["sh", "-c", "for i in 1 2 3 4 5; do (sleep 2 &) ; done; sleep 1000"]\n'
        "startsecs = 0\n"
    )
    d.wait_state("forker", "running")

    # As a child subreaper, superd becomes the orphans' parent...
    wait_until(lambda: len(children_running(d.pid, ["sleep", "2"])) == 5, 10, what="5 orphans adopted by superd")
    # ...and reaps them when they exit: no zombie stays behind.
    wait_until(lambda: not children_running(d.pid, ["sleep", "2"]), 10, what="the orphans to be reaped")
    wait_until(lambda: not zombie_children(d.pid), 5, what="no zombie under superd")
    assert d.state_of("forker") == "running"
