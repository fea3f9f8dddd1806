"""TOML output: the converted config written as TOML text (the stdlib reads TOML
but does not write it), with comments above its tables."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_TOML_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                 0x22: '\\"', 0x5C: "\\\\"}


def _control(code: int) -> bool:
    """A code point TOML strings cannot hold as it is (controls, DEL, surrogates)."""
    return code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF


def _toml_basic(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if code in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[code])
        elif _control(code):
            out.append(f"\\u{code:04X}" if code < 0xD800 else "\\uFFFD")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_string(text: str) -> str:
    """A literal string ('...') when that saves escaping quotes or backslashes, else a basic one."""
    if ('"' in text or "\\" in text) and "'" not in text and not any(
            _control(ord(c)) and c != "\t" for c in text):
        return "'" + text + "'"
    return _toml_basic(text)


def toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_basic(key)


def toml_value(value: Any) -> str:
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
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
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
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in simple.items()]
        for key, sub in nested.items():
            lines.append(f"[{name}.{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"
