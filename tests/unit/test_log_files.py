"""Program output without processes: log files (rotation between lines,
backups, truncation, devices), reading a file's last lines, and the ring that
keeps a stream's last lines in memory.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.timeout(30)


def test_logfile_rotates_between_lines_and_keeps_backups(tmp_path):
    from supervisor.output.logfile import LogFile

    path = tmp_path / "x.log"
    f = LogFile(str(path), maxbytes=100, backups=2)
    lines = [b"%03d %s\n" % (i, b"a" * (i % 17)) for i in range(200)]
    for i in range(0, 200, 7):  # several lines a write, like a pipe read
        f.write([b"".join(lines[i:i + 7])])
    f.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x.log", "x.log.1", "x.log.2"]
    kept = b"".join((tmp_path / n).read_bytes() for n in ("x.log.2", "x.log.1", "x.log"))
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert kept == b"".join(lines)[-len(kept):]
    assert all(line in lines for line in kept.splitlines(keepends=True)), "a line was cut"


def test_logfile_without_backups_truncates_and_cuts_overlong_lines(tmp_path):
    from supervisor.output.logfile import LogFile

    path = tmp_path / "y.log"
    f = LogFile(str(path), maxbytes=10, backups=0)
    f.write([b"0123456789abcdef\n"])  # longer than maxbytes: cut at maxbytes
    f.write([b"xy\n"])
    f.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.log"]
    assert path.read_bytes() == b"abcdef\nxy\n"  # "0123456789" went with the truncation


def test_logfile_maxbytes_zero_never_rotates_and_devices_never_rotate(tmp_path):
    from supervisor.output.logfile import LogFile

    path = tmp_path / "z.log"
    f = LogFile(str(path), maxbytes=0, backups=3)
    for _ in range(100):
        f.write([b"z" * 99 + b"\n"])
    f.close()
    assert path.stat().st_size == 10000 and sorted(p.name for p in tmp_path.iterdir()) == ["z.log"]
    null = LogFile("/dev/null", maxbytes=10, backups=3)
    null.write([b"more than ten bytes\n"] * 3)
    null.close()
    assert os.path.exists("/dev/null") and not os.path.exists("/dev/null.1")


def test_read_last_lines(tmp_path):
    from supervisor.output.logfile import read_last_lines

    path = tmp_path / "t.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(100000)))
    assert read_last_lines(str(path), 3) == [b"line 99997", b"line 99998", b"line 99999"]
    assert len(read_last_lines(str(path), 50000)) == 50000
    assert read_last_lines(str(path), 0) == []
    assert read_last_lines(str(tmp_path / "missing"), 5) == []
    path.write_bytes(b"a\nno newline")
    assert read_last_lines(str(path), 5) == [b"a", b"no newline"]


def test_ring_keeps_the_last_lines_within_its_bound():
    from supervisor.output.streams import RING_BYTES, Stream
    from supervisor.output.sinks import NullSink

    stream = Stream("p", "stdout", NullSink(), ring=True)
    for i in range(50000):
        stream.emit([b"%05d\n" % i])
    assert stream.ring_size <= RING_BYTES
    assert stream.last_lines(3) == [b"49997", b"49998", b"49999"]
    stream.emit([b"".join(b"%07d\n" % i for i in range(100000))])  # one huge chunk
    assert stream.ring_size <= RING_BYTES
    lines = stream.last_lines(10**6)
    assert lines[-1] == b"0099999" and all(len(line) == 7 for line in lines)
