"""Reading a supervisord config the way supervisord reads it: ``;`` and ``#``
comments (inline ones after whitespace), ``[include] files`` globs relative to
the main file's folder (included files' own ``[include]`` is not followed), and
sections met again merged key by key, each value remembering its file."""

from __future__ import annotations

import configparser
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from .expand import Scope, expand, literal

# A section name nobody writes, so that a [DEFAULT] section is read as an
# ordinary one (configparser would otherwise hide it; see _read_ini).
_NO_DEFAULT_SECTION = "\x00superd-migrate-no-default\x00"


class InputError(Exception):
    """The supervisord config cannot be read (missing, unreadable, not INI)."""


@dataclass
class Option:
    value: str
    file: str           # absolute path of the file that set it (for %(here)s and messages)


@dataclass
class Section:
    name: str
    file: str           # where it first appeared
    options: dict[str, Option] = field(default_factory=dict)


#: warn(file, section, key, message)
Warn = Callable[[Optional[str], Optional[str], Optional[str], str], None]


def _read_ini(path: str, shown: str) -> configparser.RawConfigParser:
    # supervisord's UnhosedConfigParser: a RawConfigParser with inline comments
    # after ";" or "#" and repeated sections/options allowed (the last wins).
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=False, default_section=_NO_DEFAULT_SECTION)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=shown)
    except OSError as e:
        raise InputError(f"cannot read {shown}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read {shown}: not UTF-8 text ({e})") from None
    except configparser.Error as e:
        message = " ".join(str(e).split())
        raise InputError(f"cannot read {shown}: not a supervisord (INI) config: {message}") from None
    return parser


def _merge(sections: dict[str, Section], parser: configparser.RawConfigParser, file: str) -> None:
    for name in parser.sections():
        section = sections.setdefault(name, Section(name, file))
        for key, value in parser.items(name, raw=True):
            section.options[key] = Option(value, file)


def read_files(main: str, shown: Callable[[str], str], warn: Warn,
               sections: dict[str, Section], sources: list[str]) -> None:
    """The config at the absolute path ``main`` and the files its ``[include]`` names,
    merged into ``sections``; the files read are appended to ``sources``.

    Raises :class:`InputError` when a file cannot be read or is not INI.
    """
    parser = _read_ini(main, shown(main))
    sources.append(main)
    _merge(sections, parser, main)
    include = sections.get("include")
    if include is None:
        return
    option = include.options.get("files")
    if option is None:
        warn(main, "include", None, 'no "files" setting (supervisord refuses this); nothing included')
        return
    setter = option.file
    scope = Scope(here=os.path.dirname(setter),
                  warn=lambda message: warn(setter, "include", "files", message))
    patterns = literal(expand(option.value, scope), scope)
    main_dir = os.path.dirname(main)
    for pattern in (patterns or "").split():
        found = sorted(glob.glob(os.path.join(main_dir, pattern)))
        if not found:
            warn(main, "include", "files", f"no file matches {pattern!r}")
        for file in found:
            file = os.path.abspath(file)
            if file in sources or not os.path.isfile(file):
                continue
            included = _read_ini(file, shown(file))
            sources.append(file)
            if included.has_section("include"):
                warn(file, "include", None, "supervisord does not follow an [include] "
                     "in an included file; ignored")
                included.remove_section("include")
            _merge(sections, included, file)
