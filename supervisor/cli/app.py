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
ENV_TIMEOUT = "SUPERCTL_TIMEOUT"
#: How long superctl waits for superd's reply to a request that answers at once.
REPLY_TIMEOUT = 30.0
#: ... to one that waits by design (start, stop, restart, reload, shutdown)
#: without a --timeout of its own; with one, that plus :data:`REPLY_MARGIN`.
WAITING_TIMEOUT = 3600.0
REPLY_MARGIN = 30.0


def reply_timeout(environ=os.environ) -> float:
    """:data:`REPLY_TIMEOUT`, or ``$SUPERCTL_TIMEOUT`` seconds."""
    try:
        value = float(environ.get(ENV_TIMEOUT, REPLY_TIMEOUT))
    except ValueError:
        raise ConfigProblem(f"${ENV_TIMEOUT} must be a number of seconds") from None
    if not 0 < value < 1e9:
        raise ConfigProblem(f"${ENV_TIMEOUT} must be a number of seconds > 0")
    return value


def waiting_timeout(timeout: float | None) -> float:
    """The reply timeout of a command that waits (``timeout``: its --timeout)."""
    return WAITING_TIMEOUT if timeout is None else timeout + REPLY_MARGIN


class ConfigProblem(click.ClickException):
    """The socket path could not be worked out (a usage error, exit 2)."""

    exit_code = protocol.EXIT_USAGE

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"superctl: {self.message}", err=True)


def resolve_socket(socket_path: str | None, config_file: str | None, environ=os.environ) -> str:
    """The socket to talk to: ``-s``, then ``$SUPERD_SOCKET``, then the
    ``socket`` of the config file (``-c``, else the one superd would find),
    else the default socket path (the Python client's own default too)."""
    from ..control.locate import SocketNotFound, find_socket

    try:
        return find_socket(socket_path, config_file, environ)
    except SocketNotFound as exc:
        raise ConfigProblem(exc.message) from None


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
        """A client whose every reply must come within :data:`REPLY_TIMEOUT`
        seconds unless the command says otherwise (a stopped or wedged superd
        must not hang superctl)."""
        kwargs.setdefault("timeout", reply_timeout())
        return Client(self.socket_path, **kwargs)
