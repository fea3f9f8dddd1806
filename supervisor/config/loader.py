"""A whole config: ``load()`` a file, ``parse()`` its data, or ``single_program()``.

``parse`` reads the main file's ``[superd]`` table, then its includes, the
programs of every file, the checks across programs and the instances.
Anything wrong raises :class:`ConfigError`, which lists *every* problem found,
each with its file, the key's dotted path, what was expected and what was given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.policy import Autorestart
from .checks import number
from .files import default_paths, included_files, read_toml
from .graph import check_dependencies, check_names
from .groups import membership, read_groups, with_group_priority
from .http import read_http
from .instances import build_instance
from .model import Config, DaemonSettings, InstanceConfig, ProgramConfig
from .problems import ConfigError, Invalid, Problem, dotted
from .sockets import check_program_sockets, read_sockets
from .tables import RESERVED_NAMES, check_top_level, read_daemon, read_program

def load(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, check and expand the config file at ``path`` and its includes."""
    path = os.path.abspath(path)
    problems: list[Problem] = []
    data = read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    return parse(data, path, environ, consume=True)


def parse(data: dict[str, Any], path: str | None, environ: Mapping[str, str] | None = None,
          *, base_dir: str | None = None, consume: bool = False) -> Config:
    """Check an already-parsed main file (``path`` names it in messages and, unless
    ``base_dir`` is given, its folder anchors relative paths) and read its includes.

    ``consume``: ``data`` is the caller's no longer; each program's table is
    taken out of it once read, so that the parsed TOML is let go of as the
    config is built rather than at the end (superd's memory stays the
    config's, not the config's and the holes the TOML left around it).
    """
    environ = os.environ if environ is None else environ
    path = os.path.abspath(path) if path else None
    base = os.path.abspath(base_dir or (os.path.dirname(path) if path else os.getcwd()))
    problems: list[Problem] = []
    warnings: list[Problem] = []      # keys that change nothing

    check_top_level(data, ("superd", "program", "group", "socket", "http"), path, problems)
    daemon_table = data.get("superd")
    daemon = read_daemon(daemon_table if isinstance(daemon_table, dict) else {},
                         base, path, environ, problems)

    # (file, folder its relative paths start from, its data)
    sources: list[tuple[str | None, str, dict[str, Any]]] = [(path, base, data)]
    for included_file in included_files(daemon.include, path):
        included = read_toml(included_file, problems)  # ours: always consumed
        if included is not None:
            check_top_level(included, ("program", "group", "socket"), included_file, problems)
            sources.append((included_file, os.path.dirname(included_file), included))

    programs: dict[str, ProgramConfig] = {}
    defined_in: dict[str, str | None] = {}
    folders: dict[str, str] = {}
    written: dict[str, tuple[str, ...]] = {}  # the group defaults the tables override: ("priority",) or ()
    shared: dict[Any, Any] = {}   # one copy of each value programs repeat (tables.share)
    for index, (file, folder, table) in enumerate(sources):
        program_tables = table.get("program")
        if not isinstance(program_tables, dict):
            continue
        mine = consume or index > 0
        for name in list(program_tables):
            program_table = program_tables.pop(name) if mine else program_tables[name]
            if name in defined_in:
                problems.append(Problem(file, f"program.{dotted(name)}", "defined twice: in "
                                        f"{defined_in[name] or 'the main config'} and in {file}"))
                continue
            defined_in[name] = file
            folders[name] = folder
            program = read_program(name, program_table, file, problems, warnings, shared)
            if program is not None:
                programs[name] = program
                written[name] = ("priority",) if "priority" in program_table else ()

    groups = read_groups(sources, programs, defined_in, problems)
    with_group_priority(programs, groups.values(), written)
    group_of = membership(groups.values())
    check_dependencies(programs, problems)
    sockets = read_sockets(sources, problems)
    http = read_http(data["http"], path, base, problems) if "http" in data else None
    check_program_sockets(programs.values(), sockets, problems)
    instances = [build_instance(program, num, group_of.get(program.name, program.name), folders[program.name],
                                environ, problems, shared)
                 for program in sorted(programs.values(), key=lambda p: p.name)
                 for num in range(program.numprocs_start, program.numprocs_start + program.numprocs)]
    check_names(instances, groups.values(), problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        path=path, daemon=daemon,
        programs=tuple(programs[name] for name in sorted(programs)),
        instances=tuple(sorted(instances, key=lambda i: (i.program.priority, i.program.name, i.num))),
        warnings=tuple(map(str, warnings)), sockets=tuple(sockets[name] for name in sorted(sockets)),
        http=http, groups=tuple(groups[name] for name in sorted(groups)))


def single_program(argv: Sequence[str], *, stopwaitsecs: float = 10, socket: str | None = None,
                   environ: Mapping[str, str] | None = None) -> Config:
    """The embedded config of ``superd -- cmd args...``: one program, run like an init.

    ``argv`` is used verbatim (no expansion). No control socket unless ``socket``.
    """
    problems = []
    if not argv or not argv[0]:
        problems.append(Problem(None, "command", "expected a command to run after --"))
    try:
        stopwaitsecs = number(0)(stopwaitsecs)
    except Invalid as e:
        problems.append(Problem(None, "--stopwaitsecs", str(e)))
    if problems:
        raise ConfigError(problems)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(argv[0])).lstrip("_.-")
    if not name or name in RESERVED_NAMES:
        name = "main"
    program = ProgramConfig(
        name=name, command=tuple(argv), autorestart=Autorestart.NEVER, exit_with=True,
        startsecs=0.0, startretries=0, stopwaitsecs=stopwaitsecs, stopasgroup=False,
        killasgroup=True, stdout="console", stderr="console")
    instance = InstanceConfig(
        name=name, group=name, num=0, program=program, command=program.command,
        environment=(), directory=None, stdout="console", stderr="console")
    paths = default_paths(environ=environ)
    daemon = DaemonSettings(
        socket=os.path.abspath(socket) if socket else "", run_dir=paths["run_dir"],
        logs_dir=paths["logs_dir"], shutdown_timeout=stopwaitsecs + 5)
    return Config(path=None, daemon=daemon, programs=(program,), instances=(instance,))
