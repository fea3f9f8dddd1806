"""The run directory's lock and state file (crash-only restart).

``{run_dir}/superd.lock`` is flock'ed for superd's whole life: a second superd
with the same run directory refuses to start. ``{run_dir}/superd.state`` lists
every live run (instance, leader pid and start time, process group, cgroup,
run token): a snapshot, replaced atomically (temp file, rename), and
``{run_dir}/superd.journal``, the runs begun since, one JSON line each,
appended at the end of the event-loop turn that spawned them.

Neither is fsync'ed. The file is for a superd that dies (SIGKILL, the OOM
killer, a crash), and what it wrote is in the page cache for the next one
to read; after the machine itself goes down no process it names is left,
and the start time and token every entry carries keep a stale one from
matching another process. (An fsync per spawning turn cost 3 ms on disk:
0.6 s of a 10,000-program start.)
A new snapshot empties the journal (see :mod:`.statefile` for when), so a
start-up of N programs writes O(N) bytes, not a snapshot per turn. Reading
takes both; a line cut short by a crash is ignored, a run in both counts once.

What a state file left by a superd that did not clean up names is stopped by
:mod:`~supervisor.daemon.recovery` before anything starts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from typing import Optional

from .procfs import start_time

log = logging.getLogger("superd")

LOCK_NAME = "superd.lock"
STATE_NAME = "superd.state"
JOURNAL_NAME = "superd.journal"
VERSION = 1
class Locked(Exception):
    """superd must not start (another one owns the run directory)."""


class RunDir:
    """The lock and the state file in ``[superd] run_dir``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state_path = os.path.join(path, STATE_NAME)
        self.journal_path = os.path.join(path, JOURNAL_NAME)
        self.lock_path = os.path.join(path, LOCK_NAME)
        self._lock_fd: Optional[int] = None
        self._journal_fd: Optional[int] = None

    def lock(self) -> None:
        """Take the lock, or raise :class:`Locked` naming the holder."""
        from .private import check_private

        unsafe = check_private(self.path)
        if unsafe:
            raise Locked(unsafe)
        try:
            os.makedirs(self.path, mode=0o755, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise Locked(f"cannot use run_dir {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 32, 0).decode().strip()
            except (OSError, UnicodeDecodeError):
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise Locked(f"another superd{who} is running with run_dir {self.path} "
                              f"(its lock {self.lock_path} is held); to run a second one, give "
                              f"it its own [superd] run_dir (or its own socket)") from None
            raise Locked(f"cannot lock {self.lock_path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        # The file stays: removing it would let two superds lock two different
        # files of the same name.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def read(self) -> Optional[dict]:
        try:
            with open(self.state_path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable state file %s: %s", self.state_path, exc)
            return None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            log.warning("ignoring the state file %s: not one this superd understands", self.state_path)
            return None
        processes = data.get("processes")
        if not isinstance(processes, list):
            processes = data["processes"] = []
        tokens = {e.get("token") for e in processes if isinstance(e, dict)}
        for entry in self._journal():
            token = entry.get("token")
            if not isinstance(token, str) or token not in tokens:
                tokens.add(token)
                processes.append(entry)
        return data

    def _journal(self) -> list[dict]:
        try:
            with open(self.journal_path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("ignoring the unreadable journal %s: %s", self.journal_path, exc.strerror or exc)
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # empty, or cut short by a crash mid-write
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def write(self, data: dict) -> None:
        """Replace the snapshot atomically (temp file, rename), then empty the journal."""
        temp = f"{self.state_path}.{os.getpid()}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, json.dumps(data, separators=(",", ":")).encode())
            finally:
                os.close(fd)
            os.rename(temp, self.state_path)
        except OSError as exc:
            log.error("cannot write the state file %s: %s", self.state_path, exc.strerror or exc)
            try:
                os.unlink(temp)
            except OSError:
                pass
            return
        # A crash before this leaves runs in both: read() counts each once.
        try:
            if self._journal_fd is not None:
                os.ftruncate(self._journal_fd, 0)
            else:
                os.unlink(self.journal_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot empty the journal %s: %s", self.journal_path, exc.strerror or exc)

    def append(self, records: list[dict]) -> None:
        """Add runs to the journal, one JSON line each (one write)."""
        if not records:
            return
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
        try:
            if self._journal_fd is None:
                self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                           0o644)
            os.write(self._journal_fd, data)
        except OSError as exc:
            log.error("cannot write the journal %s: %s", self.journal_path, exc.strerror or exc)

    def left_behind(self) -> bool:
        """Is there a state file (or journal) a superd of this directory left?"""
        return os.path.exists(self.state_path) or os.path.exists(self.journal_path)

    def remove(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        for path, what in ((self.journal_path, "journal"), (self.state_path, "state file")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove the %s %s: %s", what, path, exc.strerror)


def boot_id() -> Optional[str]:
    """This boot's identity: pids and start times only mean something within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def superd_record() -> dict:
    return {"pid": os.getpid(), "start": start_time(os.getpid()), "boot": boot_id()}
