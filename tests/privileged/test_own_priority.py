"""superd runs above its programs for as long as it runs ([superd] nice), and they
are born at nice 0 all the same (SCHED_RESET_ON_FORK). Needs root (CAP_SYS_NICE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

# Each program writes its own nice value and superd's (its parent's) as it starts,
# then waits to be stopped. Field 19 of /proc/PID/stat is the nice value; neither
# "sh" nor superd's command name holds a space that would shift the fields.
PROBE = """#!/bin/sh
mine=$(cut -d' ' -f19 /proc/$$/stat)
superd=$(cut -d' ' -f19 /proc/$PPID/stat)
echo "$mine $superd" > "{seen}/$SUPERD_PROCESS_NAME.tmp"
mv "{seen}/$SUPERD_PROCESS_NAME.tmp" "{seen}/$SUPERD_PROCESS_NAME"
exec sleep 1000
"""


def programs(tmp_path: Path, count: int) -> tuple[str, Path]:
    seen = tmp_path / "seen"
    seen.mkdir()
    probe = tmp_path / "probe.sh"
    probe.write_text(PROBE.format(seen=seen))
    probe.chmod(0o755)
    config = f'[program.p]\ncommand = "{probe}"\nnumprocs = {count}\nprocess_name = "p%(process_num)03d"\n' \
             f'startsecs = 0\nstopwaitsecs = 2\nstdout = "null"\nstderr = "null"\n'
    return config, seen


def readings(seen: Path, count: int) -> list[tuple[int, int]]:
    wait_until(lambda: len(list(seen.glob("p[0-9][0-9][0-9]"))) == count, timeout=30,
               what=f"all {count} programs to write what they saw")
    return [tuple(int(x) for x in path.read_text().split()) for path in sorted(seen.glob("p[0-9][0-9][0-9]"))]


def nice_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def reset_on_fork(pid: int) -> bool:
    return bool(os.sched_getscheduler(pid) & os.SCHED_RESET_ON_FORK)


def test_superd_runs_at_nice_minus_10_and_its_programs_are_born_at_0(superd_factory, tmp_path):
    count = 200  # a burst long enough for superd's own start-up work to overlap the programs'
    config, seen = programs(tmp_path, count)
    sd = superd_factory(config)
    seen_values = readings(seen, count)
    assert {mine for mine, _ in seen_values} == {0}, "a program inherited superd's raised priority"
    assert {superd for _, superd in seen_values} == {-10}, "a program saw superd at another nice value"
    assert nice_of(sd.pid) == -10 and reset_on_fork(sd.pid)
    # A restart long after the start-up: superd still above, the new process at 0.
    os.unlink(seen / "p000")
    sd.call("restart", names=["p:p000"])
    assert readings(seen, count)[0] == (0, -10)


def test_a_reload_applies_a_new_nice_and_nice_0_lowers_superd(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 3)
    sd = superd_factory(config, daemon="nice = -10")
    readings(seen, 3)
    path = tmp_path / "superd.toml"
    path.write_text(path.read_text().replace("nice = -10", "nice = -3"))
    sd.call("reload")
    assert nice_of(sd.pid) == -3 and reset_on_fork(sd.pid)
    os.unlink(seen / "p001")
    sd.call("restart", names=["p:p001"])
    assert readings(seen, 3)[1] == (0, -3)
    path.write_text(path.read_text().replace("nice = -3", "nice = 0"))
    sd.call("reload")
    assert nice_of(sd.pid) == 0 and not reset_on_fork(sd.pid)


def test_a_renice_from_outside_is_kept_by_later_reloads(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 3)
    sd = superd_factory(config, daemon="nice = -10")
    readings(seen, 3)
    os.setpriority(os.PRIO_PROCESS, sd.pid, -15)  # renice -n -15 -p SUPERD
    path = tmp_path / "superd.toml"
    path.write_text(path.read_text().replace("nice = -10", "nice = -5"))
    sd.call("reload")
    assert nice_of(sd.pid) == -15
    wait_until(lambda: "superd was reniced to -15 from outside" in sd.log(), timeout=10, what="the log line")


def test_nice_0_leaves_superd_at_its_nice(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 50)
    sd = superd_factory(config, daemon="nice = 0")
    assert set(readings(seen, 50)) == {(0, 0)}
    assert not reset_on_fork(sd.pid)


def test_superd_started_at_another_nice_keeps_it_and_its_programs_inherit_it(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 50)
    sd = superd_factory(config, prefix=("nice", "-n", "5"))
    assert set(readings(seen, 50)) == {(5, 5)}
    assert nice_of(sd.pid) == 5
