"""Process tracking with a cgroup v2 per instance (needs root and a writable
cgroup v2 hierarchy).

The tests are those of tests/system that take the ``mode`` fixture, written
once and run twice: there in the fallback mode (process groups, the
subreaper, the run id), here with ``mode`` "cgroup", which gives superd
``cgroups = "auto"`` and lets the tests check the cgroups themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import PYTHON, wait_until

# Collected here a second time, where the mode fixture below applies.
from tests.system.test_crash_recovery import test_after_a_sigkill_the_next_superd_runs_exactly_one_of_each
from tests.system.test_process_tracking import (
    test_a_daemon_deaf_to_term_is_killed_at_stopwaitsecs,
    test_run_id_is_in_every_process_environment,
    test_shutdown_ends_the_escaped_daemon_and_removes_the_cgroups,
    test_status_of_100_programs_stays_cheap,
    test_stop_ends_the_escaped_daemon,
    test_the_mode_is_logged_and_shown_by_check,
    test_what_an_exit_leaves_behind_is_gone_before_the_restart,
)
from tests.system.test_shutdown import test_without_stopasgroup_the_rest_is_stopped_once_the_leader_is_gone

pytestmark = [pytest.mark.root, pytest.mark.cgroup, pytest.mark.timeout(60)]


@pytest.fixture
def mode() -> str:
    """Instead of tests/system/conftest.py's "fallback" (the cgroup marker has
    made sure there is a usable cgroup v2)."""
    return "cgroup"


def _cgroup_of(pid) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line for line in f if line.startswith("0::")).strip()[3:]


def test_start_up_hops_between_cgroups_but_helpers_are_born_at_home(superd_factory, tmp_path):
    """Start-up slices go from one program's cgroup straight to the next; a
    hook or a probe forked meanwhile must still be born in superd's own
    cgroup, and superd must end up there."""
    hook, probe = tmp_path / "hook.cgroup", tmp_path / "probe.cgroup"
    config = []
    for i in range(120):  # three start-up slices
        config.append(f'[program.p{i:03d}]\ncommand = "sleep 1000"\nstartsecs = 0\n')
        if i == 60:
            config.append(f'before_start = "sh -c \\"grep ^0:: /proc/self/cgroup > {hook}\\""\n')
        if i == 30:
            config.append(f'ready = {{ exec = "sh -c \\"grep ^0:: /proc/self/cgroup > {probe}\\"", interval = 0.1 }}\n')
    d = superd_factory("".join(config), daemon='cgroups = "auto"\n')
    wait_until(lambda: all(p["state"] == "running" for p in d.status().values()), 30)
    home = _cgroup_of(d.pid)
    assert f"/superd-{d.pid}" not in home
    for name, info in d.status().items():
        assert _cgroup_of(info["pid"]) == f"{home.rstrip('/')}/superd-{d.pid}/{name}", name
    wait_until(lambda: hook.exists() and probe.exists(), 10)
    assert hook.read_text().strip()[3:] == home
    assert probe.read_text().strip()[3:] == home


def test_a_shutdown_removes_each_cgroup_as_soon_as_its_run_is_over(superd_factory):
    """The first phase's program is gone: its cgroup is removed right away
    (one rmdir tests and removes it), while the next phase still stops a
    program that ignores SIGTERM, whose cgroup stays until it is over."""
    d = superd_factory("""
        [program.quick]
        command = "sleep 1000"
        priority = 900
        startsecs = 0

        [program.deaf]
        command = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
        priority = 100
        startsecs = 0
        stopwaitsecs = 3
    """, daemon='cgroups = "auto"\n')
    wait_until(lambda: all(p["state"] == "running" for p in d.status().values()), 20)
    status = d.status()
    quick, deaf, deaf_pid = status["quick"]["cgroup"], status["deaf"]["cgroup"], status["deaf"]["pid"]
    assert os.path.isdir(quick) and os.path.isdir(deaf)
    d.signal(signal.SIGTERM)
    wait_until(lambda: not os.path.exists(quick), 5, what="the first phase's cgroup removed")
    assert os.path.isdir(deaf), "the cgroup of the program still stopping went too"
    assert psutil.pid_exists(deaf_pid) and psutil.Process(deaf_pid).status() != psutil.STATUS_ZOMBIE
    assert d.wait_exit(20) == 0
    assert not os.path.exists(os.path.dirname(deaf)), "superd's cgroup is still there"


def _inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds, over all its descriptors."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                count += sum(1 for line in f if line.startswith("inotify wd:"))
        except FileNotFoundError:
            pass
    return count


def test_a_cgroup_is_watched_only_once_superd_waits_for_what_is_left_of_its_run(superd_factory, tmp_path):
    """A start-up makes no inotify watch (most runs never need one). A stop
    that waits for the rest of a run watches its cgroup and ends as soon as
    the rest is gone, not at stopwaitsecs (5 s here): the rest is a process
    this test moved into the cgroup, which superd never reaps, so only the
    cgroup's populated event can tell superd that it ended."""
    from tests.system.test_process_tracking import forker_program

    plain = "".join(f'[program.p{i:02d}]\ncommand = "sleep 1000"\nstartsecs = 0\n' for i in range(20))
    d = superd_factory(forker_program(tmp_path) + plain, daemon='cgroups = "auto"\n')
    wait_until(lambda: all(p["state"] == "running" for p in d.status().values()), 20)
    assert _inotify_watches(d.pid) == 0
    cgroup = d.status("forker")["forker"]["cgroup"]
    # It outlives the rest of the run by half a second after its SIGTERM.
    stranger = subprocess.Popen([PYTHON, "-c", "import signal, sys, time\n"
                                 "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), sys.exit(3)))\n"
                                 "print(flush=True)\ntime.sleep(1000)"], stdout=subprocess.PIPE)
    try:
        stranger.stdout.readline()  # its handler is in place
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(stranger.pid))
        began = time.monotonic()
        (result,) = d.call("stop", names=["forker"])  # TERM to the leader, then to the rest
        took = time.monotonic() - began
        assert result["ok"]
        assert stranger.wait(5) == 3
        assert took < 3, f"the stop waited {took:.2f}s for a run that was over"
        assert _inotify_watches(d.pid) <= 1  # the forker's cgroup at most
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait()
