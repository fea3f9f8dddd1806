"""Faults superd must survive, the parts that need no process (issue #20,
part 6): a failed fork said as such, ``--check`` bounds (numprocs, name
length, argument size), a disk that fills up in the middle of a line."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

pytestmark = pytest.mark.timeout(30)


def _load(tmp_path, programs: str):
    from supervisor.config import load

    path = tmp_path / "superd.toml"
    path.write_text(f'[superd]\nsocket = "{tmp_path / "s.sock"}"\nlogs_dir = "{tmp_path / "logs"}"\n' + programs)
    return load(str(path), dict(os.environ))


def test_a_failed_fork_says_so_and_why(monkeypatch, tmp_path):
    from supervisor.core.errors import SpawnError
    from supervisor.daemon import spawn

    config = _load(tmp_path, '[program.p]\ncommand = "sh -c true"\n')

    def no_fork(*args, **kwargs):
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # what fork() failing raises

    monkeypatch.setattr(subprocess, "Popen", no_fork)
    with pytest.raises(SpawnError) as caught:
        spawn.spawn(config.instances[0], {})
    message = str(caught.value)
    assert "fork failed" in message and "cannot execute" not in message
    assert "process limit" in message, message


@pytest.mark.parametrize("programs, says", [
    ('[program.p]\ncommand = "true"\nnumprocs = 1000000\n', "numprocs: expected an integer from 1 to 10000"),
    ("[program.%s]\ncommand = \"true\"\n" % ("n" * 250), "too long: at most 200"),
    ('[program.p]\ncommand = ["echo", "%s"]\n' % ("x" * 200_000), "the kernel takes at most 131071"),
    ('[program.p]\ncommand = ["echo"%s]\n' % (', "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"' * 80_000), "ARG_MAX"),
])
def test_check_refuses_what_could_never_run(tmp_path, programs, says):
    from supervisor.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, programs)
    assert says in str(caught.value)


def test_longest_names_still_make_log_files(tmp_path):
    config = _load(tmp_path, '[program.%s]\ncommand = "true"\nnumprocs = 10000\n' % ("n" * 200))
    longest = max(len(f"{i.name}-stdout.log".encode()) for i in config.instances)
    assert longest <= 255


class _FullDisk:
    """os.write/os.writev that take ``room`` bytes, then fail with ENOSPC, until ``room`` is reset."""

    def __init__(self, monkeypatch, room: int) -> None:
        from supervisor.output import sinks

        self.room = room
        self.real_write, self.real_writev = os.write, os.writev
        monkeypatch.setattr(sinks.os, "write", self.write)
        monkeypatch.setattr(sinks.os, "writev", self.writev)

    def write(self, fd, data):
        if self.room is None:
            return self.real_write(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.real_write(fd, bytes(data)[:self.room])
        self.room -= n
        return n

    def writev(self, fd, buffers):
        return self.write(fd, b"".join(buffers))


def test_a_full_disk_never_merges_two_lines(monkeypatch, tmp_path):
    from supervisor.output.logfile import LogFile

    path = tmp_path / "p.log"
    log = LogFile(str(path), maxbytes=0, backups=0, clock=lambda: clock[0])
    clock = [0.0]
    disk = _FullDisk(monkeypatch, room=None)
    log.write([b"line 1\n"])
    disk.room = 10  # the next write is cut after "line 2\nlin"
    log.write([b"line 2\nline 3\n"])
    assert log.failing
    disk.room = None  # space again
    clock[0] += 60
    log.write([b"line 4\n"])
    log.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert all(line in (b"line 1", b"line 2", b"line 4") for line in lines[:-1]), lines
    assert lines[:-1] == [b"line 1", b"line 2", b"line 4"]


def test_a_deleted_log_file_is_written_again_at_once(tmp_path, caplog):
    from supervisor.output.logfile import LogFile

    path = tmp_path / "logs" / "p-stdout.log"
    log = LogFile(str(path), maxbytes=0, backups=0, make_dirs=True)
    log.write([b"before\n"])
    os.unlink(path)
    os.rmdir(path.parent)  # an "auto" log: its folder goes too
    with caplog.at_level("WARNING", logger="superd"):
        log.write([b"after\n"])
    log.close()
    assert path.read_bytes() == b"after\n"
    assert "was deleted" in caplog.text
