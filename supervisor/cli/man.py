"""``superd --man PAGE``: read superd's man pages from any install.

The pages are installed with the package under the environment's
``share/man`` (where man-db finds them through ``PATH``, and pipx links them);
from a source tree they are in its ``man/`` folder. ``man -l`` shows the file;
without ``man``, the page's source is printed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

#: The pages, by the names they are asked for.
PAGES = {"superd": "superd.8", "superctl": "superctl.1", "superd.toml": "superd.toml.5"}


def page_name(asked: str) -> Optional[str]:
    """``superd.8`` for "superd", "superd.8", "8" or "superd(8)"; None when unknown."""
    asked = asked.strip().replace("(", ".").rstrip(")")
    for name, file in PAGES.items():
        if asked in (name, file, file.rsplit(".", 1)[1]):
            return file
    return None


def find_page(file: str) -> Optional[Path]:
    """The installed page, else the source tree's."""
    section = file.rsplit(".", 1)[1]
    candidates = [Path(prefix) / "share" / "man" / f"man{section}" / file
                  for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, "/usr/local", "/usr"))]
    candidates.append(Path(__file__).resolve().parents[2] / "man" / file)
    return next((path for path in candidates if path.is_file()), None)


def show(asked: str) -> int:
    """Show the page (replacing this process with ``man``); returns an exit status on failure."""
    file = page_name(asked)
    if file is None:
        print(f"superd: no man page {asked!r}; the pages are: " + ", ".join(PAGES), file=sys.stderr)
        return 2
    path = find_page(file)
    if path is None:
        print(f"superd: the man page {file} is not installed with this copy of superd", file=sys.stderr)
        return 1
    man = shutil.which("man")
    if man is not None:
        sys.stdout.flush()
        os.execv(man, [man, "-l", str(path)])
    sys.stdout.write(path.read_text(encoding="utf-8"))  # no man: the source
    return 0
