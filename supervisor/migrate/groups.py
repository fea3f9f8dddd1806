"""supervisord's ``[group:x]`` sections: read before the programs (their members
take the group's name and priority), written as superd's ``[group.x]`` once the
programs have their superd names."""

from __future__ import annotations

import os
import re

from .. import config as superd_config
from .context import Context
from .expand import Scope, expand, literal
from .ini import Section


def read_group(ctx: Context, section: Section) -> None:
    """``[group:x]``: its members remembered in ``ctx.groups`` for their conversion."""
    group = section.name.split(":", 1)[1].strip()
    option = section.options.get("programs")
    scope = Scope(here=os.path.dirname(section.file), warn=ctx.warner(section, "programs", option),
                  env=[ctx.daemon_env])
    text = literal(expand(option.value, scope), scope) if option else None
    members = [name.strip() for name in (text or "").split(",") if name.strip()]
    if not members:
        ctx.warn(section.file, section.name, "programs", "names no programs (supervisord "
                 "refuses this); nothing to carry over")
        return
    kept = []
    for member in members:
        if f"program:{member}" not in ctx.sections:
            kind = "an fcgi-program (not carried over)" if \
                f"fcgi-program:{member}" in ctx.sections else "an unknown program"
            ctx.warn(section.file, section.name, "programs", f"{member!r} is {kind}")
            continue
        if member in ctx.groups:
            ctx.warn(section.file, section.name, "programs", f"{member!r} is already in "
                     f"group {ctx.groups[member][0]!r}; superd runs it once, in that group")
            continue
        ctx.groups[member] = (group, section)
        kept.append(member)
    if kept:
        ctx.group_members[group] = (section, kept)
    for key, option in section.options.items():
        if key not in ("programs", "priority"):
            ctx.warn(option.file, section.name, key, "unknown supervisord setting; dropped")


def convert_groups(ctx: Context) -> None:
    """Every group whose programs were carried over, as ``ctx.group_tables``
    (a program's priority carries its group's: see ``convert_program``)."""
    taken = set(ctx.programs)
    for group, (section, members) in ctx.group_members.items():
        programs = [ctx.superd_names[member] for member in members if member in ctx.superd_names]
        if not programs:
            ctx.warn(section.file, section.name, None, "none of its programs was carried over; "
                     "the group is not either")
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", group).lstrip("_.-") or "group"
        while (name in taken and name not in programs) or name in superd_config.RESERVED_NAMES:
            name += "_"
        if name != group:
            ctx.warn(section.file, section.name, None, "superd group names take letters, digits, _, . and "
                     f"- and may not be another program's: named {name!r}")
            _keep_group_name(ctx, programs, group)
        taken.add(name)
        ctx.group_tables[name] = {"programs": programs}


def _keep_group_name(ctx: Context, programs: list[str], group: str) -> None:
    """The processes of a renamed group keep supervisord's names: its name, not
    superd's, in their ``process_name``."""
    for program in programs:
        table = ctx.programs[program]
        template = table.get("process_name")
        if template is not None and "%(group_name)s" in template:
            table["process_name"] = template.replace("%(group_name)s", group.replace("%", "%%"))
