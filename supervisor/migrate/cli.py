"""The command line of ``superd import-supervisord FILE [-o OUT]``: the TOML goes
to stdout (or OUT), and every setting that cannot be carried over is reported on
stderr as ``warning: FILE: [SECTION] KEY: why`` (``note:`` for the harmless ones)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Optional

from .conversion import convert
from .ini import InputError

PROG = "superd import-supervisord"


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
