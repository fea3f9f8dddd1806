"""The conversion of ``[program:x]`` sections to superd programs (the
``[group:x]`` sections that name them are :mod:`.groups`')."""

from __future__ import annotations

import os
import platform
import pwd
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from .. import config as superd_config
from ..config.tables import NAME_RE
from .context import Context
from .expand import (Parts, ProgramInfo, Scope, expand, expand_environment,
                     is_literal, literal, render, render_path)
from .ini import Option, Section
from .tomlwrite import toml_key
from .values import (CONSOLE_FILES, FALSE_WORDS, autorestart, boolean, exitcodes, integer,
                     non_negative, octal, signal_name, size, size_text)

# supervisord [program:x] keys that have no superd counterpart, with their
# harmless (default) value and why they are dropped.
_PROGRAM_DROPPED = {
    "stdout_capture_maxbytes": ("0", "superd has no capture mode (it feeds supervisord's events)"),
    "stderr_capture_maxbytes": ("0", "superd has no capture mode (it feeds supervisord's events)"),
    "stdout_events_enabled": ("false", "superd has no event listeners"),
    "stderr_events_enabled": ("false", "superd has no event listeners"),
    "stdout_syslog": ("false", "superd does not write to syslog; under systemd, "
                               'stdout = "console" sends the output to the journal'),
    "stderr_syslog": ("false", "superd does not write to syslog; under systemd, "
                               'stderr = "console" sends the output to the journal'),
    "serverurl": ("auto", "superd gives programs no supervisord XML-RPC URL"),
}

# [program:x] settings that carry over as they are, in superd's order, with
# supervisord's type for each.
_PROGRAM_SCALARS: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("autostart", boolean), ("autorestart", autorestart), ("exitcodes", exitcodes),
    ("startsecs", non_negative), ("startretries", non_negative), ("stopsignal", signal_name),
    ("stopwaitsecs", non_negative), ("stopasgroup", boolean), ("killasgroup", boolean))


def _superd_name(ctx: Context, name: str, section: Section) -> str:
    wanted = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_.-") or "program"
    candidate = wanted
    while candidate in ctx.used_names or candidate in superd_config.RESERVED_NAMES:
        candidate += "_"
    if candidate != name:
        ctx.warn(section.file, section.name, None, f"superd program names take letters, "
                 f"digits, _, . and - and must be unique: named {candidate!r}")
    ctx.used_names.add(candidate)
    return candidate


def convert_program(ctx: Context, section: Section) -> None:
    """``[program:x]`` into ``ctx.programs``, with a comment saying where it came from."""
    raw_name = section.name.split(":", 1)[1].strip()
    options = dict(section.options)
    if "command" not in options:
        ctx.warn(section.file, section.name, "command", "missing (supervisord refuses "
                 "this); the program is not carried over")
        return
    group, group_section = ctx.groups.get(raw_name, (raw_name, None))
    info = ProgramInfo(raw_name, group)
    keys = superd_config.PROGRAM_KEYS
    table: dict[str, Any] = {}

    def scope_for(key: str, option: Option, env: Sequence[Mapping[str, Parts]]) -> Scope:
        return ctx.scope(section, key, option, env=env, program=info)

    def plain(key: str) -> Optional[str]:
        """The value of a setting superd does not expand, resolved now; None when absent."""
        option = options.pop(key, None)
        if option is None:
            return None
        scope = scope_for(key, option, [program_env, ctx.daemon_env])
        value = literal(expand(option.value, scope), scope)
        return None if value is None else value.strip()

    def typed(key: str, parse: Callable[[str], Any]) -> Any:
        text = plain(key)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as e:
            ctx.warn(section.options[key].file, section.name, key, f"{text!r}: {e}; dropped")
            return None

    # numprocs and numprocs_start first: %(process_num)d depends on them
    program_env: dict[str, Parts] = {}
    numprocs = typed("numprocs", non_negative)
    if numprocs == 0:
        ctx.warn(section.file, section.name, "numprocs", "0: supervisord runs no process "
                 "for it; the program is not carried over")
        return
    info.numprocs = numprocs or 1
    start = typed("numprocs_start", non_negative)
    info.numprocs_start = start or 0
    name = _superd_name(ctx, raw_name, section)

    # the environment next: its names are %(ENV_X)s for the other settings
    environment: dict[str, Parts] = dict(ctx.daemon_env)
    if "environment" in options:
        option = options.pop("environment")
        program_env.update(expand_environment(
            option.value, scope_for("environment", option, [ctx.daemon_env])))
        environment.update(program_env)

    # then every setting, in superd's order
    command = options.pop("command")
    scope = scope_for("command", command, [program_env, ctx.daemon_env])
    ctx.set(table, keys, "command", render(expand(command.value.strip(), scope)), scope.warn)
    if "command" not in table:
        ctx.warn(command.file, section.name, "command", "the program is not carried over")
        return

    directory = options.pop("directory", None) or ctx.daemon_directory
    if directory is not None:
        scope = scope_for("directory", directory, [program_env, ctx.daemon_env])
        text = render_path(expand(directory.value.strip(), scope), scope)
        ctx.set(table, keys, "directory", text, scope.warn)

    if environment:
        ctx.set(table, keys, "environment",
                {variable: render(value) for variable, value in environment.items()},
                ctx.warner(section, "environment", section.options.get("environment")))

    user = plain("user")
    if user:
        if user.isdigit():
            try:
                user = pwd.getpwuid(int(user)).pw_name
            except KeyError:
                ctx.warn(section.options["user"].file, section.name, "user", f"uid {user}: "
                         "superd needs a user name, and there is no such uid here")
        table["user"] = user

    if "umask" in options:
        umask = typed("umask", octal)
    elif ctx.daemon_umask is not None:
        umask = _daemon_value(ctx, ctx.daemon_umask, "umask", octal)
    else:
        umask = None
    if umask is not None:
        ctx.set(table, keys, "umask", f"{umask:03o}",
                ctx.warner(section, "umask", section.options.get("umask")))

    if numprocs is not None:
        table["numprocs"] = numprocs
    if info.numprocs_start:
        ctx.set(table, keys, "numprocs_start", info.numprocs_start,
                ctx.warner(section, "numprocs_start", section.options["numprocs_start"]))
    _process_name(ctx, section, options.pop("process_name", None), info, table,
                  [program_env, ctx.daemon_env])

    priority = typed("priority", integer)
    if group_section is not None and "priority" in group_section.options:
        group_option = group_section.options["priority"]
        try:
            group_priority = integer(group_option.value)
        except ValueError:
            group_priority = None
        if group_priority is not None and priority is None:
            priority = group_priority
            ctx.note(group_option.file, group_section.name, "priority",
                     f"{name} takes its group's priority {group_priority}")
        elif group_priority is not None and group_priority != priority:
            ctx.warn(group_option.file, group_section.name, "priority",
                     f"superd orders programs by their own priority: {name} keeps "
                     f"{priority}, the group's {group_priority} is not carried over")
    if priority is not None:
        ctx.set(table, keys, "priority", priority,
                ctx.warner(section, "priority", section.options.get("priority")))

    autostart = options.get("autostart")
    if autostart is not None and "%(ENV_" in autostart.value:
        # superd's autostart is a plain boolean: no ${X} to keep the choice for start time.
        ctx.warn(autostart.file, section.name, "autostart", f"{autostart.value.strip()}: superd's "
                 "autostart is a plain true or false (no ${VAR}), so the variable cannot decide at start "
                 "time: its value is fixed now, or, where it cannot be, the setting is dropped and the "
                 f"program always starts. To keep the choice: autostart = false, and 'superctl start "
                 f"{name}' where the variable says so")
    for key, parse in _PROGRAM_SCALARS:
        value = typed(key, parse)
        if value is not None:
            ctx.set(table, keys, key, value, ctx.warner(section, key, section.options[key]))
    if table.get("stopasgroup") and table.get("killasgroup") is False:
        ctx.warn(section.file, section.name, "killasgroup", "false with stopasgroup = true: "
                 "supervisord refuses this, superd kills only the process")

    redirect = typed("redirect_stderr", boolean)
    if section.name.startswith("eventlistener:"):
        from .listener import convert_listener
        convert_listener(ctx, section, options, table)
    said = [_convert_output(ctx, section, options, table, "stdout", info, [program_env, ctx.daemon_env])]
    if redirect:
        table["stderr"] = "stdout"
        for key in ("stderr_logfile", "stderr_logfile_maxbytes", "stderr_logfile_backups"):
            option = options.pop(key, None)
            if key == "stderr_logfile" and option is not None and \
                    option.value.strip().lower() not in ("auto", "none", "off"):
                ctx.note(option.file, section.name, key, "ignored by supervisord too, "
                         "since redirect_stderr is true; dropped")
    else:
        said.append(_convert_output(ctx, section, options, table, "stderr", info, [program_env, ctx.daemon_env]))

    for key, (harmless, why) in _PROGRAM_DROPPED.items():
        option = options.pop(key, None)
        if option is None:
            continue
        value = option.value.strip().lower()
        if value == harmless or (harmless == "false" and value in FALSE_WORDS):
            continue
        ctx.warn(option.file, section.name, key, f"{why}; dropped")
    for key, option in options.items():
        ctx.warn(option.file, section.name, key, "unknown supervisord setting; dropped")

    # TOML puts a table's sub-tables after its keys: environment goes last
    if "environment" in table:
        table["environment"] = table.pop("environment")
    ctx.programs[name] = table
    ctx.superd_names[raw_name] = name
    origin = f"[{section.name}] in {ctx.shown(section.file)}"
    if group_section is not None:
        origin += f', supervisord group "{group}"'
    ctx.comments[f"program.{toml_key(name)}"] = [origin] + [line for line in said if line]


def _daemon_value(ctx: Context, option: Option, key: str, parse: Callable[[str], Any]) -> Any:
    """A [supervisord] setting copied to a program."""
    try:
        return parse(option.value)
    except ValueError as e:
        ctx.warn(option.file, "supervisord", key, f"{option.value!r}: {e}; not copied")
        return None


def _process_name(ctx: Context, section: Section, option: Optional[Option], info: ProgramInfo,
                  table: dict[str, Any], env: Sequence[Mapping[str, Parts]]) -> None:
    """``process_name``: supervisord's template, which superd expands alike; written
    when it names the processes otherwise than superd's default does."""
    pattern = option.value.strip() if option else "%(program_name)s"
    file = option.file if option else section.file
    warn = ctx.warner(section, "process_name", option)
    numbers = range(info.numprocs_start, info.numprocs_start + info.numprocs)
    defaults = [info.name] if info.numprocs == 1 else [f"{info.name}_{n}" for n in numbers]
    if info.numprocs > 1 and "%(process_num)" not in pattern:
        warn(f"has no %(process_num) while numprocs > 1 (supervisord refuses this); superd names "
             f"the processes {_span(defaults)}")
        return
    values: dict[str, Any] = {"program_name": info.name, "group_name": info.group,
                              "numprocs": info.numprocs, "here": os.path.dirname(file),
                              "host_node_name": platform.node()}
    values.update(("ENV_" + variable, value) for variable, value in os.environ.items())
    for variables in reversed(env):
        for variable, parts in variables.items():
            values["ENV_" + variable] = render(parts)
    try:
        names = [pattern % {**values, "process_num": n} for n in numbers]
    except (KeyError, TypeError, ValueError) as e:
        warn(f"{pattern!r} cannot be expanded ({e}); superd names the processes {_span(defaults)}")
        return
    bad = [n for n in names if not NAME_RE.fullmatch(n)]
    if bad:
        warn(f"supervisord named a process {bad[0]!r}; superd's names take letters, digits, _, . and -: "
             f"dropped, superd names the processes {_span(defaults)}")
    elif names != defaults:
        ctx.set(table, superd_config.PROGRAM_KEYS, "process_name", pattern, warn)


def _span(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]}, {names[1]}"
    return f"{names[0]} .. {names[-1]}"


def _convert_output(ctx: Context, section: Section, options: dict[str, Option], table: dict[str, Any],
                    stream: str, info: ProgramInfo, env: Sequence[Mapping[str, Parts]]) -> Optional[str]:
    """``{stream}_logfile``, ``_maxbytes`` and ``_backups``: where the output goes;
    a line to say in the TOML about it, or None."""
    said = None
    keys = superd_config.PROGRAM_KEYS
    option = options.pop(f"{stream}_logfile", None)
    maxbytes = options.pop(f"{stream}_logfile_maxbytes", None)
    backups = options.pop(f"{stream}_logfile_backups", None)
    target = "auto"
    if option is not None:
        scope = ctx.scope(section, f"{stream}_logfile", option, env=env, program=info)
        warn = scope.warn
        parts = expand(option.value.strip(), scope)
        word = "".join(parts).lower() if is_literal(parts) else ""
        if word == "auto":
            target = "auto"
        elif word in ("none", "off", "/dev/null"):
            target = "null"
        elif word in CONSOLE_FILES:
            # Unrotated (maxbytes = 0) supervisord's own stdout: straight through, as superd's "inherit".
            unrotated = maxbytes is not None and maxbytes.value.strip() == "0"
            target = "inherit" if unrotated else "console"
            # Said in the TOML, above the program (a complete conversion says nothing on stderr).
            if unrotated:
                said = (f'{stream} = "inherit": {word} unrotated, as supervisord had it: the program '
                        f"writes to superd's own {stream}, lines unchanged (nothing for superctl tail)")
            else:
                said = (f'{stream} = "console" ({word}): each line prefixed with the process\'s name; '
                        f'"inherit" passes the lines through unchanged')
        elif word == "syslog":
            warn('superd does not write to syslog: "console" instead (under systemd, '
                 "the journal)")
            target = "console"
        else:
            target = render_path(parts, scope)
        ctx.set(table, keys, stream, target, warn)
    if target in ("console", "null", "inherit"):
        return said     # sizes and backups only matter for files
    for option, key, parse in ((maxbytes, f"{stream}_maxbytes", size),
                               (backups, f"{stream}_backups", non_negative)):
        if option is None:
            continue
        supervisord_key = f"{stream}_logfile_" + key.split("_", 1)[1]
        scope = ctx.scope(section, supervisord_key, option, env=env, program=info)
        warn = scope.warn
        text = literal(expand(option.value, scope), scope)
        if text is None:
            continue
        try:
            value = parse(text)
        except ValueError as e:
            warn(f"{text.strip()!r}: {e}; dropped")
            continue
        ctx.set(table, keys, key, size_text(value) if key.endswith("maxbytes") else value, warn)
