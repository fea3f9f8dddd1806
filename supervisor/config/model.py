"""The config objects superd runs from: frozen dataclasses, checked and expanded.

:class:`Config` holds the ``[superd]`` settings, the programs as written and
the instances (one per process) with their strings expanded. An instance's
stop plan, its steps and their total time, comes from
:meth:`InstanceConfig.stop_plan` and :meth:`~InstanceConfig.stop_time` and
nowhere else. ``StopStep`` and ``Autorestart`` belong to the core, which
carries them out.
"""

from __future__ import annotations

import shlex
import signal
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from ..core.policy import Autorestart
from ..core.stopping import StopStep

if TYPE_CHECKING:
    from .http import HttpSettings
    from .sockets import SocketConfig

__all__ = ["Autorestart", "Config", "DaemonSettings", "Dependency", "GroupConfig", "InstanceConfig",
           "ProgramConfig", "ReadyCheck", "StopStep"]

#: Probe defaults: a TCP connect is cheap and quick, a command less so.
TCP_INTERVAL, TCP_TIMEOUT = 0.1, 1.0
EXEC_INTERVAL, EXEC_TIMEOUT = 1.0, 5.0


@dataclass(frozen=True, slots=True)
class ReadyCheck:
    """``ready``: "notify" (sd_notify READY=1), "tcp" (a connect succeeds) or
    "exec" (a command exits 0). In a program, ``target`` and ``command`` are as
    written; in an instance they are expanded and ``host``/``port`` are set."""

    kind: str
    target: str = ""                   # tcp: "PORT" or "HOST:PORT"
    command: tuple[str, ...] = ()      # exec
    interval: float = 0.0              # seconds between probes (tcp, exec)
    timeout: float = 0.0               # seconds one probe may take
    host: str = ""
    port: int = 0
    key: str = field(default="ready", compare=False, repr=False)  # where it was written, for messages
    path: str = "/"                    # http: the request path (target is the URL as written)
    failures: int = 0                  # alive: consecutive failures that make it unhealthy

    def __str__(self) -> str:
        if self.kind == "http":
            return self.target
        if self.kind == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp:{host}:{self.port}" if self.port else f"tcp:{self.target}"
        if self.kind == "exec":
            return "exec " + shlex.join(self.command)
        return self.kind


class Dependency(NamedTuple):
    """A ``depends_on`` entry: start only once ``program`` is ``condition``:
    "ready" (running and ready, or exited for good with an expected code),
    "started" (running, ready or not) or "completed" (exited for good with an
    expected code: a one-shot job that did its work)."""

    program: str
    condition: str = "ready"
    key: str = ""          # where it was written: "[0]" or ".db", for messages


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The ``[superd]`` table; paths are absolute. ``socket == ""``: no control socket."""

    socket: str
    socket_mode: int = 0o600
    socket_group: str | None = None
    allow_users: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()
    run_dir: str
    shutdown_timeout: float = 25.0
    client_timeout: float = 60.0       # control connections: seconds to send a whole request line
    log_level: str = "info"
    log_format: str = "text"
    logs_dir: str
    include: tuple[str, ...] = ()      # absolute glob patterns
    cgroups: str = "auto"              # "auto": a cgroup v2 per program where usable; "off": never
    nice: int = -10                    # superd's own nice value while it runs (daemon/priority.py); 0: never raised
    log_timestamps: bool = False       # the programs' default: an RFC 3339 time before each captured line
    log_file: str | None = None        # superd's own log, as well as stderr; absolute
    log_file_maxbytes: int = 50 << 20  # rotated like a program's log file (0: never)
    log_file_backups: int = 10


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """One ``[program.NAME]`` table: values checked, strings not yet ${}-expanded.

    ``directory``, ``stdout`` and ``stderr`` are as written (relative paths are
    made absolute, against ``source``'s folder, in the instances).
    """

    name: str
    command: tuple[str, ...]
    directory: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    umask: int | None = None
    numprocs: int = 1
    numprocs_start: int = 0            # the first instance's number (SUPERD_PROCESS_NUM)
    process_name: str | None = None    # supervisord's %-template (config.naming); None: superd's names
    priority: int = 999                # unless written: its group's (config.groups)
    autostart: bool = True
    autorestart: Autorestart = Autorestart.UNEXPECTED
    exitcodes: frozenset[int] = frozenset({0})
    startsecs: float = 1.0
    startretries: int = 3
    stopsignal: signal.Signals = signal.SIGTERM
    stopwaitsecs: float = 10.0
    stopasgroup: bool = False
    killasgroup: bool = False          # no effect (a warning); the parser defaults it to stopasgroup
    exit_with: bool = False
    stdout: str = "auto"
    stderr: str = "auto"
    stdout_maxbytes: int = 50 << 20
    stdout_backups: int = 10
    stderr_maxbytes: int = 50 << 20
    stderr_backups: int = 10
    ready: ReadyCheck | None = None    # None: ready once running (after startsecs)
    ready_timeout: float = 60.0        # not ready by then: a failed start
    depends_on: tuple[Dependency, ...] = ()  # programs this one waits for before it starts
    stop_sequence: tuple[StopStep, ...] = ()   # empty: the one step (stopsignal, stopwaitsecs)
    stop_command: tuple[str, ...] = ()  # run first when stopping, like systemd's ExecStop
    sockets: tuple[str, ...] = ()      # [socket.NAME] tables it gets as fds 3, 4, ... (config.sockets)
    # Restart policy, health, resources, environment files (config.resources, config.probes).
    restart_delay: float = 0.0         # seconds before every automatic restart
    restart_burst: int = 5             # automatic restarts within restart_interval before backing off
    restart_interval: float = 10.0
    restart_backoff_max: float = 30.0  # crash loop: 1 s, 2 s, 4 s ... up to this
    alive: ReadyCheck | None = None    # a check while running; failing ones restart it
    watchdog: float | None = None      # with ready = "notify": WATCHDOG=1 at least this often
    memory_restart: int | None = None  # bytes
    memory_max: int | None = None      # cgroup v2 memory.max (bytes)
    cpu_max: float | None = None       # cgroup v2 cpu.max in CPUs
    pids_max: int | None = None        # cgroup v2 pids.max
    rlimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard); -1 is unlimited
    nice: int | None = None
    oom_score_adj: int | None = None
    env_file: tuple[str, ...] = ()     # as written; "-" in front: optional
    # Hooks, event listeners, timestamps (config.eventkeys, daemon.hooks, daemon.listeners).
    before_start: tuple[str, ...] | None = None  # runs to completion before every start
    after_stop: tuple[str, ...] | None = None    # runs after every stop or exit
    hook_timeout: float = 30.0
    log_timestamps: bool | None = None  # None: [superd] log_timestamps
    events: tuple[str, ...] | None = None  # supervisord event types: an event listener
    buffer_size: int = 10              # events waiting for a listener before the oldest is dropped
    stdin: bool = False                # a pipe superd holds as its stdin (superctl fg, sendProcessStdin)
    source: str | None = None          # the file it came from


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """One process to run: a program's settings with its strings expanded."""

    name: str                    # "web", or "web_0", "web_1", ... when numprocs > 1 (or process_name's)
    group: str                   # its [group.NAME], else the program's name
    num: int                     # from numprocs_start
    program: ProgramConfig
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]   # the program's own, not superd's
    directory: str | None        # absolute
    stdout: str                  # "auto" | "console" | "null" | absolute path
    stderr: str                  # same, or "stdout"
    ready: ReadyCheck | None = None       # expanded, tcp host and port parsed
    alive: ReadyCheck | None = None       # the same for the alive check
    env_files: tuple[tuple[str, bool], ...] = ()  # (absolute path, optional)
    stop_steps: tuple[StopStep, ...] = ()  # expanded; empty: (stopsignal, stopwaitsecs)

    def stop_plan(self) -> tuple[StopStep, ...]:
        """The steps of a stop, SIGKILL after the last."""
        return self.stop_steps or (StopStep(self.program.stopsignal, wait=self.program.stopwaitsecs),)

    def stop_time(self) -> float:
        """The longest a stop waits before SIGKILL."""
        return sum(step.wait for step in self.stop_plan())


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """One ``[group.NAME]`` table: supervisord's group of several programs."""

    name: str
    programs: tuple[str, ...]          # as listed
    priority: int | None = None        # the default priority of its programs
    source: str | None = None          # the file it came from


@dataclass(frozen=True)
class Config:
    """Everything superd runs from."""

    path: str | None             # the main file; None in single-program mode
    daemon: DaemonSettings
    programs: tuple[ProgramConfig, ...]     # by name
    instances: tuple[InstanceConfig, ...]   # by priority, then name (numbers in order)
    warnings: tuple[str, ...] = ()          # "FILE: KEY: message" for settings that do nothing
    sockets: tuple["SocketConfig", ...] = ()  # [socket.NAME] tables, by name (config.sockets)
    http: "HttpSettings | None" = None        # [http] (config.http); None without the table
    groups: tuple[GroupConfig, ...] = ()      # [group.NAME] tables, by name (config.groups)

    @cached_property
    def _index(self) -> tuple[dict[str, ProgramConfig], dict[str, InstanceConfig]]:
        return ({p.name: p for p in self.programs}, {i.name: i for i in self.instances})

    def program(self, name: str) -> ProgramConfig | None:
        return self._index[0].get(name)

    def instance(self, name: str) -> InstanceConfig | None:
        return self._index[1].get(name)

