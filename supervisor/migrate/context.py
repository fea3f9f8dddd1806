"""What the section converters of one conversion share: the files read, the
messages reported (``warning: FILE: [SECTION] KEY: why``, or ``note:``), and the
superd tables built so far, each value checked by superd's own config checks."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from .. import config as superd_config
from .expand import Parts, ProgramInfo, Scope
from .ini import Option, Section
from .tomlwrite import toml_value

# Keys whose check depends on the machine superd will run on (users, groups):
# not checked here.
_MACHINE_KEYS = frozenset({"user", "socket_group", "allow_users", "allow_groups"})


class Context:
    def __init__(self, path: str) -> None:
        self.shown_main = path
        self.main = os.path.abspath(path)
        self.main_dir = os.path.dirname(self.main)
        self.messages: list[str] = []
        self.sources: list[str] = []
        self.sections: dict[str, Section] = {}
        self.daemon: dict[str, Any] = {}
        self.daemon_env: dict[str, Parts] = {}
        self.daemon_umask: Optional[Option] = None
        self.daemon_directory: Optional[Option] = None
        self.groups: dict[str, tuple[str, Section]] = {}     # program -> (group, [group:g])
        self.group_members: dict[str, tuple[Section, list[str]]] = {}  # group -> ([group:g], its programs)
        self.group_tables: dict[str, dict[str, Any]] = {}    # superd group name -> [group.NAME] table
        self.programs: dict[str, dict[str, Any]] = {}        # superd name -> table
        self.superd_names: dict[str, str] = {}               # supervisord program name -> superd's
        self.comments: dict[str, list[str]] = {}
        self.used_names: set[str] = set()

    # -- messages --------------------------------------------------------------

    def shown(self, file: Optional[str]) -> str:
        """A file as the user knows it: the main one as given, others from its folder."""
        if file is None or file == self.main:
            return self.shown_main
        relative = os.path.relpath(file, self.main_dir)
        if relative.startswith(os.pardir + os.sep):
            return file
        return os.path.join(os.path.dirname(self.shown_main), relative)

    def say(self, level: str, file: Optional[str], section: Optional[str], key: Optional[str],
            message: str) -> None:
        where = [self.shown(file)]
        if section:
            where.append(f"[{section}]" + (f" {key}" if key else ""))
        line = f"{level}: {': '.join(where)}: {message}"
        if line not in self.messages:
            self.messages.append(line)

    def warn(self, file: Optional[str], section: Optional[str], key: Optional[str], message: str) -> None:
        self.say("warning", file, section, key, message)

    def note(self, file: Optional[str], section: Optional[str], key: Optional[str], message: str) -> None:
        self.say("note", file, section, key, message)

    def warner(self, section: Section, key: str, option: Optional[Option] = None) -> Callable[[str], None]:
        file = option.file if option else section.file
        return lambda message: self.warn(file, section.name, key, message)

    # -- values ----------------------------------------------------------------

    def scope(self, section: Section, key: str, option: Option,
              env: Sequence[Mapping[str, Parts]] = (), program: Optional[ProgramInfo] = None) -> Scope:
        """Where ``option`` (``key`` of ``section``) is expanded, warnings included."""
        return Scope(here=os.path.dirname(option.file), warn=self.warner(section, key, option),
                     program=program, env=env)

    def set(self, table: dict[str, Any], keys: Mapping[str, Any], key: str, value: Any,
            warn: Callable[[str], None]) -> None:
        """Put a value in the output after superd's own check of it."""
        if key not in _MACHINE_KEYS:
            try:
                keys[key](value)
            except superd_config.Invalid as e:
                warn(f"{toml_value(value)} cannot be carried over: {e}; dropped")
                return
        table[key] = value
