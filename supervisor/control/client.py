"""A small synchronous client for superd's control socket.

Newline-delimited JSON-RPC 2.0 over a Unix stream socket (see
``supervisor.control.protocol``). superctl uses it, and so can scripts::

    from supervisor.client import Client, NoSuchName

    with Client("/run/superd.sock") as superd:
        superd.restart(["web"])
        for proc in superd.status():
            print(proc["name"], proc["state"])

This module sits on superctl's fast path: it imports only the standard
library (plus the protocol constants, the error classes and the connection
next to it, and the reading methods of :mod:`.streams`). A ``Client`` is
not thread-safe; use one per thread.
"""

from __future__ import annotations

import os
import time

from . import protocol
from .connection import Connection
from .errors import (
    ActionFailed,
    Busy,
    CallTimeout,
    InternalError,
    InvalidConfig,
    InvalidParams,
    MethodNotFound,
    NoSuchName,
    NotAllowed,
    NotInState,
    ProtocolError,
    ShuttingDown,
    SocketNotFound,
    SuperdError,
    TooLarge,
    Unreachable,
    error_from_response,
)
from .streams import Streams, names_list as _names, with_given as _opt

__all__ = [
    "Client",
    "SuperdError",
    "Unreachable",
    "SocketNotFound",
    "ProtocolError",
    "ActionFailed",
    "NotInState",
    "NoSuchName",
    "ShuttingDown",
    "CallTimeout",
    "NotAllowed",
    "TooLarge",
    "Busy",
    "InvalidConfig",
    "InvalidParams",
    "MethodNotFound",
    "InternalError",
    "error_from_response",
]


class Client(Streams):
    """A connection to superd's control socket.

    ``path`` is the socket's path; without one, the client finds it as
    superctl does: ``$SUPERD_SOCKET``, else the ``socket`` of the config file
    superd would read (``$SUPERD_CONFIG``, ./superd.toml,
    /etc/superd/superd.toml), else the default path (``SocketNotFound``
    when that config cannot be read). The connection opens on the first call
    (or ``connect()``), and reopens on the next call after it broke.
    ``connect_timeout`` bounds the connect; ``timeout`` bounds each reply
    (``None``, the default, waits as long as superd takes: calls such as
    ``stop`` and ``wait`` legitimately block, and superd enforces their own
    timeouts).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, connect_timeout: float | None = 5.0,
                 timeout: float | None = None) -> None:
        if not path:
            from .locate import find_socket  # lazily: the config package only when needed

            path = find_socket()
        self.path = os.fspath(path)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._conn: Connection | None = None

    # -- connection

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<Client {self.path!r} {state}>"

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.sock is not None

    def connect(self) -> Client:
        """Open the connection now (raises ``Unreachable``)."""
        if not self.connected:
            self._conn = Connection(self.path, self.connect_timeout, self.timeout)
        return self

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> Connection:
        self.connect()
        assert self._conn is not None
        return self._conn

    # -- generic call

    def call(self, method: str, **params: object) -> object:
        """Call ``method`` with keyword ``params``; return its result or raise
        the typed ``SuperdError``."""
        conn = self._connection()
        try:
            return conn.call(method, params)
        finally:
            if conn.sock is None and self._conn is conn:
                self._conn = None

    # -- methods

    def version(self) -> dict:
        """``{"version", "pid", "python"}`` of the running superd."""
        return self.call("version")  # type: ignore[return-value]

    def state(self) -> dict:
        """``{"state", "pid", "since", "config"}``; state is one of
        ``protocol.DAEMON_STATES``."""
        return self.call("state")  # type: ignore[return-value]

    def status(self, names: list[str] | str | None = None, fields: list[str] | None = None) -> list[dict]:
        """Process dicts, for every process or for ``names``; with ``fields``,
        only those members (and superd reads only what they need: ask for
        ``["name", "state"]`` when that is all you look at, as with 10,000
        programs the usage members cost it a kernel read per program).
        Members superd does not know are left out, not refused."""
        params: dict = {} if names is None else {"names": _names(names)}
        if fields is not None:
            params["fields"] = list(fields)
        return self.call("status", **params)  # type: ignore[return-value]

    # start, stop and restart take ``progress``: a function called with each
    # step superd reports while it waits ({"name", "step"}: stopping,
    # stopped, starting, running, "ready (i of n)"), once the request has run
    # ``progress_after`` seconds. A superd without progress reports just answers.

    def start(self, names: list[str] | str, wait: bool = True, timeout: float | None = None,
              progress=None, progress_after: float = 0.0) -> list[dict]:
        params = _opt({"names": _names(names), "wait": wait}, timeout=timeout)
        return self._waiting("start", params, progress, progress_after)  # type: ignore[return-value]

    def stop(self, names: list[str] | str, wait: bool = True, timeout: float | None = None,
             progress=None, progress_after: float = 0.0) -> list[dict]:
        params = _opt({"names": _names(names), "wait": wait}, timeout=timeout)
        return self._waiting("stop", params, progress, progress_after)  # type: ignore[return-value]

    def restart(self, names: list[str] | str, wait: bool = True, timeout: float | None = None,
                rolling: bool = False, progress=None, progress_after: float = 0.0) -> list[dict]:
        """Stop, then start. ``rolling``: one at a time, each ready again before the next stops."""
        params = {"names": _names(names), "wait": wait}
        if rolling:
            params["rolling"] = True
        return self._waiting("restart", _opt(params, timeout=timeout), progress, progress_after)  # type: ignore[return-value]

    def _waiting(self, method: str, params: dict, progress, after: float) -> object:
        if progress is None or not params.get("wait", True):
            return self.call(method, **params)
        conn = self._connection()
        try:
            try:
                return conn.call(method, {**params, "progress": after}, progress)
            except InvalidParams as exc:
                if "progress" not in exc.message:
                    raise
            # A superd from before progress reports refused the param (before
            # acting): the same request without it.
            return conn.call(method, params)
        finally:
            if conn.sock is None and self._conn is conn:
                self._conn = None

    def signal(self, sig: str | int, names: list[str] | str) -> list[dict]:
        """Send ``sig`` (a name with or without SIG, or a number)."""
        return self.call("signal", names=_names(names), signal=sig)  # type: ignore[return-value]

    def pid(self, name: str | None = None) -> dict:
        """``{"pid": N}`` (superd's) without a name, else
        ``{"pids": [{"name", "pid"}, ...]}``."""
        return self.call("pid", **_opt({}, name=name))  # type: ignore[return-value]

    def reload(self) -> dict:
        """``{"added", "removed", "changed"}``; raises ``InvalidConfig``."""
        return self.call("reload")  # type: ignore[return-value]

    def update(self, names: list[str] | str | None = None) -> dict:
        """Re-read the config and apply it, as ``reload``; with ``names``
        (groups), only when it changes nothing else. The result adds
        ``groups``: ``{"added", "changed", "removed"}`` group names."""
        return self.call("update", **({} if names is None else {"names": _names(names)}))  # type: ignore[return-value]

    def avail(self) -> dict:
        """``{"processes": [{name, group, in_use, autostart, priority}], "config_error"}``."""
        return self.call("avail")  # type: ignore[return-value]

    def clear(self, names: list[str] | str) -> list[dict]:
        """Empty the processes' log files and what ``tail`` keeps of them."""
        return self.call("clear", names=_names(names))  # type: ignore[return-value]

    def write_stdin(self, name: str, data: str) -> int:
        """Write ``data`` to a process's stdin (``stdin = true``); the bytes taken."""
        return self.call("stdin", name=name, data=data)["bytes"]  # type: ignore[index]

    def shutdown(self, wait: bool = True) -> dict:
        """Ask superd to shut down. With ``wait``, return only once superd is
        gone (it closes the connection when it exits). If superd is already
        shutting down, wait for it all the same."""
        conn = self._connection()
        try:
            peer = conn.peer_pid()
            started = _process_start(peer)
            try:
                result = conn.call("shutdown", {})
            except ShuttingDown:
                if not wait:
                    raise
                result = {"already": True}
            if wait:
                try:
                    conn.drain()
                except (CallTimeout, ProtocolError):
                    raise
                except SuperdError:
                    pass
                # superd's socket closes as its process ends; wait for the end
                # itself when the process is visible from here. (It is only
                # when the pid superd reports is the listener's pid as seen
                # here: not through a proxy or from another pid namespace.)
                if isinstance(result, dict) and peer > 0 and result.get("pid") == peer and started:
                    _wait_gone(peer, started, GONE_TIMEOUT)
            return result  # type: ignore[return-value]
        finally:
            if wait or conn.sock is None:
                conn.close()
                if self._conn is conn:
                    self._conn = None

    def wait(self, names: list[str] | str, state: str = "running", timeout: float | None = None) -> list[dict]:
        """Block until every named process is in ``state`` (or, for "ready",
        running and ready); raises
        ``NotInState`` (``data``: the processes that are not) at the timeout."""
        return self.call("wait", **_opt({"names": _names(names), "state": state}, timeout=timeout))  # type: ignore[return-value]

    def sockets(self) -> list[dict]:
        """The listening sockets superd holds: name, listen, kind, address, backlog, programs."""
        return self.call("sockets")  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Every instance, program and ``group:*`` name (for completion)."""
        return self.call("names")  # type: ignore[return-value]


#: After superd closed the connection of ``shutdown``, how long its process
#: may take to end.
GONE_TIMEOUT = 10.0


def _process_start(pid: int) -> str | None:
    """The start time of a live (not zombie) process ``pid``, else None."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _wait_gone(pid: int, started: str, timeout: float) -> None:
    """Wait until the process ``pid`` that started at ``started`` has ended
    (a zombie counts as ended); ``CallTimeout`` if it does not in time."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while _process_start(pid) == started:
        if time.monotonic() >= deadline:
            raise CallTimeout(protocol.TIMEOUT, f"superd (pid {pid}) closed its socket but has not exited after {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
