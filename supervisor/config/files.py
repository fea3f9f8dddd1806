"""Files and paths: reading a TOML file, the default places, the include globs.

``read_socket_path`` is superctl's cheap way to the control socket: it reads
only ``[superd].socket`` and checks nothing else.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .problems import ConfigError, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

#: The longest path a Unix socket address holds (sun_path less its final NUL).
SOCKET_PATH_MAX = 107


def default_paths(uid: int | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Default ``socket``, ``run_dir`` and ``logs_dir`` for a superd running as ``uid``.

    Root gets the system places; anyone else ``$XDG_RUNTIME_DIR`` (when it is an
    absolute path), else ``/tmp/superd-$UID``.
    """
    uid = os.geteuid() if uid is None else uid
    environ = os.environ if environ is None else environ
    if uid == 0:
        return {"socket": "/run/superd.sock", "run_dir": "/run/superd", "logs_dir": "/var/log/superd"}
    base = environ.get("XDG_RUNTIME_DIR", "")
    if not os.path.isabs(base):
        from .rundir import USER_TMP_BASE  # made 0700 and checked by daemon.private
        base = USER_TMP_BASE.format(uid=uid)
    return {"socket": f"{base}/superd.sock", "run_dir": f"{base}/superd",
            "logs_dir": f"{base}/superd/logs"}


def absolute(path: str, base: str) -> str:
    """``path``, relative to ``base`` unless absolute already."""
    return os.path.abspath(os.path.join(base, path))


def read_toml(path: str, problems: list[Problem]) -> dict[str, Any] | None:
    """The file's data, or None with the reason added to ``problems``."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        problems.append(Problem(path, "", f"cannot read the file: {e.strerror or e}"))
    except UnicodeDecodeError as e:
        problems.append(Problem(path, "", f"not UTF-8 text: {e}"))
    except tomllib.TOMLDecodeError as e:
        from .suggest import supervisord_hint
        with open(path, encoding="utf-8", errors="replace") as f:
            hint = supervisord_hint(f.read())
        problems.append(Problem(path, "", f"invalid TOML: {e}{hint}"))
    return None


def read_socket_path(path: str, environ: Mapping[str, str] | None = None) -> str:
    """``[superd].socket`` of the file at ``path``, resolved as ``load()`` would.

    Cheap and lenient (for superctl): the rest of the file is not checked, and
    a missing or unusable ``socket`` gives the default. Raises ``ConfigError``
    only when the file cannot be read or is not TOML.
    """
    path = os.path.abspath(path)
    problems: list[Problem] = []
    data = read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    daemon = data.get("superd")
    socket = daemon.get("socket") if isinstance(daemon, dict) else None
    if isinstance(socket, str) and "\0" not in socket:
        return absolute(socket, os.path.dirname(path)) if socket else ""
    return default_paths(environ=environ)["socket"]


def included_files(patterns: Sequence[str], main: str | None) -> list[str]:
    """Files matched by the include globs, each once, sorted within each glob."""
    files = {os.path.abspath(f): None for pattern in patterns
             for f in sorted(glob.glob(pattern)) if os.path.isfile(f)}
    files.pop(main or "", None)
    return list(files)

