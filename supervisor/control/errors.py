"""The client's view of superd's error codes.

One exception class per JSON-RPC error code (each with the superctl exit
code it maps to) and :func:`error_from_response`, which turns an answer's
``error`` member into one of them. Standard library only, like the client.
"""

from __future__ import annotations

from . import protocol

__all__ = [
    "SuperdError",
    "Unreachable",
    "ProtocolError",
    "ActionFailed",
    "NotInState",
    "NoSuchName",
    "ShuttingDown",
    "CallTimeout",
    "NotAllowed",
    "TooLarge",
    "Busy",
    "InvalidConfig",
    "InvalidParams",
    "MethodNotFound",
    "InternalError",
    "error_from_response",
]


class SuperdError(Exception):
    """An error answered by superd (or met on the way to it).

    ``code`` is the JSON-RPC error code (``None`` for errors raised by the
    client itself without an answer, such as ``Unreachable``), ``message``
    the human text and ``data`` whatever structured detail came with it.
    ``exit_code`` is the superctl exit code this error maps to.
    """

    exit_code = protocol.EXIT_FAILED

    def __init__(self, code: int | None, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, data={self.data!r})"


class Unreachable(SuperdError):
    """superd could not be reached: no socket, refused, not allowed by the
    file system, or the connection closed before a reply came."""

    exit_code = protocol.EXIT_UNREACHABLE

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(None, f"cannot reach superd at {path}: {reason}",
                         {"path": path, "reason": reason})
        self.path = path
        self.reason = reason


class SocketNotFound(SuperdError):
    """A client given no socket path could not work one out (the config
    file it would read is unreadable, or sets no socket)."""

    exit_code = protocol.EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class ProtocolError(SuperdError):
    """The peer did not speak the protocol (garbage, wrong id, ...)."""


class ActionFailed(SuperdError):
    """The action was tried and failed (spawn error, fatal, ...)."""


class NotInState(SuperdError):
    """``wait``: some process did not reach the asked state in time.
    ``data`` holds the process dicts that are not in the state."""

    exit_code = protocol.EXIT_NOT_IN_STATE


class NoSuchName(SuperdError):
    """A name matches no program, instance or group."""

    exit_code = protocol.EXIT_NO_SUCH_NAME


class ShuttingDown(SuperdError):
    """superd is shutting down and refuses new work."""


class CallTimeout(SuperdError):
    """The action (or, client side, the reply) did not come in time."""


class NotAllowed(SuperdError):
    """superd refuses to talk to this peer."""


class TooLarge(SuperdError):
    """The request line is longer than ``protocol.MAX_LINE``."""


class Busy(SuperdError):
    """superd has too many connections."""


class InvalidConfig(SuperdError):
    """``reload``: the new config is invalid; nothing changed. ``message``
    holds the problems."""


class InvalidParams(SuperdError):
    """The call's parameters were refused (a usage error)."""

    exit_code = protocol.EXIT_USAGE


class MethodNotFound(SuperdError):
    """This superd does not know the method (an older daemon?)."""


class InternalError(SuperdError):
    """superd failed while answering."""


_ERROR_CLASSES: dict[int, type[SuperdError]] = {
    protocol.FAILED: ActionFailed,
    protocol.NOT_IN_STATE: NotInState,
    protocol.NO_SUCH_NAME: NoSuchName,
    protocol.SHUTTING_DOWN: ShuttingDown,
    protocol.TIMEOUT: CallTimeout,
    protocol.NOT_ALLOWED: NotAllowed,
    protocol.TOO_LARGE: TooLarge,
    protocol.BUSY: Busy,
    protocol.INVALID_CONFIG: InvalidConfig,
    protocol.INVALID_PARAMS: InvalidParams,
    protocol.METHOD_NOT_FOUND: MethodNotFound,
    protocol.INTERNAL_ERROR: InternalError,
    protocol.PARSE_ERROR: ProtocolError,
    protocol.INVALID_REQUEST: ProtocolError,
}


def error_from_response(error: object) -> SuperdError:
    """Build the typed exception for a JSON-RPC ``error`` member."""
    if not isinstance(error, dict):
        return ProtocolError(None, f"malformed error object: {error!r}")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"error {code}"
    cls = _ERROR_CLASSES.get(code, SuperdError) if isinstance(code, int) else SuperdError
    exc = cls(code if isinstance(code, int) else None, message, error.get("data"))
    if cls is SuperdError and isinstance(code, int):
        # An unknown application code still maps to an exit code if the
        # protocol table knows it.
        exc.exit_code = protocol.EXIT_FOR_ERROR.get(code, protocol.EXIT_FAILED)
    return exc
