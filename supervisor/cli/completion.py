"""Completion of superctl's arguments: the names the running superd knows
and the signal names. Click's shell completion and the interactive shell
share it."""

from __future__ import annotations

import click

from ..control.client import Client
from .app import resolve_socket

#: The commands whose NAME arguments also accept "all".
NAME_COMMANDS_WITH_ALL = ("status", "start", "stop", "restart", "wait", "signal", "clear", "update")
SIGNALS = ("HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP", "TSTP", "WINCH")


def daemon_names(socket_path: str) -> list[str]:
    """Names known to the running superd; [] when it cannot be asked."""
    try:
        with Client(socket_path, connect_timeout=1.0, timeout=2.0) as client:
            names = client.names()
    except Exception:
        return []
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str)]


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        root = ctx.find_root()
        path = resolve_socket(root.params.get("socket_path"), root.params.get("config_file"))
    except Exception:
        return []
    names = daemon_names(path)
    if ctx.info_name in NAME_COMMANDS_WITH_ALL:
        names.append("all")
    return sorted({n for n in names if n.startswith(incomplete)})


def complete_signal(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [s for s in SIGNALS if s.startswith(incomplete.upper())]
