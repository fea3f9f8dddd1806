"""The listening sockets superd binds and holds for its programs.

Every ``[socket.NAME]`` is bound before any program starts and stays open in
superd, whatever its programs do: while one restarts, clients wait in the
socket's backlog instead of being refused, and the next process accepts them.
superd itself never accepts; the descriptors are only kept (close-on-exec, so
no program gets one it did not ask for; :mod:`.passing` hands them over).

A reload binds what is new before anything changes (:meth:`Sockets.prepare`):
a table whose address stays keeps its socket (a new backlog or file mode is
applied to it), a new address is bound afresh, and if anything cannot be
bound the reload is refused as a whole. :meth:`Sockets.commit` then makes the
new set current and closes what is gone. A Unix socket's file is removed when
superd closes the socket.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import socket
import stat
from dataclasses import dataclass, field
from typing import Iterable

from ..config import Config, ConfigError, Problem, SocketConfig
from ..config.problems import dotted
from ..config.sockets import DEFAULT_MODE
from ..core.errors import SpawnError

log = logging.getLogger("superd")

_HINTS = {
    errno.EADDRINUSE: "address already in use (another program listens there)",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "cannot assign the address (it is not one of this machine's)",
}


@dataclass
class Held:
    """One bound socket and the table it was bound for."""

    config: SocketConfig
    sock: socket.socket
    inode: int = 0            # a Unix socket's file, to remove only our own

    @property
    def fd(self) -> int:
        return self.sock.fileno()


@dataclass
class Plan:
    """What a reload will hold: prepared, not yet current."""

    held: dict[str, Held]
    fresh: list[Held] = field(default_factory=list)   # bound for this reload
    changed: set[str] = field(default_factory=set)    # tables added, removed or changed


class Sockets:
    """Every socket superd holds, by name."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}

    # -- binding -------------------------------------------------------------

    def open(self, configs: Iterable[SocketConfig]) -> None:
        """Bind every socket before anything starts. Raises ConfigError (nothing kept)."""
        self.commit(self.prepare(configs))

    def prepare(self, configs: Iterable[SocketConfig]) -> Plan:
        """Bind what ``configs`` need that is not held yet. Raises ConfigError,
        having closed whatever it bound: then nothing has changed."""
        by_address = {h.config.bind_key: h for h in self.held.values()}
        plan = Plan({})
        problems: list[Problem] = []
        reused: list[tuple[Held, Held]] = []   # (held now, what it will be)
        for config in configs:
            old = by_address.get(config.bind_key)
            if old is not None:
                plan.held[config.name] = Held(config, old.sock, old.inode)
                reused.append((old, plan.held[config.name]))
                continue
            try:
                held = _bind(config)
            except OSError as exc:
                problems.append(Problem(config.source, f"socket.{dotted(config.name)}", _explain(config, exc)))
                continue
            plan.held[config.name] = held
            plan.fresh.append(held)
        if not problems:
            for old, held in reused:
                try:
                    _adjust(old.config, held)
                except OSError as exc:
                    problems.append(Problem(held.config.source, f"socket.{dotted(held.config.name)}",
                                            _explain(held.config, exc)))
        if problems:
            self.discard(plan)
            raise ConfigError(problems)
        plan.changed = {name for name in self.held.keys() | plan.held.keys()
                        if name not in self.held or name not in plan.held
                        or self.held[name].config != plan.held[name].config}
        return plan

    def commit(self, plan: Plan) -> None:
        """The prepared sockets become the held ones; those no longer used close."""
        kept = {id(h.sock) for h in plan.held.values()}
        for name, old in self.held.items():
            if id(old.sock) not in kept:
                log.info("socket.%s: closing %s", name, old.config.address)
                _close(old)
        for held in plan.fresh:
            log.info("socket.%s: listening on %s (backlog %d)", held.config.name, held.config.address,
                     held.config.backlog)
        plan.fresh = []  # held now: discard() leaves them alone
        self.held = plan.held

    def discard(self, plan: Plan) -> None:
        """A prepared plan is not applied: what it bound closes."""
        for held in plan.fresh:
            _close(held)
        plan.fresh.clear()

    def close(self) -> None:
        """superd is ending: every socket closes, every Unix socket file goes."""
        for held in self.held.values():
            _close(held)
        self.held = {}

    # -- use -------------------------------------------------------------------

    def fds(self, names: Iterable[str]) -> list[tuple[str, int]]:
        """(name, superd's descriptor) for a program's ``sockets``, in order."""
        missing = [name for name in names if name not in self.held]
        if missing:  # only a superd driven by hand (tests) gets here: run() binds them first
            raise SpawnError(f"socket {', '.join(missing)} is not open", 1)
        return [(name, self.held[name].fd) for name in names]

    def describe(self, config: Config) -> list[dict]:
        """The ``sockets`` view: each socket, its address and the programs using it."""
        users: dict[str, list[str]] = {}
        for program in config.programs:
            for name in program.sockets:
                users.setdefault(name, []).append(program.name)
        return [{"name": name, "listen": h.config.listen, "kind": h.config.kind, "address": h.config.address,
                 "backlog": h.config.backlog, "programs": users.get(name, [])}
                for name, h in sorted(self.held.items())]


def _bind(config: SocketConfig) -> Held:
    if config.kind == "unix":
        return _bind_unix(config)
    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not host:  # every address: IPv6 and IPv4 on one socket, IPv4 alone without IPv6
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            host = "::"
        except OSError:
            sock, host = socket.socket(socket.AF_INET, socket.SOCK_STREAM), "0.0.0.0"
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, config.port))
        sock.listen(config.backlog)
    except BaseException:
        sock.close()
        raise
    return Held(config, sock)


def _bind_unix(config: SocketConfig) -> Held:
    path = config.path
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        held = Held(config, sock, os.stat(path).st_ino)
        try:
            _set_owner(config, path)
            sock.listen(config.backlog)  # nobody connects before the mode is right
        except BaseException:
            os.unlink(path)
            raise
    except BaseException:
        sock.close()
        raise
    return held


def _remove_stale(path: str) -> None:
    """A socket file left by a superd that was killed goes; a live one is in use."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        pass  # a full backlog: someone listens
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "in use: another program listens on it", path)


def _set_owner(config: SocketConfig, path: str) -> None:
    os.chmod(path, DEFAULT_MODE if config.mode is None else config.mode)
    if config.owner is not None or config.group is not None:
        uid = -1 if config.owner is None else pwd.getpwnam(config.owner).pw_uid
        gid = -1 if config.group is None else grp.getgrnam(config.group).gr_gid
        os.chown(path, uid, gid)


def _adjust(old: SocketConfig, held: Held) -> None:
    """A reload changed a table but not its address: the held socket takes the new settings."""
    new = held.config
    if new.kind == "unix" and (new.mode, new.owner, new.group) != (old.mode, old.owner, old.group):
        _set_owner(new, new.path)
    if new.backlog != old.backlog:
        held.sock.listen(new.backlog)


def _close(held: Held) -> None:
    config = held.config
    held.sock.close()
    if config.kind == "unix" and held.inode:
        try:
            if os.lstat(config.path).st_ino == held.inode:
                os.unlink(config.path)
        except OSError:
            pass


def _explain(config: SocketConfig, exc: OSError) -> str:
    reason = _HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    if exc.errno == errno.EACCES and config.kind == "tcp" and config.port < 1024:
        reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    elif exc.errno == errno.EEXIST or (exc.errno == errno.EADDRINUSE and config.kind == "unix"):
        reason = exc.strerror or reason
    return f"cannot listen on {config.address}: {reason}"
