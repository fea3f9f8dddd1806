"""The generic value checks: a raw TOML value in, the parsed value out, or ``Invalid``.

Integers, numbers, booleans, strings, choices, octal modes, arrays, inline
tables, users and groups, commands, environments, sizes and signals. The key
tables (:mod:`.keys`) are built from these; ``parse_signal`` is public
because the control server checks the signals superctl sends with it.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .problems import Invalid, dotted, expected, quote, show

Check = Callable[[Any], Any]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    if minimum is not None and maximum is not None:
        what = f"an integer from {minimum} to {maximum}"
    else:
        what = "an integer" + (f" >= {minimum}" if minimum is not None else "")

    def check(value: Any) -> int:
        if (not is_int(value) or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            raise expected(what, value)
        return int(value)
    return check


def number(minimum: float, *, above: bool = False) -> Check:
    what = f"a number {'>' if above else '>='} {minimum:g}"

    def check(value: Any) -> float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and (value > minimum if above else value >= minimum))
        if not ok:
            raise expected(what, value)
        return float(value)
    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise expected("true or false", value)
    return value


def string(value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or "\0" in value:
        raise expected("a string" if empty else "a non-empty string", value)
    return value


def choice(*choices: str) -> Check:
    what = "one of " + ", ".join(map(quote, choices))

    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise expected(what, value)
        return value.lower()
    return check


def octal(example: str) -> Check:
    what = f'an octal string like "{example}"'

    def check(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"(0o)?[0-7]{1,4}", value.lower()):
            mode = int(value.lower().removeprefix("0o"), 8)
            if mode <= 0o777:
                return mode
        hint = "; octal modes must be quoted" if is_int(value) else ""
        raise expected(what, value, hint)
    return check


def array(item: Check, what: str) -> Check:
    """An array whose items all pass ``item``; item problems are keyed ``[i]``."""
    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise expected(what, value)
        items, errors = [], []
        for i, raw in enumerate(value):
            try:
                items.append(item(raw))
            except Invalid as e:
                errors += [(f"[{i}]{at}", message) for at, message in e.errors]
        if errors:
            raise Invalid.of(errors)
        return tuple(items)
    return check


def user_exists(value: Any) -> str:
    name = string(value)
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise Invalid(f"no such user {quote(name)}") from None
    return name


def run_as(value: Any) -> str:
    """``user``: an existing user, and superd must be root unless it is superd's own."""
    name = user_exists(value)
    euid = os.geteuid()
    if euid != 0 and pwd.getpwnam(name).pw_uid != euid:
        raise Invalid(f"running as user {quote(name)} needs root (superd runs as uid {euid})")
    return name


def group_exists(value: Any) -> str:
    name = string(value)
    try:
        grp.getgrnam(name)
    except KeyError:
        raise Invalid(f"no such group {quote(name)}") from None
    return name


#: A command string shlex would split at its whitespace alone: no quote, no
#: backslash, no whitespace but space, tab, CR and LF (str.split's own set is wider).
_PLAIN_COMMAND = re.compile(r"[^'\"\\\s]*(?:[ \t\r\n]+[^'\"\\\s]*)*")


def command(value: Any) -> tuple[str, ...]:
    """An array of strings, or one string split like a POSIX shell does."""
    if isinstance(value, str) and _PLAIN_COMMAND.fullmatch(value):
        argv = tuple(value.split())  # shlex's answer, ~20 times sooner (10,000 programs: 0.25 s)
    elif isinstance(value, str):
        try:
            argv = tuple(shlex.split(value))
        except ValueError as e:  # unbalanced quotes, trailing backslash
            raise Invalid(f"cannot split the command string: {e}") from None
    elif isinstance(value, list):
        argv = array(lambda item: string(item, empty=True), "")(value)
    else:
        argv = ()
    if not argv or not argv[0]:
        raise expected("a non-empty array of strings, or a command string", value)
    _fits_exec(argv)
    return argv


#: The kernel's limit on one argument or environment string (MAX_ARG_STRLEN), NUL included.
MAX_ARG_STRLEN = 32 * 4096


def _fits_exec(argv: tuple[str, ...]) -> None:
    """An argv the kernel would refuse at exec (E2BIG) is refused now, not at start."""
    sizes = [len(arg.encode("utf-8", "surrogateescape")) + 1 for arg in argv]
    longest = max(sizes)
    if longest > MAX_ARG_STRLEN:
        raise Invalid(f"argument {sizes.index(longest)} is {longest - 1} bytes long: "
                      f"the kernel takes at most {MAX_ARG_STRLEN - 1}")
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):  # pragma: no cover
        return
    total = sum(sizes) + 8 * len(sizes)  # the strings and their pointers
    if limit > 0 and total > limit:
        raise Invalid(f"the command's arguments take {total} bytes: more than the system's "
                      f"limit for arguments and environment ({limit} bytes, ARG_MAX)")


def environment(value: Any) -> tuple[tuple[str, str], ...]:
    """A table NAME = value; numbers become strings."""
    if not isinstance(value, dict):
        raise expected("a table of NAME = \"value\"", value)
    pairs, errors = [], []
    for name, raw in value.items():
        at = "." + dotted(name)
        if not name or "=" in name or "\0" in name:
            errors.append((at, 'invalid variable name (empty, or has "=" or NUL)'))
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            pairs.append((name, str(raw)))
        elif isinstance(raw, str) and "\0" not in raw:
            pairs.append((name, raw))
        else:
            errors.append((at, f"expected a string or a number, got {show(raw)}"))
    if errors:
        raise Invalid.of(errors)
    return tuple(pairs)


def inline_table(value: Any, keys: Mapping[str, Check], what: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """An inline table whose keys are all known; problems are keyed ``.key``."""
    if not isinstance(value, dict):
        raise expected(what, value)
    values, errors = {}, []
    for key, raw in value.items():
        if key not in keys:
            errors.append((f".{dotted(key)}", "unknown key; expected one of " + ", ".join(keys)))
            continue
        try:
            values[key] = keys[key](raw)
        except Invalid as e:
            errors += [(f".{dotted(key)}{at}", message) for at, message in e.errors]
    errors += [(f".{key}", "missing") for key in required if key not in value]
    if errors:
        raise Invalid.of(errors)
    return values


# --------------------------------------------------------------------------
# Sizes and signals

_SIZE_RE = re.compile(r"\s*([0-9]+)\s*(?:([kmg])(?:i?b)?|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(value: Any) -> int:
    """Bytes from ``512``, ``"512"``, ``"10 KB"``, ``"50MB"``, ``"1g"`` (powers of 1024).

    0 means "no rotation". Raises ``ValueError`` (an ``Invalid``) with a readable message.
    """
    if is_int(value) and value >= 0:
        return int(value)
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise expected('a size like "50MB" (B, KB, MB or GB)', value)
    unit = match[2].lower() if match[2] else None
    return int(match[1]) * _SIZE_UNITS[unit]


_SIGNAL_NUMBERS = {int(sig): sig for sig in signal.Signals}


def parse_signal(value: Any, *, allow_stop: bool = False) -> signal.Signals:
    """A signal from ``"TERM"``, ``"SIGTERM"``, ``"term"``, ``"15"`` or ``15``.

    SIGSTOP is refused unless ``allow_stop`` (a process cannot act on it, so it
    is useless as a stop signal; ``superctl signal STOP`` may still want it).
    Raises ``ValueError`` (an ``Invalid``) with a readable message.
    """
    sig = None
    if is_int(value) or (isinstance(value, str) and value.strip().isdecimal()):
        sig = _SIGNAL_NUMBERS.get(int(value))
    elif isinstance(value, str):
        name = value.strip().upper()
        sig = signal.Signals.__members__.get(name if name.startswith("SIG") else "SIG" + name)
    if sig is None:
        raise expected('a signal name like "TERM" or a signal number', value)
    if sig == signal.SIGSTOP and not allow_stop:
        raise Invalid("SIGSTOP cannot be handled by a process; use another signal")
    return sig

