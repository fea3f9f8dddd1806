"""The man pages of man/, and reading roff just enough to check them.

The page parsing is deliberately simple and relies on the conventions the pages
follow (see the comment at the top of each page): an option or a key is the tag
of a ``.TP`` paragraph; a superctl command is a ``.SS NAME`` subsection of
COMMANDS; a literal default reads ``Default:`` followed by a ``.B``/``.BR`` line.
Used by tests/unit/test_man_pages.py (the pages match the code) and
tests/system/test_man_render.py (the pages render).
"""

from __future__ import annotations

import re
from pathlib import Path

MAN = Path(__file__).resolve().parent.parent / "man"
PAGES = {"superd.8": MAN / "superd.8", "superctl.1": MAN / "superctl.1", "superd.toml.5": MAN / "superd.toml.5"}


def page(name: str) -> str:
    return PAGES[name].read_text(encoding="utf-8")


_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),   # font changes
    (re.compile(r"\\\((dq)"), '"'),
    (re.compile(r"\\\((aq)"), "'"),
    (re.compile(r"\\\((em|en)"), "--"),
    (re.compile(r"\\\((lq|rq)"), '"'),
    (re.compile(r"\\\((bu)"), "*"),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\[&c%:]"), ""),
    (re.compile(r"\\e"), "\\\\"),
]
_FONT_MACROS = re.compile(r"^\.(B|I|BR|RB|BI|IB|IR|RI|SM|SB|OP)\s+")


def _split_macro_args(args: str) -> list[str]:
    """A macro's arguments: words, or double-quoted strings."""
    return [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|\S+', args)]


def plain(line: str) -> str:
    """One roff line as a reader sees it (roughly): no font escapes, no macro name."""
    match = _FONT_MACROS.match(line)
    if match:
        macro = match[1]
        parts = _split_macro_args(line[match.end():])
        joiner = " " if macro in ("B", "I", "SM", "SB", "OP") else ""
        line = joiner.join(parts)
    for pattern, repl in _ESCAPES:
        line = pattern.sub(repl, line)
    return line


def sections(text: str, macro: str = "SH") -> dict[str, str]:
    """``{title: body}`` for each ``.SH`` (or ``.SS``) of ``text``, in order."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(f".{macro} ") or line == f".{macro}":
            title = " ".join(_split_macro_args(line[len(macro) + 1:]))
            current = found.setdefault(plain(title), [])
        elif macro == "SS" and line.startswith(".SH"):
            current = None
        elif current is not None:
            current.append(line)
    return {title: "\n".join(lines) for title, lines in found.items()}


def tagged_paragraphs(body: str) -> list[tuple[str, str]]:
    """``(tag, text)`` of each ``.TP`` paragraph: its tag line as plain text
    (with the ``.TQ`` tags that follow it), and its roff lines up to the next
    ``.TP``, ``.SS`` or ``.SH``."""
    result: list[tuple[str, str]] = []
    lines = [line for line in body.splitlines() if not line.startswith('.\\"')]
    i = 0
    while i < len(lines):
        if lines[i] == ".TP" or lines[i].startswith(".TP "):
            tags = [plain(lines[i + 1])] if i + 1 < len(lines) else []
            j = i + 2
            while j + 1 < len(lines) and lines[j] == ".TQ":
                tags.append(plain(lines[j + 1]))
                j += 2
            k = j
            while k < len(lines) and not (lines[k] == ".TP" or lines[k].startswith((".TP ", ".SS", ".SH"))):
                k += 1
            result.append((" ".join(tags), "\n".join(lines[j:k])))
            i = k
        else:
            i += 1
    return result


def options_in(text: str) -> set[str]:
    """Every ``-x`` / ``--long-option`` written in ``text`` (plain text)."""
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def section(text: str, title: str, macro: str = "SH") -> str:
    found = sections(text, macro)
    assert title in found, f"no {macro} {title!r} section; there are: {', '.join(found)}"
    return found[title]
