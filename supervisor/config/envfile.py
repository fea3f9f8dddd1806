"""Environment files (``env_file``): ``KEY=VALUE`` lines, as docker's ``.env``
and systemd's ``EnvironmentFile=`` write them.

Blank lines and ``#`` comments are skipped; ``export`` in front is
tolerated; a value in single quotes is taken as is, one in double quotes
knows ``\\"``, ``\\\\``, ``\\$``, ``\\n`` and ``\\t``; an unquoted value is
trimmed and ends at `` #`` (a comment). Files are read at every start
(:func:`read_env_files`), so a restart picks up a changed file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "n": "\n", "t": "\t", "`": "`"}


class EnvFileError(ValueError):
    """A file that cannot be read or a line that cannot be understood."""


def _quoted(text: str, quote: str, lineno: int) -> str:
    """The value in ``text``, which starts with ``quote``; what follows it must be a comment."""
    out, i = [], 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            rest = text[i + 1:].strip()
            if rest and not rest.startswith("#"):
                raise EnvFileError(f"line {lineno}: unexpected {rest[:20]!r} after the closing quote")
            return "".join(out)
        if ch == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise EnvFileError(f"line {lineno}: the value has no closing {quote}")


def parse_env(text: str) -> list[tuple[str, str]]:
    """The variables a file's ``text`` sets, in order. Raises EnvFileError."""
    pairs = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME_RE.fullmatch(name):
            raise EnvFileError(f"line {lineno}: expected NAME=VALUE, got {raw.strip()[:40]!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            value = _quoted(value, value[0], lineno)
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].rstrip()
        if "\0" in value:
            raise EnvFileError(f"line {lineno}: NUL in the value")
        pairs.append((name, value))
    return pairs


def read_env_files(files: Sequence[tuple[str, bool]]) -> list[tuple[str, str]]:
    """The variables of ``files`` ((path, optional) each), later files winning.

    A missing optional file is skipped; any other problem raises
    EnvFileError naming the file."""
    pairs: list[tuple[str, str]] = []
    for path, optional in files:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read(1 << 20)
        except FileNotFoundError:
            if optional:
                continue
            raise EnvFileError(f"env_file {path}: no such file") from None
        except OSError as exc:
            raise EnvFileError(f"env_file {path}: {exc.strerror or exc}") from None
        try:
            pairs += parse_env(text)
        except EnvFileError as exc:
            raise EnvFileError(f"env_file {path}: {exc}") from None
    return pairs
