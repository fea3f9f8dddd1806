"""A log file on a disk that fills up and frees again (issue #20, part 6): no
two lines merged, what was lost counted. Needs root for a small tmpfs."""

from __future__ import annotations

import errno
import re
import subprocess

import pytest

from tests.conftest import script, skip_or_fail, wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.root]

WRITER = """
    import os, time
    i = 0
    while True:
        os.write(1, b"line %06d %s\\n" % (i, b"x" * 88))
        i += 1
        time.sleep(0.004)
"""


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(path) -> None:
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_cuts_no_line_into_the_next(superd_factory, tmp_path, small_disk):
    prog = script(tmp_path, "writer", WRITER)
    log = small_disk / "p.log"
    d = superd_factory(f'[program.p]\ncommand = ["{prog}"]\nstartsecs = 0\nstdout = "{log}"\n')
    wait_until(lambda: log.exists() and log.stat().st_size > 2000, 10, what="output")
    filler = small_disk / "filler"
    _fill(filler)
    wait_until(lambda: "cannot write" in d.log(), 10, what="the disk-full failure")
    size_when_full = log.stat().st_size
    filler.unlink()
    wait_until(lambda: "writing " + str(log) + " again" in d.log(), 20, what="the log file to work again")
    wait_until(lambda: log.stat().st_size > size_when_full + 3000, 10, what="output after recovery")
    d.call("stop", names=["p"])
    lines = log.read_bytes().split(b"\n")
    assert lines.pop() == b""
    bad = [line for line in lines if not re.fullmatch(rb"line \d{6} x{88}", line)]
    assert not bad, bad[:3]
    info = d.status("p")["p"]
    assert info["dropped"]["stdout"]["lines"] > 0 and info["dropped"]["stdout"]["bytes"] > 0
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == sorted(numbers)
