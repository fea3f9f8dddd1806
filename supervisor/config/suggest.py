"""Hints for a config that almost says the right thing: "did you mean ..." for a
near-miss key, and supervisord's ``[program:NAME]`` headers in a TOML file."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: A supervisord INI section header: ``[program:api]``, ``[supervisord]``, ...
_INI_HEADER = re.compile(r"^\s*\[(program|group|fcgi-program|eventlistener|include|"
                         r"supervisord|supervisorctl|unix_http_server|inet_http_server|"
                         r"rpcinterface)(:[^\]]*)?\]\s*$", re.MULTILINE)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``' (did you mean "stopwaitsecs"?)'`` for a close match, else ``""``."""
    import difflib  # only when a key is wrong

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    if not close and word.lower() in choices:
        close = [word.lower()]
    return f' (did you mean "{close[0]}"?)' if close else ""


def supervisord_hint(text: str) -> str:
    """A sentence for a TOML file that holds supervisord INI headers, else ``""``."""
    match = _INI_HEADER.search(text)
    if match is None:
        return ""
    if match[1] == "program" and match[2]:
        name = match[2][1:].strip()
        return (f"; [{match[1]}{match[2]}] is supervisord's syntax: write [program.{name}] "
                f"in superd.toml, or convert the file with: superd import-supervisord FILE")
    return (f"; [{match[1]}{match[2] or ''}] is supervisord's syntax: convert the file "
            f"with: superd import-supervisord FILE")
