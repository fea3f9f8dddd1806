"""What is wrong with a config, and how values are shown in the messages.

A :class:`Problem` names its file and the key's dotted path; :class:`ConfigError`
carries every problem found. A check raises :class:`Invalid` with the message
and where, below the key it checked, the value went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple


class Problem(NamedTuple):
    """One thing wrong with the config."""

    file: str | None
    key: str        # dotted path, e.g. "program.web.command[2]"; "" for the whole file
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in self if part)


class ConfigError(Exception):
    """The config is invalid; ``problems`` lists everything found (one per line in str())."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(dict.fromkeys(problems))  # drop repeats, keep order
        super().__init__("\n".join(map(str, self.problems)))


class Invalid(ValueError):
    """A value was refused. ``errors`` holds (key suffix, message) pairs."""

    def __init__(self, message: str, at: str = "") -> None:
        self.errors: list[tuple[str, str]] = [(at, message)]
        super().__init__(message)

    @classmethod
    def of(cls, errors: list[tuple[str, str]]) -> Invalid:
        invalid = cls(errors[0][1], errors[0][0])
        invalid.errors = errors
        return invalid


# --------------------------------------------------------------------------
# Showing values in messages, the way they are written in TOML

_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {
    ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t"}


def quote(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(key: str) -> str:
    """A key as written in a TOML dotted path: bare when it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else quote(key)


def show(value: Any) -> str:
    """Describe a TOML value for 'got ...': ``"ten" (string)``, ``true (boolean)``, ``an array``."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return f"{str(value).lower()} (boolean)"
    if isinstance(value, str):
        text, kind = quote(value), "string"
    elif isinstance(value, int):
        text, kind = str(value), "integer"
    elif isinstance(value, float):
        text, kind = str(value), "float"
    else:  # TOML dates and times, or whatever a caller of parse() passed
        text, kind = str(value), type(value).__name__
    if len(text) > 60:
        text = text[:56] + "..." + text[-1]
    return f"{text} ({kind})"


def expected(what: str, value: Any, hint: str = "") -> Invalid:
    return Invalid(f"expected {what}, got {show(value)}{hint}")
