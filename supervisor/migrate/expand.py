"""supervisord's ``%(name)s`` expansions, turned into parts: literal text and the
``${VAR}`` references superd expands itself (command, environment, directory,
stdout, stderr); and, for the settings superd does not expand, those parts
resolved now from this environment."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

from .values import environment_pairs

#: superd's variable holding an instance's number (what %(process_num)d becomes).
PROCESS_NUM = "SUPERD_PROCESS_NUM"

# A %-expansion as Python's % operator (and so supervisord) reads it, or a lone %.
_FORMAT_RE = re.compile(
    r"%(?:(?P<percent>%)"
    r"|\((?P<key>[^()]*)\)(?P<spec>[-#0 +]*\d*(?:\.\d+)?)(?P<conv>[diouxXeEfFgGcrsa]))?")
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def is_literal(parts: Parts) -> bool:
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
                if is_literal(value):
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
        # Not this machine's name: the config runs elsewhere (an image, a fleet).
        scope.warn(f"{whole}: written as ${{HOSTNAME}}, expanded where superd runs (not this "
                   "machine's name, as supervisord would have had it): docker and Kubernetes set "
                   "HOSTNAME; under systemd add Environment=HOSTNAME=%H to the unit, else superd "
                   "refuses the config ($HOSTNAME is not set)")
        return [Ref("HOSTNAME")]
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


def expand_environment(text: str, scope: Scope) -> dict[str, Parts]:
    """An ``environment`` setting (``KEY="val",KEY2=val2``), its values expanded;
    empty, with a warning, when it cannot be parsed."""
    try:
        pairs = environment_pairs(text)
    except ValueError as e:
        scope.warn(f"cannot parse ({e}); dropped")
        return {}
    return {name: expand(value, scope) for name, value in pairs}


def render(parts: Parts) -> str:
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


def literal(parts: Parts, scope: Scope) -> Optional[str]:
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


def render_path(parts: Parts, scope: Scope) -> str:
    """A path superd expands, rendered: ``~`` (which supervisord expands in paths) as
    ``${HOME}``, with a warning when it stays relative."""
    if parts and isinstance(parts[0], str) and parts[0].startswith("~"):
        head = parts[0]
        if head == "~" or head.startswith("~/"):
            parts = [Ref("HOME"), head[1:], *parts[1:]]
        else:
            scope.warn(f"{head.split('/')[0]}: superd does not expand ~user; kept as written")
    text = render(parts)
    check_relative(text, scope)
    return text


def check_relative(text: str, scope: Scope) -> None:
    if not text.startswith(("/", "${", "~")):
        scope.warn("a relative path: supervisord resolves it against its working directory, "
                   "superd against the folder of its config file; better make it absolute")
