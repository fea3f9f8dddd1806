"""superd's private folder in /tmp: made 0700, refused when someone else could swap it.

A non-root superd without ``$XDG_RUNTIME_DIR`` keeps its socket, lock and
crash-recovery state in ``/tmp/superd-$UID``. /tmp is shared: a folder of that
name made beforehand by another user (or left writable by others) would let
that user replace the socket superctl talks to, or the state superd trusts
after a crash. superd creates it with mode 0700 and refuses one that is not
its own.
"""

from __future__ import annotations

import os
import stat
from typing import Optional

from ..config.rundir import USER_TMP_BASE


def check_private(path: str, uid: Optional[int] = None) -> Optional[str]:
    """Make sure the private folder above ``path`` (when it is in one) is safe.

    Creates the folder (0700) when it is missing; returns why it cannot be used, or None.
    """
    uid = os.geteuid() if uid is None else uid
    base = USER_TMP_BASE.format(uid=uid)
    if path != base and not path.startswith(base + "/"):
        return None
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot create {base}: {exc.strerror}"
    try:
        st = os.lstat(base)
    except OSError as exc:
        return f"cannot use {base}: {exc.strerror}"
    fix = ("remove it (or set $XDG_RUNTIME_DIR, or [superd] run_dir and socket to a folder of "
           "your own) and start superd again")
    if not stat.S_ISDIR(st.st_mode):
        return f"{base} is not a folder (a symbolic link?): refusing to keep the socket and state there; {fix}"
    if st.st_uid != uid:
        return (f"{base} belongs to uid {st.st_uid}, not to superd's user (uid {uid}): that user could "
                f"swap superd's socket and state; {fix}")
    if st.st_mode & 0o022:
        return (f"{base} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}): anyone could swap "
                f"superd's socket and state; run: chmod 700 {base}")
    return None
