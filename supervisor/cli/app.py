"""What superctl's commands share: the global options, the control socket
they resolve to (``-s``, ``$SUPERD_SOCKET``, the config file) and a client
for it. The config package is imported only when the socket must come from it.
"""

from __future__ import annotations

import os

import click

from ..control import protocol
from ..control.client import Client

ENV_SOCKET = "SUPERD_SOCKET"


class ConfigProblem(click.ClickException):
    """The socket path could not be worked out (a usage error, exit 2)."""

    exit_code = protocol.EXIT_USAGE

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"superctl: {self.message}", err=True)


def resolve_socket(socket_path: str | None, config_file: str | None, environ=os.environ) -> str:
    """The socket to talk to: ``-s``, then ``$SUPERD_SOCKET``, then the
    ``socket`` of the config file (``-c``, else the one superd would find),
    else the default socket path."""
    if socket_path:
        return socket_path
    env = environ.get(ENV_SOCKET)
    if env:
        return env
    try:
        from .. import config  # lazily: keeps --help and the fast path light
    except ImportError as exc:  # pragma: no cover - only before config.py exists
        raise ConfigProblem(f"cannot work out the socket path ({exc}); use -s or ${ENV_SOCKET}") from None
    path = config_file
    try:
        if not path:
            path = config.find_config_file(None, environ)
        if not path:
            return str(config.default_paths(environ=environ)["socket"])
        socket_path = str(config.read_socket_path(path, environ))
    except Exception as exc:  # the config module's own errors
        where = f" from {path}" if path and str(path) not in str(exc) else ""
        raise ConfigProblem(f"cannot read the socket path{where}: {exc}") from None
    if not socket_path:
        raise ConfigProblem(f"{path} sets no control socket (socket = \"\"); use -s")
    return socket_path


class App:
    """What the commands share: the global options and the socket path."""

    def __init__(self, socket_path: str | None = None, config_file: str | None = None) -> None:
        self.socket_option = socket_path
        self.config_option = config_file
        self.in_shell = False
        self._socket: str | None = None

    @property
    def socket_path(self) -> str:
        if self._socket is None:
            self._socket = resolve_socket(self.socket_option, self.config_option)
        return self._socket

    def client(self, **kwargs) -> Client:
        return Client(self.socket_path, **kwargs)
