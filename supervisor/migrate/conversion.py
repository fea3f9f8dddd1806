"""The conversion of a whole supervisord config: its files read, each section
handed to its converter (or reported as not carried over), superd's shutdown
timeout made to fit the programs, and the result written as TOML that superd's
own config reader accepts."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from .. import config as superd_config
from ..core import shutdown
from .context import Context
from .daemon import convert_daemon, convert_unix_server
from .ini import read_files
from .groups import convert_groups, read_group
from .program import convert_program
from .tomlwrite import to_toml, toml_key

# Sections that only configure supervisorctl or the XML-RPC interface.
_CONTROL_ONLY = ("supervisorctl", "rpcinterface:", "ctlplugin:")


@dataclass
class Conversion:
    toml: str                   # the superd config
    messages: list[str]         # "warning: ..." and "note: ..." lines, in order
    sources: list[str]          # the files read: the main one, then the included ones

    @property
    def warnings(self) -> list[str]:
        return [m for m in self.messages if m.startswith("warning:")]


def convert(path: str) -> Conversion:
    """Read the supervisord config at ``path`` (and its includes) and convert it.

    Raises :class:`InputError` when a file cannot be read or is not INI.
    """
    ctx = Context(path)
    read_files(ctx.main, ctx.shown, ctx.warn, ctx.sections, ctx.sources)
    sections = ctx.sections
    if "supervisord" in sections:
        convert_daemon(ctx, sections["supervisord"])
    control_only = []
    unix_servers = 0
    for name, section in sections.items():
        if name.startswith("unix_http_server"):
            convert_unix_server(ctx, section, first=unix_servers == 0)
            unix_servers += 1
        elif name.startswith("inet_http_server"):
            port = section.options.get("port")
            ctx.warn(section.file, name, None, "superd has no HTTP server, only its unix "
                     "control socket" + (f"; port {port.value.strip()} is" if port else " is")
                     + " not carried over (superctl works over the socket)")
        elif name.startswith(_CONTROL_ONLY):
            control_only.append(section)
        elif name.startswith("group:"):
            read_group(ctx, section)
    if control_only:
        ctx.note(control_only[0].file, None, None, ", ".join(f"[{s.name}]" for s in control_only)
                 + ": only for supervisorctl and XML-RPC, which superctl and its socket "
                 "replace; dropped")
    for name, section in sections.items():
        kind = name.split(":", 1)[0] if ":" in name else name
        if kind == "program":
            convert_program(ctx, section)
        elif kind == "eventlistener":
            convert_program(ctx, section)  # with events = [...] (migrate/listener.py)
        elif kind == "fcgi-program":
            ctx.warn(section.file, name, None, "superd does not create FastCGI sockets; "
                     "not carried over (run the server as a program that binds its own socket)")
        elif name == "DEFAULT":
            ctx.warn(section.file, name, None, "supervisord's [DEFAULT] values are not "
                     "carried over; copy them into the sections that need them")
        elif kind not in ("supervisord", "include", "unix_http_server", "inet_http_server",
                          "group") and not name.startswith(_CONTROL_ONLY):
            ctx.warn(section.file, name, None, "unknown supervisord section; dropped")
    if not ctx.programs:
        ctx.warn(ctx.main, None, None, "no program was carried over")
    convert_groups(ctx)
    _check_shutdown_time(ctx)
    return Conversion(_document(ctx), ctx.messages, ctx.sources)


#: A stopwaitsecs longer than this cannot fit a container's stop grace period
#: (docker stop: 10 s, Kubernetes: 30 s, unless raised): the conversion
#: proposes this instead.
LONG_STOP = 60


def _check_shutdown_time(ctx: Context) -> None:
    """superd bounds the whole shutdown (supervisord does not): make room for the
    stopwaitsecs the programs ask for, phase by phase."""
    defaults = {f.name: f.default for f in dataclasses.fields(superd_config.ProgramConfig)}
    waits = {name: table.get("stopwaitsecs", defaults["stopwaitsecs"]) for name, table in ctx.programs.items()}
    priorities = {name: table.get("priority", defaults["priority"]) for name, table in ctx.programs.items()}
    wanted, phases, needed = _shutdown_time(priorities, waits)
    default = next(f.default for f in dataclasses.fields(superd_config.DaemonSettings)
                   if f.name == "shutdown_timeout")
    if needed > default:
        ctx.daemon["shutdown_timeout"] = needed
        ctx.warn(ctx.main, None, None, f"the programs' stopwaitsecs add up to {wanted:g} s "
                 f"over {phases} priorit{'ies' if phases != 1 else 'y'}, more than superd's default "
                 f"shutdown_timeout ({default:g} s): shutdown_timeout = {needed}. The service manager must "
                 "allow more (docker stop -t, terminationGracePeriodSeconds, TimeoutStopSec)")
    long = [name for name, wait in waits.items() if wait > LONG_STOP]
    if long:
        _, _, proposed = _shutdown_time(priorities, {n: min(w, LONG_STOP) for n, w in waits.items()})
        ctx.warn(ctx.main, None, None, f"{', '.join(f'{n} (stopwaitsecs = {waits[n]:g})' for n in long)}: "
                 f"a wait this long (supervisord's idiom for letting a running job finish) cannot fit "
                 f"a container's stop grace period (docker stop: 10 s, Kubernetes: 30 s, unless raised), "
                 f"and superd's shutdown lasts as long (shutdown_timeout = {needed}). Proposed: "
                 f"stopwaitsecs = {LONG_STOP} and shutdown_timeout = {max(proposed, default)}, a grace period "
                 f"above that (docker stop -t {max(proposed, default) + 5}, terminationGracePeriodSeconds: "
                 f"{max(proposed, default) + 5}), and jobs that finish or go back to the queue within it "
                 "(Laravel Horizon: a job timeout below it)")


def _shutdown_time(priorities: dict[str, int], waits: dict[str, float]) -> tuple[float, int, int]:
    """(the stop waits wanted in total, the phases, the shutdown_timeout they need)."""
    phases = shutdown.plan([shutdown.StopItem(name, priorities[name], waits[name]) for name in waits])
    wanted = sum(phase.want for phase in phases)
    return wanted, len(phases), math.ceil(wanted + shutdown.RESERVE_MAX + shutdown.KILL_MARGIN * len(phases))


def _document(ctx: Context) -> str:
    header = [f"superd config converted from the supervisord config {ctx.main}"]
    if len(ctx.sources) > 1:
        header.append("and the files it includes: " + ", ".join(
            os.path.relpath(f, ctx.main_dir) if not os.path.relpath(f, ctx.main_dir)
            .startswith(os.pardir) else f for f in ctx.sources[1:]))
    header.append("by superd import-supervisord. Check it with: superd --check -c FILE")
    document: dict[str, dict[str, Any]] = {}
    if ctx.daemon:
        order = list(superd_config.DAEMON_KEYS)
        document["superd"] = dict(sorted(ctx.daemon.items(), key=lambda kv: order.index(kv[0])))
    for name, table in ctx.group_tables.items():
        document[f"group.{toml_key(name)}"] = table
    for name, table in ctx.programs.items():
        document[f"program.{toml_key(name)}"] = table
    text = to_toml(document, header, ctx.comments)
    superd_config.tomllib.loads(text)   # what we write must read back
    return text
