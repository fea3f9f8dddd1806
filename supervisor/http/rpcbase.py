"""What the XML-RPC methods share: the signature decorator and argument checks."""

from __future__ import annotations

from typing import Any, Callable

from ..core.process import Process
from .xmlrpc import INCORRECT_PARAMETERS, RPCError

#: The most a log read returns at once.
MAX_READ = 1 << 20


def rpc(*signature: str) -> Callable:
    """Mark a method as an XML-RPC method with supervisord's signature (return type first)."""
    def mark(fn: Callable) -> Callable:
        fn.rpc_signature = list(signature)
        return fn
    return mark


def namespec(process: Process) -> str:
    return process.name if process.group == process.name else f"{process.group}:{process.name}"


def string(value: Any, what: str = "name") -> str:
    if not isinstance(value, str):
        raise RPCError(INCORRECT_PARAMETERS, f"{what} must be a string")
    return value


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise RPCError(INCORRECT_PARAMETERS, "expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RPCError(INCORRECT_PARAMETERS, "expected an integer") from None
