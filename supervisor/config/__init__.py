"""The configuration: TOML in, frozen dataclasses out.

The model, the key tables and their checks, loading with includes, groups,
variable expansion, numprocs instances and their names, the dependency graph checks and the diff a
reload applies. A program's stop plan (its steps and total time) is built
here and nowhere else. Every problem is reported with its file and dotted key.
"""

from __future__ import annotations

# superctl imports this package to find the socket: every module of it stays
# stdlib-only and cheap to import.
import os
from collections.abc import Mapping

from ..core.policy import Autorestart
from ..core.stopping import StopStep
from .checks import parse_signal, parse_size
from .files import SOCKET_PATH_MAX, default_paths, read_socket_path, tomllib
from .instances import expand
from .keys import DAEMON_KEYS, PROGRAM_KEYS, STREAM_WORDS, parse_tcp_target
from .loader import load, parse, single_program
from .model import (EXEC_INTERVAL, EXEC_TIMEOUT, TCP_INTERVAL, TCP_TIMEOUT, Config, DaemonSettings, Dependency,
                    GroupConfig, InstanceConfig, ProgramConfig, ReadyCheck)
from .problems import ConfigError, Invalid, Problem
from .sockets import SocketConfig
from .tables import RESERVED_NAMES

__all__ = [
    "CONFIG_SEARCH_PATH", "DAEMON_KEYS", "EXEC_INTERVAL", "EXEC_TIMEOUT", "PROGRAM_KEYS", "RESERVED_NAMES",
    "SOCKET_PATH_MAX", "STREAM_WORDS", "TCP_INTERVAL", "TCP_TIMEOUT",
    "Autorestart", "Config", "ConfigError", "DaemonSettings", "Dependency", "GroupConfig", "InstanceConfig",
    "Invalid",
    "Problem", "ProgramConfig", "ReadyCheck", "SocketConfig", "StopStep",
    "default_paths", "expand", "find_config_file", "load", "parse", "parse_signal", "parse_size",
    "parse_tcp_target", "read_socket_path", "single_program", "tomllib",
]

# Where superd looks for its config without -c or $SUPERD_CONFIG, in order.
# Defined here, with the function that reads it, so that it is one attribute.
CONFIG_SEARCH_PATH = ("superd.toml", "/etc/superd/superd.toml")


def find_config_file(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The config file to use: ``-c``, then ``$SUPERD_CONFIG`` (even if missing,
    so that ``load()`` reports it), then the first of ``CONFIG_SEARCH_PATH`` that exists."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get("SUPERD_CONFIG"):
        return environ["SUPERD_CONFIG"]
    for candidate in CONFIG_SEARCH_PATH:
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return None
