"""How superd learns that a program is ready: sd_notify, a TCP connect, a command.

* ``NotifySocket``: the program's own ``$NOTIFY_SOCKET``, a datagram socket
  superd reads, so a program written for systemd's ``Type=notify`` works
  unchanged. Only the processes of the program's current run are heard
  (like systemd's ``NotifyAccess=all``). Messages are ``KEY=VALUE`` lines (``READY=1``, ``STATUS=...``,
  ``RELOADING=1``, ``STOPPING=1``, ``EXTEND_TIMEOUT_USEC=...``).
* ``TcpProbe``: ready once a connection to HOST:PORT is accepted.
* ``ExecProbe``: ready once a command exits 0 (run every ``interval`` seconds,
  killed after ``timeout``); the command runs as a :class:`~supervisor.helpers.Helper`.

Each check calls its ``on_ready`` callback once and then stops; the notify
socket keeps delivering messages for as long as the program lives.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from ..config import SOCKET_PATH_MAX, ReadyCheck
from ..core.errors import SpawnError

if TYPE_CHECKING:
    from ..core.process import Process

log = logging.getLogger("superd")

#: The largest notify datagram read; systemd's own limit is about the same.
MAX_DATAGRAM = 4096
#: A STATUS= text is cut to this many characters.
MAX_STATUS = 512


def parse_notify(data: bytes) -> dict[str, str]:
    """``b"READY=1\\nSTATUS=Serving"`` -> ``{"READY": "1", "STATUS": "Serving"}``.

    Lines without ``=`` are ignored, as systemd does; values are UTF-8 with
    undecodable bytes replaced.
    """
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


#: struct ucred: pid, uid, gid.
_UCRED = struct.Struct("iII")


class NotifySocket:
    """One program's ``$NOTIFY_SOCKET``: a datagram socket superd owns and reads.

    At ``{directory}/{name}`` (a hash of the name when that is too long for a
    socket address), mode 0600, owned by the program's user. Each message
    comes with its sender's pid and uid (SO_PASSCRED), for the owner to check.
    """

    def __init__(self, directory: str, name: str, loop: asyncio.AbstractEventLoop,
                 on_message: Callable[[dict[str, str], int, int], None], uid: Optional[int] = None) -> None:
        path = os.path.join(directory, name)
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            import hashlib  # only here: it loads OpenSSL's libcrypto, megabytes superd otherwise never needs

            path = os.path.join(directory, hashlib.sha1(name.encode()).hexdigest()[:16])
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            raise OSError(errno.ENAMETOOLONG, f"{path} is too long for a socket address: shorten run_dir")
        self.address = path
        self._loop = loop
        self._on_message = on_message
        os.makedirs(directory, mode=0o755, exist_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            old_umask = os.umask(0o177)
            try:
                self._sock.bind(path)
            finally:
                os.umask(old_umask)
            if uid is not None and uid != os.geteuid():
                os.chown(path, uid, -1)
        except BaseException:
            self._sock.close()
            raise
        loop.add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        for _ in range(64):  # a burst is drained over a few loop turns, never starving others
            try:
                data, ancillary, _, _ = self._sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(_UCRED.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # pragma: no cover - nothing else is expected of a datagram socket
                log.debug("notify socket %s: %s", self.address, exc)
                return
            pid, uid = 0, -1
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                    pid, uid, _ = _UCRED.unpack_from(payload)
            fields = parse_notify(data)
            if fields:
                self._on_message(fields, pid, uid)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        try:
            os.unlink(self.address)
        except OSError:
            pass


class Probe:
    """A readiness check that polls until it passes; ``cancel()`` ends it."""

    def cancel(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class TcpProbe(Probe):
    """Ready once ``check.host:check.port`` accepts a connection.

    Tries every ``check.interval`` seconds; one attempt may take ``check.timeout``.
    """

    def __init__(self, check: ReadyCheck, on_ready: Callable[[str], None]) -> None:
        self._check = check
        self._on_ready = on_ready
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        check = self._check
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(check.host, check.port), check.timeout)
            except (OSError, asyncio.TimeoutError, UnicodeError, ValueError):  # refused, timed out, a bad host name
                await asyncio.sleep(check.interval)
                continue
            writer.close()
            self._on_ready(f"{check} accepted a connection")
            return

    def cancel(self) -> None:
        self._task.cancel()


class ExecProbe(Probe):
    """Ready once a command exits 0; run again ``interval`` seconds after each failure.

    ``run(timeout, on_exit)`` starts the command (see :class:`supervisor.helpers.Helper`)
    and returns a handle with ``cancel()``; ``on_exit(status, output)`` follows.
    """

    def __init__(self, check: ReadyCheck, loop: asyncio.AbstractEventLoop, run: Callable,
                 on_ready: Callable[[str], None], on_failure: Callable[[str], None]) -> None:
        self._check = check
        self._loop = loop
        self._run = run
        self._on_ready = on_ready
        self._on_failure = on_failure
        self._handle = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._cancelled = False
        self._try()

    def _try(self) -> None:
        self._timer = None
        if self._cancelled:
            return
        try:
            self._handle = self._run(self._check.timeout, self._exited)
        except (OSError, SpawnError) as exc:  # missing command, out of processes...
            self._on_failure(f"cannot run {self._check}: {getattr(exc, 'strerror', None) or exc}")
            self._timer = self._loop.call_later(self._check.interval, self._try)

    def _exited(self, code: Optional[int], output: str) -> None:
        self._handle = None
        if self._cancelled:
            return
        if code == 0:
            self._on_ready(f"{self._check} exited 0")
            return
        how = f"timed out after {self._check.timeout:g}s" if code is None else f"exited {code}"
        self._on_failure(f"{self._check} {how}" + (f": {output}" if output else ""))
        self._timer = self._loop.call_later(self._check.interval, self._try)

    def cancel(self) -> None:
        self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def describe(fields: Mapping[str, str]) -> str:
    """A notify message for the debug log, STATUS last."""
    return " ".join(f"{k}={v!r}" if k == "STATUS" else f"{k}={v}" for k, v in fields.items())


class Checks:
    """The readiness checks of a supervisor's processes: their notify sockets
    and running probes, keyed by instance name.

    ``process(name)`` finds a process by name (None once it is gone);
    ``run_helper(process, command, timeout, on_exit)`` runs an exec probe;
    ``from_run(process, pid, uid)`` tells whether a notify sender belongs to
    the process's current run.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, directory: str,
                 process: Callable[[str], Optional["Process"]], run_helper: Callable, from_run: Callable) -> None:
        self.loop = loop
        self.directory = directory
        self._process = process
        self._run_helper = run_helper
        self._from_run = from_run
        self._sockets: dict[str, NotifySocket] = {}
        self._probes: dict[str, Probe] = {}

    def notify_socket(self, process: "Process", uid: Optional[int]) -> str:
        """The address of the process's own NOTIFY_SOCKET, made at its first spawn and kept."""
        endpoint = self._sockets.get(process.name)
        if endpoint is None:
            endpoint = NotifySocket(self.directory, process.name, self.loop,
                                    lambda fields, pid, uid, name=process.name: self._notified(name, fields, pid, uid),
                                    uid)
            self._sockets[process.name] = endpoint
        return endpoint.address

    def _notified(self, name: str, fields: dict[str, str], sender: int, uid: int) -> None:
        """An sd_notify message: what it says, applied to the process."""
        process = self._process(name)
        if process is None or process.pid is None:
            return
        if not self._from_run(process, sender, uid):
            log.warning("%s: ignoring a notify message from pid %d, which is not the program's", name, sender)
            return
        log.debug("%s: notify %s", name, describe(fields))
        if "STATUS" in fields:
            process.status_text = fields["STATUS"][:MAX_STATUS] or None
        if fields.get("STOPPING") == "1":
            process.mark_not_ready("stopping (STOPPING=1)")
        if fields.get("RELOADING") == "1":
            process.mark_not_ready("reloading (RELOADING=1)")
        if fields.get("READY") == "1":
            process.mark_ready("READY=1")
        if fields.get("WATCHDOG") in ("1", "trigger"):
            process.watchdog_ping(trigger=fields["WATCHDOG"] == "trigger")
        usec = fields.get("EXTEND_TIMEOUT_USEC", "")
        if usec.isdecimal():
            process.extend_ready_timeout(min(int(usec[:16]), 10**15) / 1e6)  # at most ~30 years

    def watch(self, process: "Process") -> None:
        """Start the check of the run just spawned (a notify socket needs nothing more)."""
        check = process.config.ready
        if check is None or check.kind == "notify":
            return
        self.unwatch(process.name)
        pid = process.pid

        def ready(how: str) -> None:
            self._probes.pop(process.name, None)
            if process.pid == pid:
                process.mark_ready(how)

        if check.kind == "tcp":
            self._probes[process.name] = TcpProbe(check, ready)
        elif check.kind == "http":
            from .health import HttpProbe

            self._probes[process.name] = HttpProbe(check, ready)
        else:
            def failed(why: str) -> None:
                log.debug("%s: not ready yet: %s", process.name, why)

            def run(timeout: float, on_exit):
                return self._run_helper(process, check.command, timeout, on_exit)

            self._probes[process.name] = ExecProbe(check, self.loop, run, ready, failed)

    def unwatch(self, name: str) -> None:
        probe = self._probes.pop(name, None)
        if probe is not None:
            probe.cancel()

    def forget(self, name: str) -> None:
        """The instance is gone or replaced: its probe and socket go."""
        self.unwatch(name)
        endpoint = self._sockets.pop(name, None)
        if endpoint is not None:
            endpoint.close()

    def close(self) -> None:
        for name in list(self._sockets) + list(self._probes):
            self.forget(name)
