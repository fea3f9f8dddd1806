"""From a program to its instances: ``${VAR}`` expansion, numprocs and names.

Each instance gets its own variables (``SUPERD_PROCESS_NAME``,
``SUPERD_PROCESS_NUM``, ``SUPERD_GROUP``) on top of superd's environment;
its name comes from ``process_name`` (:mod:`.naming`) when there is one, its
strings are expanded, its paths made absolute and its tcp readiness target
parsed.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..core.stopping import StopStep
from .files import absolute
from .keys import STREAM_WORDS, parse_tcp_target
from .envfile import EnvFileError, read_env_files
from .model import InstanceConfig, ProgramConfig
from .naming import fill
from .probes import expand_check
from .problems import Invalid, Problem, dotted, quote
from .sockets import fd_variables
from .tables import NAME_RE, share

#: The longest process name: "-stdout.log" and a backup's ".10" still fit a file name's 255 bytes.
MAX_PROCESS_NAME = 240

_REF_RE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY_RE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` (used when VAR is unset or empty) and ``$$``.

    A bare ``$VAR`` is left alone, so shell snippets keep working. Raises
    ``Invalid`` for an undefined variable without default or a malformed ``${``.
    """
    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        body = match["body"]
        ref = _BODY_RE.fullmatch(body) if body is not None else None
        if ref is None:
            raise Invalid(f"bad variable reference {quote(match[0])}: expected ${{NAME}} "
                          'or ${NAME:-default}; write "$$" for a literal "$"')
        value = variables.get(ref["name"])
        if ref["default"] is not None and not value:
            return ref["default"]
        if value is None:
            raise Invalid(f"undefined variable ${{{ref['name']}}} (set it in superd's "
                          f"environment, or give a default: ${{{ref['name']}:-value}})")
        return value
    return _REF_RE.sub(replace, text)


def env_file_paths(paths: tuple[str, ...], x, base: str) -> tuple[tuple[str, bool], ...]:
    """``env_file`` entries as (absolute path, optional), ${} expanded."""
    files = []
    for i, path in enumerate(paths):
        optional = path.startswith("-")
        files.append((absolute(x(path[1:] if optional else path, f"env_file[{i}]"), base), optional))
    return tuple(files)


def instance_name(program: ProgramConfig, num: int, group: str, base: str, variables: Mapping[str, str],
                  report) -> str:
    """Process ``num``'s name: ``process_name`` filled and ${}-expanded, or superd's own."""
    default = program.name if program.numprocs == 1 else f"{program.name}_{num}"
    if program.process_name is None:
        return default
    try:
        name = expand(fill(program, num, group, base, variables), variables)
    except Invalid as e:
        report("process_name", str(e))
        return default
    if not NAME_RE.fullmatch(name) or len(name) > MAX_PROCESS_NAME:
        report("process_name", f"{quote(program.process_name)} names process {num} {quote(name)}: a process "
               f'name takes at most {MAX_PROCESS_NAME} letters, digits, "_", "." or "-", starting with a '
               "letter or digit")
        return default
    return name


def build_instance(program: ProgramConfig, num: int, group: str, base: str, environ: Mapping[str, str],
                   problems: list[Problem], shared: dict[Any, Any] | None = None) -> InstanceConfig:
    """Process ``num`` of ``program`` (in ``group``), with ${} expanded and paths made absolute.

    ``shared``: values seen already (:func:`~.tables.share`): instances that
    expand to the same command, paths or environment hold one copy of it.
    """
    where = f"program.{dotted(program.name)}"

    def report(key: str, message: str) -> None:
        problems.append(Problem(program.source, f"{where}.{key}", message))

    # A view, not a copy of the whole environment for every instance.
    variables = ChainMap({"SUPERD_PROCESS_NUM": str(num), "SUPERD_GROUP": group,
                          **fd_variables(program.sockets)}, environ)
    name = instance_name(program, num, group, base, variables, report)
    variables = variables.new_child({"SUPERD_PROCESS_NAME": name})

    def x(text: str, key: str, required: bool = True) -> str:
        try:
            value = expand(text, variables)
        except Invalid as e:
            problems.append(Problem(program.source, f"{where}.{key}", str(e)))
            return text
        if required and not value:
            problems.append(Problem(program.source, f"{where}.{key}",
                                    f"{quote(text)} expands to an empty string"))
        return value

    def output(stream: str) -> str:
        value = x(getattr(program, stream), stream)
        return value if value in STREAM_WORDS[stream] else absolute(value, base)

    def argv(command: tuple[str, ...], key: str) -> tuple[str, ...]:
        return tuple(x(arg, f"{key}[{i}]", required=i == 0) for i, arg in enumerate(command))

    ready, alive = (None if c is None else expand_check(c, x, argv, parse_tcp_target, report)
                    for c in (program.ready, program.alive))
    files = env_file_paths(program.env_file, x, base)
    if files:
        try:
            read_env_files(files)
        except EnvFileError as e:
            report("env_file", str(e))
    steps = program.stop_sequence
    if program.stop_command:
        steps = (StopStep(command=program.stop_command, wait=program.stopwaitsecs),
                 StopStep(program.stopsignal, wait=program.stopwaitsecs))
    steps = tuple(replace(step, command=argv(step.command, f"stop_sequence[{i}].exec"))
                  if step.command and program.stop_sequence else
                  replace(step, command=argv(step.command, "stop_command")) if step.command else step
                  for i, step in enumerate(steps))

    return InstanceConfig(
        name=share(name, shared), group=share(group, shared), num=num, program=program,
        command=share(tuple(x(arg, f"command[{i}]", required=i == 0)
                            for i, arg in enumerate(program.command)), shared),
        environment=share(tuple((key, x(value, f"environment.{dotted(key)}", required=False))
                                for key, value in program.environment), shared),
        directory=None if program.directory is None else share(absolute(
            x(program.directory, "directory"), base), shared),
        stdout=share(output("stdout"), shared), stderr=share(output("stderr"), shared),
        ready=share(ready, shared), stop_steps=share(steps, shared), alive=share(alive, shared),
        env_files=share(files, shared))

