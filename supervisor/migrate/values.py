"""supervisord's value types, parsed the way supervisord parses them (each raises
ValueError with what was expected), and the words and files with a meaning of
their own in a supervisord config."""

from __future__ import annotations

import re
from typing import Optional, Union

from .. import config as superd_config

# supervisord's booleans (datatypes.boolean).
TRUE_WORDS = ("yes", "true", "on", "1")
FALSE_WORDS = ("no", "false", "off", "0")

# Output targets that mean "supervisord's own stdout/stderr": superd's "console".
CONSOLE_FILES = ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2",
                 "/proc/self/fd/1", "/proc/self/fd/2", "/dev/tty")

_SIZE_RE = re.compile(r"\s*\+?([0-9]+)\s*(kb|mb|gb)?\s*", re.IGNORECASE)
_SIZE_UNITS = (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10))


def boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def integer(text: str, minimum: Optional[int] = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected an integer") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"expected an integer >= {minimum}")
    return value


def non_negative(text: str) -> int:
    """A count or a number of seconds."""
    return integer(text, 0)


def autorestart(text: str) -> Union[bool, str]:
    if text.lower() == "unexpected":
        return "unexpected"
    try:
        return boolean(text)
    except ValueError:
        raise ValueError("expected true, false or unexpected") from None


def exitcodes(text: str) -> list[int]:
    codes = [integer(code) for code in text.split(",")] if text else []
    if any(not 0 <= code <= 255 for code in codes):
        raise ValueError("expected exit codes from 0 to 255")
    return codes


def size(text: str) -> int:
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError('expected a size like "50MB" (bytes, KB, MB or GB)')
    unit = (match[2] or "").upper()
    return int(match[1]) * dict(_SIZE_UNITS).get(unit, 1)


def size_text(size: int) -> Union[int, str]:
    """Bytes as superd likes to read them: "50MB" when exact, else a number."""
    for unit, factor in _SIZE_UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def octal(text: str) -> int:
    try:
        return int(text.strip(), 8)
    except ValueError:
        raise ValueError("expected an octal number like 022") from None


def signal_name(text: str) -> str:
    return superd_config.parse_signal(text).name[3:]


def environment_pairs(text: str) -> list[tuple[str, str]]:
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
