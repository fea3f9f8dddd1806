"""Which control socket to talk to, when nobody said: the one superctl finds.

The path given (superctl's ``-s``), else ``$SUPERD_SOCKET``, else the
``[superd] socket`` of the config file (the one given, else the one superd
would find: ``$SUPERD_CONFIG``, ./superd.toml, /etc/superd/superd.toml), else
the default socket path. The config package is imported only for that last
step, so a client given a path (or ``$SUPERD_SOCKET``) stays light.
"""

from __future__ import annotations

import os
from typing import Mapping

from .errors import SocketNotFound

ENV_SOCKET = "SUPERD_SOCKET"

__all__ = ["ENV_SOCKET", "SocketNotFound", "find_socket"]


def find_socket(path: str | os.PathLike | None = None, config_file: str | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """The control socket's path, found as superctl finds it."""
    environ = os.environ if environ is None else environ
    if path:
        return os.fspath(path)
    env = environ.get(ENV_SOCKET)
    if env:
        return env
    from .. import config  # lazily: only a client without a path needs it

    file = config_file
    try:
        if not file:
            file = config.find_config_file(None, environ)
        if not file:
            return str(config.default_paths(environ=environ)["socket"])
        socket_path = str(config.read_socket_path(file, environ))
    except Exception as exc:  # the config package's own errors
        where = f" from {file}" if file and str(file) not in str(exc) else ""
        raise SocketNotFound(f"cannot read the socket path{where}: {exc}") from None
    if not socket_path:
        raise SocketNotFound(f'{file} sets no control socket (socket = ""); use -s')
    return socket_path
