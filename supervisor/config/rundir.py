"""The default ``run_dir`` of one superd instance, and superd's private folder in /tmp.

Two superds with different configs must not share a run directory (its lock
refuses the second, its state file would mix their processes). With the
default socket the default ``run_dir`` is the plain one; a config that names
its own socket (or has none) gets a run directory derived from that socket
(or from its own path), so that only the same instance collides with itself.
"""

from __future__ import annotations

import re

#: A non-root superd without $XDG_RUNTIME_DIR keeps its socket and state here.
USER_TMP_BASE = "/tmp/superd-{uid}"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def instance_run_dir(default_run_dir: str, default_socket: str, socket: str, config_path: str | None) -> str:
    """``run_dir`` for a config that does not set it."""
    if socket == default_socket or (not socket and config_path is None):
        return default_run_dir
    key = socket or config_path or ""
    name = _UNSAFE.sub("_", key.strip("/").replace("/", "-"))
    if len(name) > 60:  # keep it readable and short; the hash keeps it unique
        name = name[-48:].lstrip("-_.") + "-" + _fnv1a(key)
    return f"{default_run_dir}-{name}"


def _fnv1a(text: str) -> str:
    """A short stable hash (hashlib would map OpenSSL into superd for nothing)."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"[:10]
