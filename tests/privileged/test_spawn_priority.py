"""superd runs above its programs while it starts them (spawn_nice), and they are
born at nice 0 all the same (SCHED_RESET_ON_FORK). Needs root (CAP_SYS_NICE)."""

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


def test_superd_starts_its_programs_at_spawn_nice_they_are_born_at_0_and_it_comes_back_to_0(superd_factory, tmp_path):
    count = 200  # a burst long enough for the first programs to look while superd still spawns
    config, seen = programs(tmp_path, count)
    sd = superd_factory(config)
    seen_values = readings(seen, count)
    assert {mine for mine, _ in seen_values} == {0}, "a program inherited superd's raised priority"
    assert -10 in {superd for _, superd in seen_values}, "no program saw superd raised while it spawned"
    assert nice_of(sd.pid) == 0, "superd still raised once its start-up is over"
    # A restart is no start-up: superd stays at nice 0 for it.
    os.unlink(seen / "p000")
    sd.call("restart", names=["p:p000"])
    assert readings(seen, count)[0] == (0, 0)


def test_spawn_nice_0_leaves_superd_at_its_nice(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 50)
    superd_factory(config, daemon="spawn_nice = 0")
    assert set(readings(seen, 50)) == {(0, 0)}


def test_superd_started_at_another_nice_keeps_it_and_its_programs_inherit_it(superd_factory, tmp_path):
    config, seen = programs(tmp_path, 50)
    sd = superd_factory(config, prefix=("nice", "-n", "5"))
    assert set(readings(seen, 50)) == {(5, 5)}
    assert nice_of(sd.pid) == 5
