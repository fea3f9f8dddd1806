"""JSON-RPC 2.0 messages on the control socket: what the server does between
the bytes of a line and a handler.

A line is parsed (and told apart as *observing* when every request of it
only observes, so that its peer hanging up cancels it); a request or a batch
is checked and dispatched to its handler, whose refusals and superd's own
errors become error responses. The transport (:mod:`.server`) reads and
writes the lines and enforces the limits; the handlers (:mod:`.handlers`)
check parameters and call the command API.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Optional

from . import protocol
from .handlers import OBSERVING_METHODS, Handlers, RpcError, error_for

log = logging.getLogger("superd")

#: Requests in one batch at most.
MAX_BATCH = 100


async def respond(handlers: Handlers, request: Any, writer: Any) -> Any:
    """The response to a parsed request or batch (None: nothing to answer,
    notifications only)."""
    if isinstance(request, list):
        if not request or len(request) > MAX_BATCH:
            return error_response(None, protocol.INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} requests")
        responses = [r for r in [await _one(handlers, item, writer) for item in request] if r is not None]
        return responses or None
    return await _one(handlers, request, writer)


async def _one(handlers: Handlers, request: Any, writer: Any) -> Optional[dict]:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        rid = request.get("id") if isinstance(request, dict) else None
        return error_response(valid_id(rid), protocol.INVALID_REQUEST, "not a JSON-RPC 2.0 request")
    rid = request.get("id")
    if not _is_valid_id(rid):
        return error_response(None, protocol.INVALID_REQUEST, "id must be a string, a number or null")
    notification = "id" not in request
    method = request["method"]
    params = request.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return None if notification else error_response(rid, protocol.INVALID_PARAMS, "params must be an object")
    handler = handlers.find(method)
    if handler is None:
        return None if notification else error_response(rid, protocol.METHOD_NOT_FOUND,
                                                        f"no such method: {method[:100]!r}")
    try:
        result = await handler(params, writer)
    except Exception as exc:
        error = error_for(exc)
        if error is None:  # a bug: report it, keep serving
            log.exception("control request %s failed", method)
            error = RpcError(protocol.INTERNAL_ERROR, f"internal error: {exc}")
        return None if notification else error_response(rid, error.code, error.message, error.data)
    return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(line: bytes) -> tuple[Any, bool, Optional[dict]]:
    """``(request, observing, error response)`` of one line."""
    try:
        request = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return None, False, error_response(None, protocol.PARSE_ERROR, f"parse error: {str(exc)[:200]}")
    items = request if isinstance(request, list) else [request]
    observing = bool(items) and all(
        isinstance(i, dict) and isinstance(i.get("method"), str) and i["method"] in OBSERVING_METHODS for i in items
    )
    return request, observing, None


def _is_valid_id(rid: Any) -> bool:
    if isinstance(rid, float):
        return math.isfinite(rid)
    return rid is None or (isinstance(rid, (str, int)) and not isinstance(rid, bool))


def valid_id(rid: Any) -> Any:
    """``rid`` when it may be an id, else None (what an error response then carries)."""
    return rid if _is_valid_id(rid) else None


def error_response(rid: Any, code: int, message: str, data: Any = None) -> dict:
    error: dict = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}
