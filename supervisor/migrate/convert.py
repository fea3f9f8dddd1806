"""Convert a supervisord config (supervisord.conf, INI) into a superd config (TOML).

``superd import-supervisord FILE [-o OUT]`` runs :func:`main`: the TOML goes to
stdout (or OUT), and every setting that cannot be carried over is reported on
stderr as ``warning: FILE: [SECTION] KEY: why`` (``note:`` for the harmless
ones). :func:`convert` does the work and returns both, for callers that want them.

The INI file is read the way supervisord reads it: ``;`` and ``#`` comments
(inline ones after whitespace), ``[include] files`` globs relative to the main
file's folder (included files' own ``[include]`` is not followed), sections met
again merged key by key, ``%(name)s`` expansions in every value and ``%%`` for a
literal ``%``. Expansions become what superd understands where superd expands
``${VAR}`` (command, environment, directory, stdout, stderr) and are resolved
now, with a warning, where it does not.

Stdlib only (plus superd's own config module, to check every value it writes).
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import glob
import grp
import math
import os
import platform
import pwd
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Union

from ..config import model as superd_config
from ..core import shutdown

__all__ = ["Conversion", "InputError", "convert", "main", "to_toml"]

PROG = "superd import-supervisord"

#: superd's variable holding an instance's number (what %(process_num)d becomes).
PROCESS_NUM = "SUPERD_PROCESS_NUM"

# A section name nobody writes, so that a [DEFAULT] section is read as an
# ordinary one (configparser would otherwise hide it; see _read_ini).
_NO_DEFAULT_SECTION = "\x00superd-migrate-no-default\x00"

# supervisord's booleans (datatypes.boolean).
_TRUE_WORDS = ("yes", "true", "on", "1")
_FALSE_WORDS = ("no", "false", "off", "0")

# Output targets that mean "supervisord's own stdout/stderr": superd's "console".
_CONSOLE_FILES = ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2",
                  "/proc/self/fd/1", "/proc/self/fd/2", "/dev/tty")

# supervisord log levels -> superd's (debug, info, warning, error).
_LOG_LEVELS = {"critical": "error", "error": "error", "warn": "warning", "warning": "warning",
               "info": "info", "debug": "debug", "trace": "debug", "blather": "debug"}

# A %-expansion as Python's % operator (and so supervisord) reads it, or a lone %.
_FORMAT_RE = re.compile(
    r"%(?:(?P<percent>%)"
    r"|\((?P<key>[^()]*)\)(?P<spec>[-#0 +]*\d*(?:\.\d+)?)(?P<conv>[diouxXeEfFgGcrsa]))?")
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIZE_RE = re.compile(r"\s*\+?([0-9]+)\s*(kb|mb|gb)?\s*", re.IGNORECASE)
_SIZE_UNITS = (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10))
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")

# Sections that only configure supervisorctl or the XML-RPC interface.
_CONTROL_ONLY = ("supervisorctl", "rpcinterface:", "ctlplugin:")


class InputError(Exception):
    """The supervisord config cannot be read (missing, unreadable, not INI)."""


# --------------------------------------------------------------------------
# Reading the INI files

@dataclass
class Option:
    value: str
    file: str           # absolute path of the file that set it (for %(here)s and messages)


@dataclass
class Section:
    name: str
    file: str           # where it first appeared
    options: dict[str, Option] = field(default_factory=dict)


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


# --------------------------------------------------------------------------
# %(name)s expansions -> parts: literal text and superd ${VAR} references

class Ref(NamedTuple):
    """A superd ``${name}`` (or ``${name:-default}``) reference."""

    name: str
    default: Optional[str] = None


Parts = list[Union[str, Ref]]


@dataclass
class ProgramInfo:
    name: str           # supervisord's program name (what %(program_name)s gives)
    group: str          # what %(group_name)s gives
    numprocs: int = 1
    numprocs_start: int = 0


@dataclass
class Scope:
    """What an expansion may refer to, and where to complain."""

    here: str
    warn: Callable[[str], None]
    program: Optional[ProgramInfo] = None
    env: Sequence[Mapping[str, Parts]] = ()     # %(ENV_X)s defined in the config, first wins


def _joined(parts: Parts) -> Parts:
    """Adjacent literals merged, empty ones dropped."""
    out: Parts = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if out and isinstance(out[-1], str):
                out[-1] += part
                continue
        out.append(part)
    return out


def _is_literal(parts: Parts) -> bool:
    return all(isinstance(part, str) for part in parts)


def _format(match: re.Match[str], value: Any, scope: Scope) -> str:
    spec = "%" + match["spec"] + match["conv"]
    try:
        return spec % (value,)
    except (TypeError, ValueError, OverflowError):
        scope.warn(f"{match[0]}: cannot format {value!r} with {spec} (supervisord would refuse "
                   "it); the value is used as is")
        return str(value)


def expand(text: str, scope: Scope) -> Parts:
    """supervisord's ``%(name)s`` expansion of ``text``, as parts."""
    parts: Parts = []
    pos = 0
    for match in _FORMAT_RE.finditer(text):
        parts.append(text[pos:match.start()])
        pos = match.end()
        if match["percent"]:
            parts.append("%")
        elif match["key"] is None:
            scope.warn('a lone "%" (supervisord needs "%%" for a literal "%" and would refuse '
                       'or mangle this value); kept as "%"')
            parts.append("%")
        else:
            parts += _resolve(match, scope)
    parts.append(text[pos:])
    return _joined(parts)


def _resolve(match: re.Match[str], scope: Scope) -> Parts:
    key, spec, conv, whole = match["key"], match["spec"], match["conv"], match[0]
    plain = not spec and conv == "s"
    if key.startswith("ENV_"):
        name = key[4:]
        for table in scope.env:
            if name in table:
                value = table[name]
                if plain:
                    return list(value)
                if _is_literal(value):
                    return [_format(match, "".join(value), scope)]
                scope.warn(f"{whole}: the format {spec}{conv} is lost")
                return list(value)
        if not _VARIABLE_RE.fullmatch(name):
            scope.warn(f"{whole}: {name!r} is not a name superd can expand (${{NAME}} takes "
                       "letters, digits and _); kept as written")
            return [whole]
        if not plain:
            scope.warn(f"{whole}: superd inserts ${{{name}}} as it is; the format {spec}{conv} is lost")
        return [Ref(name)]
    if key == "here":
        return [_format(match, scope.here, scope)]
    if key == "host_node_name":
        node = platform.node()
        default = node if node and re.fullmatch(r"[A-Za-z0-9_.-]+", node) else None
        scope.warn(f"{whole}: superd has no host name expansion; written as "
                   f"{_render([Ref('HOSTNAME', default)])} (the HOSTNAME variable of superd's "
                   "environment, else this machine's name)")
        return [Ref("HOSTNAME", default)]
    program = scope.program
    if program is not None:
        if key == "program_name":
            return [_format(match, program.name, scope)]
        if key == "group_name":
            return [_format(match, program.group, scope)]
        if key == "numprocs":
            return [_format(match, program.numprocs, scope)]
        if key == "process_num":
            if program.numprocs == 1:
                return [_format(match, program.numprocs_start, scope)]
            if spec or conv not in "dius":
                scope.warn(f"{whole}: becomes ${{{PROCESS_NUM}}}, a plain number: the format "
                           f"{spec}{conv} is lost" + (" (no zero-padding)" if "0" in spec else ""))
            return [Ref(PROCESS_NUM)]
    scope.warn(f"{whole}: supervisord has no such expansion here; kept as written")
    return [whole]


def _render(parts: Parts) -> str:
    """Parts as a superd string: ``${VAR}`` references, and literal "$" escaped where
    superd would otherwise read it as the start of one (``$$`` or ``${``)."""
    out = []
    for i, part in enumerate(parts):
        if isinstance(part, Ref):
            out.append("${" + part.name + ("" if part.default is None else ":-" + part.default) + "}")
            continue
        ref_follows = i + 1 < len(parts) and isinstance(parts[i + 1], Ref)
        for j, char in enumerate(part):
            out.append(char)
            if char == "$":
                following = part[j + 1] if j + 1 < len(part) else ("$" if ref_follows else "")
                if following in ("$", "{"):
                    out.append("$")
    return "".join(out)


# --------------------------------------------------------------------------
# supervisord's value types

def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def _integer(text: str, minimum: Optional[int] = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected an integer") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"expected an integer >= {minimum}")
    return value


def _autorestart(text: str) -> Union[bool, str]:
    if text.lower() == "unexpected":
        return "unexpected"
    try:
        return _boolean(text)
    except ValueError:
        raise ValueError("expected true, false or unexpected") from None


def _exitcodes(text: str) -> list[int]:
    codes = [_integer(code) for code in text.split(",")] if text else []
    if any(not 0 <= code <= 255 for code in codes):
        raise ValueError("expected exit codes from 0 to 255")
    return codes


def _size(text: str) -> int:
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError('expected a size like "50MB" (bytes, KB, MB or GB)')
    unit = (match[2] or "").upper()
    return int(match[1]) * dict(_SIZE_UNITS).get(unit, 1)


def _size_text(size: int) -> Union[int, str]:
    """Bytes as superd likes to read them: "50MB" when exact, else a number."""
    for unit, factor in _SIZE_UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def _octal(text: str) -> int:
    try:
        return int(text.strip(), 8)
    except ValueError:
        raise ValueError("expected an octal number like 022") from None


def _environment_pairs(text: str) -> list[tuple[str, str]]:
    """supervisord's ``KEY="val",KEY2=val2``: commas inside quotes belong to the value,
    quotes around a whole value are removed."""
    pieces, current, quote = [], [], ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == ",":
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if quote:
        raise ValueError(f"unbalanced {quote} quote")
    pieces.append("".join(current))
    pairs = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        name, equals, value = piece.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or any(c.isspace() or c in "\"'" for c in name):
            raise ValueError(f"expected KEY=value, got {piece!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        pairs.append((name, value))
    return pairs


# --------------------------------------------------------------------------
# TOML output

_TOML_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                 0x22: '\\"', 0x5C: "\\\\"}


def _toml_basic(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if code in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[code])
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04X}" if code < 0xD800 else "\\uFFFD")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_string(text: str) -> str:
    """A literal string ('...') when that saves escaping quotes or backslashes, else a basic one."""
    if ('"' in text or "\\" in text) and "'" not in text and not any(
            (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF
            for c in text):
        return "'" + text + "'"
    return _toml_basic(text)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_basic(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no TOML for {value!r}")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def to_toml(document: Mapping[str, Mapping[str, Any]], header: Sequence[str] = (),
            comments: Optional[Mapping[str, Sequence[str]]] = None) -> str:
    """``{"superd": {...}, "program.web": {...}}`` as TOML: one table a key (its dotted
    name given as a sequence of keys joined by "."), tables nested in a table written
    as sub-tables after it. ``comments`` puts comment lines above a table."""
    lines = [f"# {line}".rstrip() for line in header]
    for name, table in document.items():
        simple = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if lines:
            lines.append("")
        lines += [f"# {line}".rstrip() for line in (comments or {}).get(name, ())]
        lines.append(f"[{name}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in simple.items()]
        for key, sub in nested.items():
            lines.append(f"[{name}.{_toml_key(key)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# The conversion

@dataclass
class Conversion:
    toml: str                   # the superd config
    messages: list[str]         # "warning: ..." and "note: ..." lines, in order
    sources: list[str]          # the files read: the main one, then the included ones

    @property
    def warnings(self) -> list[str]:
        return [m for m in self.messages if m.startswith("warning:")]


# Keys whose check depends on the machine superd will run on (users, groups):
# not checked here.
_MACHINE_KEYS = frozenset({"user", "socket_group", "allow_users", "allow_groups"})

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


def _seconds(text: str) -> int:
    return _integer(text, 0)


def _signal_name(text: str) -> str:
    return superd_config.parse_signal(text).name[3:]


# [program:x] settings that carry over as they are, in superd's order, with
# supervisord's type for each.
_PROGRAM_SCALARS: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("autostart", _boolean), ("autorestart", _autorestart), ("exitcodes", _exitcodes),
    ("startsecs", _seconds), ("startretries", _seconds), ("stopsignal", _signal_name),
    ("stopwaitsecs", _seconds), ("stopasgroup", _boolean), ("killasgroup", _boolean))


class _Converter:
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
        self.programs: dict[str, dict[str, Any]] = {}        # superd name -> table
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

    # -- reading ---------------------------------------------------------------

    def read(self) -> None:
        parser = _read_ini(self.main, self.shown_main)
        self.sources.append(self.main)
        _merge(self.sections, parser, self.main)
        include = self.sections.get("include")
        if include is None:
            return
        option = include.options.get("files")
        if option is None:
            self.warn(self.main, "include", None, 'no "files" setting (supervisord refuses '
                      "this); nothing included")
            return
        scope = Scope(here=os.path.dirname(option.file), warn=self.warner(include, "files", option))
        patterns = self.literal(expand(option.value, scope), scope, "files")
        for pattern in (patterns or "").split():
            found = sorted(glob.glob(os.path.join(self.main_dir, pattern)))
            if not found:
                self.warn(self.main, "include", "files", f"no file matches {pattern!r}")
            for file in found:
                file = os.path.abspath(file)
                if file in self.sources or not os.path.isfile(file):
                    continue
                included = _read_ini(file, self.shown(file))
                self.sources.append(file)
                if included.has_section("include"):
                    self.warn(file, "include", None, "supervisord does not follow an [include] "
                              "in an included file; ignored")
                    included.remove_section("include")
                _merge(self.sections, included, file)

    # -- values ----------------------------------------------------------------

    def literal(self, parts: Parts, scope: Scope, key: str) -> Optional[str]:
        """Parts as plain text, for a setting superd does not expand: references are
        resolved now from this environment (with a warning), or the setting is dropped."""
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.name == PROCESS_NUM:
                scope.warn("superd does not expand variables in this setting and the process "
                           "number differs between instances; dropped")
                return None
            value = os.environ.get(part.name)
            if not value and part.default is not None:
                value = part.default
            if value is None:
                scope.warn(f"superd does not expand variables in this setting and ${part.name} "
                           "is not set here to resolve it now; dropped")
                return None
            scope.warn(f"superd does not expand variables in this setting; used the current "
                       f"value of ${part.name}: {value!r}")
            out.append(value)
        return "".join(out)

    def path_parts(self, parts: Parts, scope: Scope) -> Parts:
        """``~`` (which supervisord expands in paths) as ``${HOME}``."""
        if parts and isinstance(parts[0], str) and parts[0].startswith("~"):
            head = parts[0]
            if head == "~" or head.startswith("~/"):
                return [Ref("HOME"), head[1:], *parts[1:]]
            scope.warn(f"{head.split('/')[0]}: superd does not expand ~user; kept as written")
        return parts

    def check_relative(self, text: str, scope: Scope) -> None:
        if not text.startswith(("/", "${", "~")):
            scope.warn("a relative path: supervisord resolves it against its working directory, "
                       "superd against the folder of its config file; better make it absolute")

    def set(self, table: dict[str, Any], keys: Mapping[str, Any], key: str, value: Any,
            warn: Callable[[str], None]) -> None:
        """Put a value in the output after superd's own check of it."""
        if key not in _MACHINE_KEYS:
            try:
                keys[key](value)
            except superd_config.Invalid as e:
                warn(f"{_toml_value(value)} cannot be carried over: {e}; dropped")
                return
        table[key] = value

    # -- [supervisord] ---------------------------------------------------------

    def convert_daemon(self, section: Section) -> None:
        options = dict(section.options)
        # environment first: its names are %(ENV_X)s for the rest of the config
        if "environment" in options:
            option = options.pop("environment")
            warn = self.warner(section, "environment", option)
            try:
                pairs = _environment_pairs(option.value)
            except ValueError as e:
                warn(f"cannot parse ({e}); dropped")
                pairs = []
            scope = Scope(here=os.path.dirname(option.file), warn=warn)
            self.daemon_env = {name: expand(value, scope) for name, value in pairs}
            if self.daemon_env:
                self.note(option.file, section.name, "environment", "merged into the "
                          "environment of every program (superd has no global environment)")
        nodaemon = False
        if "nodaemon" in options:
            try:
                nodaemon = _boolean(options["nodaemon"].value)
            except ValueError:
                pass
        for key, option in options.items():
            warn = self.warner(section, key, option)
            note = lambda message, key=key, option=option: self.note(  # noqa: E731
                option.file, section.name, key, message)
            scope = Scope(here=os.path.dirname(option.file), warn=warn, env=[self.daemon_env])
            value = self.literal(expand(option.value, scope), scope, key)
            if value is None:
                continue
            value = value.strip()
            if key == "loglevel":
                level = _LOG_LEVELS.get(value.lower())
                if level is None:
                    warn(f"unknown log level {value!r}; dropped")
                    continue
                if level != value.lower():
                    note(f"{value!r} becomes {level!r} (superd's levels: debug, info, warning, error)")
                self.set(self.daemon, superd_config.DAEMON_KEYS, "log_level", level, warn)
            elif key == "childlogdir":
                path = self.daemon_path(value, scope)
                self.set(self.daemon, superd_config.DAEMON_KEYS, "logs_dir", path, warn)
                note('becomes logs_dir, where the "auto" program logs go (named '
                     "{instance}-stdout.log and {instance}-stderr.log)")
            elif key == "logfile":
                if value.lower() in ("none", "off") or value in _CONSOLE_FILES or value == "/dev/null":
                    note("superd writes its own log to stderr; dropped")
                else:
                    warn("superd writes its own log to stderr, never to a file: let the service "
                         "manager keep it (journald, docker logs) or redirect it (2>>FILE); dropped")
            elif key in ("logfile_maxbytes", "logfile_backups"):
                logfile = section.options.get("logfile")
                if logfile and logfile.value.strip().lower() not in ("none", "off", "/dev/null") \
                        and logfile.value.strip() not in _CONSOLE_FILES:
                    warn("superd's own log goes to stderr and is not rotated by superd; dropped")
            elif key == "nodaemon":
                if not nodaemon:
                    note("superd always runs in the foreground (the service manager runs it in "
                         "the background); dropped")
            elif key == "pidfile":
                note("superd writes no pid file (superctl pid prints its pid); dropped")
            elif key == "user":
                warn(f"superd does not drop its own privileges: run superd as {value!r} "
                     "(systemd User=, docker USER), or give the programs user = "
                     f"{value!r}; dropped")
            elif key in ("umask", "directory"):
                if nodaemon:
                    note("supervisord applies it only when it daemonizes, and nodaemon is set; dropped")
                elif key == "umask":
                    self.daemon_umask = option
                    note("superd sets a umask per program: copied to every program without its own")
                else:
                    self.daemon_directory = option
                    note("superd does not change its own directory: copied to every program "
                         "without its own")
            elif key in ("minfds", "minprocs"):
                limit = "LimitNOFILE=" if key == "minfds" else "LimitNPROC="
                warn("superd does not raise resource limits: set them where superd starts "
                     f"(systemd {limit}, docker --ulimit, ulimit); dropped")
            elif key == "strip_ansi":
                try:
                    strip = _boolean(value)
                except ValueError:
                    strip = True
                if strip:
                    warn("superd does not strip ANSI escapes from program output; dropped")
            elif key in ("identifier", "nocleanup", "silent"):
                note("has no superd counterpart; dropped")
            else:
                warn("unknown supervisord setting; dropped")

    def daemon_path(self, value: str, scope: Scope) -> str:
        if value.startswith("~"):
            expanded = os.path.expanduser(value)
            scope.warn(f"superd does not expand ~ here; written as {expanded!r}")
            value = expanded
        self.check_relative(value, scope)
        return value

    # -- [unix_http_server], [inet_http_server] --------------------------------

    def convert_unix_server(self, section: Section, first: bool) -> None:
        if not first:
            self.warn(section.file, section.name, None, "superd has one control socket; "
                      "this second one is not carried over")
            return
        mode = None
        for key, option in section.options.items():
            warn = self.warner(section, key, option)
            scope = Scope(here=os.path.dirname(option.file), warn=warn, env=[self.daemon_env])
            value = self.literal(expand(option.value, scope), scope, key)
            if value is None:
                continue
            value = value.strip()
            if key == "file":
                path = self.daemon_path(value, scope)
                self.set(self.daemon, superd_config.DAEMON_KEYS, "socket", path, warn)
            elif key == "chmod":
                try:
                    mode = _octal(value)
                except ValueError as e:
                    warn(f"{e}; dropped")
                    continue
                self.set(self.daemon, superd_config.DAEMON_KEYS, "socket_mode", f"{mode:04o}", warn)
                if mode & 0o007:
                    warn("supervisord let any local user reach the socket; superd accepts only "
                         "root, its own user and the allow_users/allow_groups it names")
            elif key == "chown":
                self.convert_chown(value, section, option, warn)
            elif key in ("username", "password"):
                warn("superd has no password: it checks the peer's uid/gid on the socket "
                     "(root, its own user, allow_users, allow_groups); dropped")
            else:
                warn("unknown supervisord setting; dropped")
        group = self.daemon.get("socket_group")
        if group and mode is not None and mode & 0o060:
            self.daemon["allow_groups"] = [group]
            self.note(section.file, section.name, "chown", f"the members of group {group!r} may "
                      "use the socket (supervisord's chmod let them): allow_groups = "
                      f"[{group!r}]")

    def convert_chown(self, value: str, section: Section, option: Option,
                      warn: Callable[[str], None]) -> None:
        user, _, group = value.partition(":")
        user, group = user.strip(), group.strip()
        if group:
            if group.isdigit():
                try:
                    group = grp.getgrgid(int(group)).gr_name
                except KeyError:
                    warn(f"no group with gid {group} here; superd needs a group name; dropped")
                    group = ""
            if group:
                self.daemon["socket_group"] = group
        if user:
            if user.isdigit():
                try:
                    user = pwd.getpwuid(int(user)).pw_name
                except KeyError:
                    warn(f"no user with uid {user} here; superd needs a user name; dropped")
                    return
            if user != "root":
                self.daemon["allow_users"] = [user]
                warn(f"superd cannot give the socket to {user!r}: the file stays owned by "
                     f"superd's user. {user!r} is in allow_users; let it reach the file through "
                     "socket_group and socket_mode")

    # -- [group:x] -------------------------------------------------------------

    def read_group(self, section: Section) -> None:
        group = section.name.split(":", 1)[1].strip()
        option = section.options.get("programs")
        scope = Scope(here=os.path.dirname(section.file), warn=self.warner(section, "programs", option),
                      env=[self.daemon_env])
        text = self.literal(expand(option.value, scope), scope, "programs") if option else None
        members = [name.strip() for name in (text or "").split(",") if name.strip()]
        if not members:
            self.warn(section.file, section.name, "programs", "names no programs (supervisord "
                      "refuses this); nothing to carry over")
            return
        converted = []
        for member in members:
            if f"program:{member}" not in self.sections:
                kind = "an fcgi-program (not carried over)" if \
                    f"fcgi-program:{member}" in self.sections else "an unknown program"
                self.warn(section.file, section.name, "programs", f"{member!r} is {kind}")
                continue
            if member in self.groups:
                self.warn(section.file, section.name, "programs", f"{member!r} is already in "
                          f"group {self.groups[member][0]!r}; superd runs it once")
                continue
            self.groups[member] = (group, section)
            converted.append(member)
        if converted:
            self.warn(section.file, section.name, None, "superd has no groups of several "
                      f"programs: {', '.join(converted)} become programs of their own (superctl "
                      f"names them {' '.join(converted)}, not {group}:*)")
        for key, option in section.options.items():
            if key not in ("programs", "priority"):
                self.warn(option.file, section.name, key, "unknown supervisord setting; dropped")

    # -- [program:x] -----------------------------------------------------------

    def superd_name(self, name: str, section: Section) -> str:
        wanted = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_.-") or "program"
        candidate = wanted
        while candidate in self.used_names or candidate in superd_config.RESERVED_NAMES:
            candidate += "_"
        if candidate != name:
            self.warn(section.file, section.name, None, f"superd program names take letters, "
                      f"digits, _, . and - and must be unique: named {candidate!r}")
        self.used_names.add(candidate)
        return candidate

    def convert_program(self, section: Section) -> None:
        raw_name = section.name.split(":", 1)[1].strip()
        options = dict(section.options)
        if "command" not in options:
            self.warn(section.file, section.name, "command", "missing (supervisord refuses "
                      "this); the program is not carried over")
            return
        group, group_section = self.groups.get(raw_name, (raw_name, None))
        info = ProgramInfo(raw_name, group)
        keys = superd_config.PROGRAM_KEYS
        table: dict[str, Any] = {}

        def scope_for(key: str, option: Option, env: Sequence[Mapping[str, Parts]]) -> Scope:
            return Scope(here=os.path.dirname(option.file), warn=self.warner(section, key, option),
                         program=info, env=env)

        def plain(key: str) -> Optional[str]:
            """The value of a setting superd does not expand, resolved now; None when absent."""
            option = options.pop(key, None)
            if option is None:
                return None
            scope = scope_for(key, option, [program_env, self.daemon_env])
            value = self.literal(expand(option.value, scope), scope, key)
            return None if value is None else value.strip()

        def typed(key: str, parse: Callable[[str], Any]) -> Any:
            text = plain(key)
            if text is None:
                return None
            try:
                return parse(text)
            except ValueError as e:
                self.warn(section.options[key].file, section.name, key, f"{text!r}: {e}; dropped")
                return None

        # numprocs and numprocs_start first: %(process_num)d depends on them
        program_env: dict[str, Parts] = {}
        numprocs = typed("numprocs", lambda text: _integer(text, 0))
        if numprocs == 0:
            self.warn(section.file, section.name, "numprocs", "0: supervisord runs no process "
                      "for it; the program is not carried over")
            return
        info.numprocs = numprocs or 1
        start = typed("numprocs_start", lambda text: _integer(text, 0))
        info.numprocs_start = start or 0
        name = self.superd_name(raw_name, section)

        # the environment next: its names are %(ENV_X)s for the other settings
        environment: dict[str, Parts] = dict(self.daemon_env)
        if "environment" in options:
            option = options.pop("environment")
            try:
                pairs = _environment_pairs(option.value)
            except ValueError as e:
                self.warn(option.file, section.name, "environment", f"cannot parse ({e}); dropped")
                pairs = []
            scope = scope_for("environment", option, [self.daemon_env])
            for variable, value in pairs:
                program_env[variable] = expand(value, scope)
            environment.update(program_env)

        # then every setting, in superd's order
        command = options.pop("command")
        scope = scope_for("command", command, [program_env, self.daemon_env])
        self.set(table, keys, "command", _render(expand(command.value.strip(), scope)), scope.warn)
        if "command" not in table:
            self.warn(command.file, section.name, "command", "the program is not carried over")
            return

        directory = options.pop("directory", None) or self.daemon_directory
        if directory is not None:
            scope = scope_for("directory", directory, [program_env, self.daemon_env])
            parts = self.path_parts(expand(directory.value.strip(), scope), scope)
            text = _render(parts)
            self.check_relative(text, scope)
            self.set(table, keys, "directory", text, scope.warn)

        if environment:
            self.set(table, keys, "environment",
                     {variable: _render(value) for variable, value in environment.items()},
                     self.warner(section, "environment", section.options.get("environment")))

        user = plain("user")
        if user:
            if user.isdigit():
                try:
                    user = pwd.getpwuid(int(user)).pw_name
                except KeyError:
                    self.warn(section.options["user"].file, section.name, "user", f"uid {user}: "
                              "superd needs a user name, and there is no such uid here")
            table["user"] = user

        if "umask" in options:
            umask = typed("umask", _octal)
        elif self.daemon_umask is not None:
            umask = self.daemon_value(self.daemon_umask, "umask", _octal)
        else:
            umask = None
        if umask is not None:
            self.set(table, keys, "umask", f"{umask:03o}",
                     self.warner(section, "umask", section.options.get("umask")))

        if numprocs is not None:
            table["numprocs"] = numprocs
        self.check_process_name(section, options.pop("process_name", None), info, name,
                                [program_env, self.daemon_env])
        if info.numprocs_start and info.numprocs > 1:
            self.warn(section.options["numprocs_start"].file, section.name, "numprocs_start",
                      f"superd numbers instances from 0, not from {info.numprocs_start}: "
                      f"${{{PROCESS_NUM}}} runs 0..{info.numprocs - 1}")

        priority = typed("priority", _integer)
        if group_section is not None and "priority" in group_section.options:
            group_option = group_section.options["priority"]
            try:
                group_priority = _integer(group_option.value)
            except ValueError:
                group_priority = None
            if group_priority is not None and priority is None:
                priority = group_priority
                self.note(group_option.file, group_section.name, "priority",
                          f"{name} takes its group's priority {group_priority}")
            elif group_priority is not None and group_priority != priority:
                self.warn(group_option.file, group_section.name, "priority",
                          f"superd orders programs by their own priority: {name} keeps "
                          f"{priority}, the group's {group_priority} is not carried over")
        if priority is not None:
            self.set(table, keys, "priority", priority,
                     self.warner(section, "priority", section.options.get("priority")))

        for key, parse in _PROGRAM_SCALARS:
            value = typed(key, parse)
            if value is not None:
                self.set(table, keys, key, value, self.warner(section, key, section.options[key]))
        if table.get("stopasgroup") and table.get("killasgroup") is False:
            self.warn(section.file, section.name, "killasgroup", "false with stopasgroup = true: "
                      "supervisord refuses this, superd kills only the process")

        redirect = typed("redirect_stderr", _boolean)
        self.convert_output(section, options, table, "stdout", info, [program_env, self.daemon_env])
        if redirect:
            table["stderr"] = "stdout"
            for key in ("stderr_logfile", "stderr_logfile_maxbytes", "stderr_logfile_backups"):
                option = options.pop(key, None)
                if key == "stderr_logfile" and option is not None and \
                        option.value.strip().lower() not in ("auto", "none", "off"):
                    self.note(option.file, section.name, key, "ignored by supervisord too, "
                              "since redirect_stderr is true; dropped")
        else:
            self.convert_output(section, options, table, "stderr", info, [program_env, self.daemon_env])

        for key, (harmless, why) in _PROGRAM_DROPPED.items():
            option = options.pop(key, None)
            if option is None:
                continue
            value = option.value.strip().lower()
            if value == harmless or (harmless == "false" and value in _FALSE_WORDS):
                continue
            self.warn(option.file, section.name, key, f"{why}; dropped")
        for key, option in options.items():
            self.warn(option.file, section.name, key, "unknown supervisord setting; dropped")

        # TOML puts a table's sub-tables after its keys: environment goes last
        if "environment" in table:
            table["environment"] = table.pop("environment")
        self.programs[name] = table
        origin = f"[{section.name}] in {self.shown(section.file)}"
        if group_section is not None:
            origin += f', supervisord group "{group}"'
        self.comments[f"program.{_toml_key(name)}"] = [origin]

    def daemon_value(self, option: Option, key: str, parse: Callable[[str], Any]) -> Any:
        """A [supervisord] setting copied to a program."""
        try:
            return parse(option.value)
        except ValueError as e:
            self.warn(option.file, "supervisord", key, f"{option.value!r}: {e}; not copied")
            return None

    def check_process_name(self, section: Section, option: Optional[Option], info: ProgramInfo,
                           name: str, env: Sequence[Mapping[str, Parts]]) -> None:
        """supervisord's process names against superd's: {name}, or {name}_{num} from 0."""
        pattern = option.value.strip() if option else "%(program_name)s"
        file = option.file if option else section.file
        if info.numprocs > 1 and "%(process_num)" not in pattern:
            self.warn(file, section.name, "process_name", "has no %(process_num) while "
                      "numprocs > 1 (supervisord refuses this)")
        values: dict[str, Any] = {"program_name": info.name, "group_name": info.group,
                                  "numprocs": info.numprocs, "here": os.path.dirname(file),
                                  "host_node_name": platform.node()}
        values.update(("ENV_" + variable, value) for variable, value in os.environ.items())
        for table in reversed(env):
            for variable, parts in table.items():
                values["ENV_" + variable] = _render(parts)
        superd_names = [name] if info.numprocs == 1 else [f"{name}_{n}" for n in range(info.numprocs)]
        try:
            names = [pattern % {**values, "process_num": n}
                     for n in range(info.numprocs_start, info.numprocs_start + info.numprocs)]
        except (KeyError, TypeError, ValueError) as e:
            self.warn(file, section.name, "process_name", f"{pattern!r} cannot be expanded "
                      f"({e}); superd names the processes {_span(superd_names)}")
            return
        if names != superd_names:
            self.warn(file, section.name, "process_name", f"supervisord named the processes "
                      f"{_span(names)}, superd names them {_span(superd_names)}" +
                      (" (instances are {name}_{num}, numbered from 0)" if info.numprocs > 1 else ""))

    def convert_output(self, section: Section, options: dict[str, Option], table: dict[str, Any],
                       stream: str, info: ProgramInfo, env: Sequence[Mapping[str, Parts]]) -> None:
        keys = superd_config.PROGRAM_KEYS
        option = options.pop(f"{stream}_logfile", None)
        maxbytes = options.pop(f"{stream}_logfile_maxbytes", None)
        backups = options.pop(f"{stream}_logfile_backups", None)
        target = "auto"
        if option is not None:
            warn = self.warner(section, f"{stream}_logfile", option)
            scope = Scope(here=os.path.dirname(option.file), warn=warn, program=info, env=env)
            parts = expand(option.value.strip(), scope)
            word = "".join(parts).lower() if _is_literal(parts) else ""
            if word == "auto":
                target = "auto"
            elif word in ("none", "off", "/dev/null"):
                target = "null"
            elif word in _CONSOLE_FILES:
                target = "console"
            elif word == "syslog":
                warn('superd does not write to syslog: "console" instead (under systemd, '
                     "the journal)")
                target = "console"
            else:
                parts = self.path_parts(parts, scope)
                target = _render(parts)
                self.check_relative(target, scope)
            self.set(table, keys, stream, target, warn)
        if target in ("console", "null"):
            return      # sizes and backups only matter for files
        for option, key, parse in ((maxbytes, f"{stream}_maxbytes", _size),
                                   (backups, f"{stream}_backups", lambda text: _integer(text, 0))):
            if option is None:
                continue
            supervisord_key = f"{stream}_logfile_" + key.split("_", 1)[1]
            warn = self.warner(section, supervisord_key, option)
            scope = Scope(here=os.path.dirname(option.file), warn=warn, program=info, env=env)
            text = self.literal(expand(option.value, scope), scope, key)
            if text is None:
                continue
            try:
                value = parse(text)
            except ValueError as e:
                warn(f"{text.strip()!r}: {e}; dropped")
                continue
            self.set(table, keys, key, _size_text(value) if key.endswith("maxbytes") else value, warn)

    # -- everything ------------------------------------------------------------

    def run(self) -> Conversion:
        self.read()
        sections = self.sections
        if "supervisord" in sections:
            self.convert_daemon(sections["supervisord"])
        control_only = []
        unix_servers = 0
        for name, section in sections.items():
            if name.startswith("unix_http_server"):
                self.convert_unix_server(section, first=unix_servers == 0)
                unix_servers += 1
            elif name.startswith("inet_http_server"):
                port = section.options.get("port")
                self.warn(section.file, name, None, "superd has no HTTP server, only its unix "
                          "control socket" + (f"; port {port.value.strip()} is" if port else " is")
                          + " not carried over (superctl works over the socket)")
            elif name.startswith(_CONTROL_ONLY):
                control_only.append(section)
            elif name.startswith("group:"):
                self.read_group(section)
        if control_only:
            self.note(control_only[0].file, None, None, ", ".join(f"[{s.name}]" for s in control_only)
                      + ": only for supervisorctl and XML-RPC, which superctl and its socket "
                      "replace; dropped")
        for name, section in sections.items():
            kind = name.split(":", 1)[0] if ":" in name else name
            if kind == "program":
                self.convert_program(section)
            elif kind == "eventlistener":
                self.warn(section.file, name, None, "superd has no event listeners (no event "
                          "protocol); not carried over")
            elif kind == "fcgi-program":
                self.warn(section.file, name, None, "superd does not create FastCGI sockets; "
                          "not carried over (run the server as a program that binds its own socket)")
            elif name == "DEFAULT":
                self.warn(section.file, name, None, "supervisord's [DEFAULT] values are not "
                          "carried over; copy them into the sections that need them")
            elif kind not in ("supervisord", "include", "unix_http_server", "inet_http_server",
                              "group") and not name.startswith(_CONTROL_ONLY):
                self.warn(section.file, name, None, "unknown supervisord section; dropped")
        if not self.programs:
            self.warn(self.main, None, None, "no program was carried over")
        self.check_shutdown_time()
        return Conversion(self.document(), self.messages, self.sources)

    def check_shutdown_time(self) -> None:
        """superd bounds the whole shutdown (supervisord does not): make room for the
        stopwaitsecs the programs ask for, phase by phase."""
        defaults = {f.name: f.default for f in dataclasses.fields(superd_config.ProgramConfig)}
        items = [shutdown.StopItem(name, table.get("priority", defaults["priority"]),
                                   table.get("stopwaitsecs", defaults["stopwaitsecs"]))
                 for name, table in self.programs.items()]
        phases = shutdown.plan(items)
        wanted = sum(phase.want for phase in phases)
        needed = math.ceil(wanted + shutdown.RESERVE_MAX + shutdown.KILL_MARGIN * len(phases))
        default = next(f.default for f in dataclasses.fields(superd_config.DaemonSettings)
                       if f.name == "shutdown_timeout")
        if needed > default:
            self.daemon["shutdown_timeout"] = needed
            self.warn(self.main, None, None, f"the programs' stopwaitsecs add up to {wanted:g} s "
                      f"over {len(phases)} priorities, more than superd's default shutdown_timeout "
                      f"({default:g} s): shutdown_timeout = {needed}. The service manager must "
                      "allow more (docker stop -t, terminationGracePeriodSeconds, TimeoutStopSec)")

    def document(self) -> str:
        header = [f"superd config converted from the supervisord config {self.main}"]
        if len(self.sources) > 1:
            header.append("and the files it includes: " + ", ".join(
                os.path.relpath(f, self.main_dir) if not os.path.relpath(f, self.main_dir)
                .startswith(os.pardir) else f for f in self.sources[1:]))
        header.append("by superd import-supervisord. Check it with: superd --check -c FILE")
        document: dict[str, dict[str, Any]] = {}
        if self.daemon:
            order = list(superd_config.DAEMON_KEYS)
            document["superd"] = dict(sorted(self.daemon.items(), key=lambda kv: order.index(kv[0])))
        for name, table in self.programs.items():
            document[f"program.{_toml_key(name)}"] = table
        text = to_toml(document, header, self.comments)
        superd_config.tomllib.loads(text)   # what we write must read back
        return text


def _span(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]}, {names[1]}"
    return f"{names[0]} .. {names[-1]}"


def convert(path: str) -> Conversion:
    """Read the supervisord config at ``path`` (and its includes) and convert it.

    Raises :class:`InputError` when a file cannot be read or is not INI.
    """
    return _Converter(path).run()


# --------------------------------------------------------------------------
# The command

def main(argv: Optional[Sequence[str]] = None) -> int:
    """``superd import-supervisord FILE [-o OUT]``: 0 done (warnings or not), 2 the input
    cannot be read or the arguments are wrong, 1 the output cannot be written."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Print a superd TOML config equivalent to a supervisord config; "
        "what cannot be carried over is reported on stderr.")
    parser.add_argument("file", metavar="FILE", help="supervisord.conf (its [include] files are merged in)")
    parser.add_argument("-o", "--output", metavar="OUT", help="write the TOML to OUT instead of stdout")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return 0 if e.code in (0, None) else 2
    try:
        result = convert(args.file)
    except InputError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    for message in result.messages:
        print(message, file=sys.stderr)
    if args.output in (None, "-"):
        sys.stdout.write(result.toml)
        sys.stdout.flush()
        return 0
    output = os.path.abspath(args.output)
    if output in result.sources:
        print(f"{PROG}: refusing to overwrite the supervisord config {args.output}", file=sys.stderr)
        return 2
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(result.toml)
    except OSError as e:
        print(f"{PROG}: cannot write {args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
