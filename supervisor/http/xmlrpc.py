"""XML-RPC on the wire: method calls in, answers and faults out.

Calls are parsed with expat through the standard library's unmarshaller, but
with any DOCTYPE refused before its first declaration is read: no entity is
ever defined, so none is expanded (billion laughs, external entities). The
answers are the standard library's encoding, after :func:`clean` made the
value encodable: no None, integers that fit XML-RPC's 32 bits, and strings
without the characters XML 1.0 cannot carry (program output has escape
codes).
"""

from __future__ import annotations

import re
import xmlrpc.client
from typing import Any
from xml.parsers import expat

# supervisord's fault codes (supervisor/xmlrpc.py's Faults): clients test them.
UNKNOWN_METHOD = 1
INCORRECT_PARAMETERS = 2
BAD_ARGUMENTS = 3
SIGNATURE_UNSUPPORTED = 4
SHUTDOWN_STATE = 6
BAD_NAME = 10
BAD_SIGNAL = 11
NO_FILE = 20
NOT_EXECUTABLE = 21
FAILED = 30
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70
SUCCESS = 80
ALREADY_ADDED = 90
STILL_RUNNING = 91
CANT_REREAD = 92

FAULT_NAMES = {code: name for name, code in globals().items() if name.isupper() and isinstance(code, int)}

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_INT_MAX = 2**31 - 1


class RPCError(Exception):
    """A fault: ``faultString`` is the code's name, then ": " and ``extra`` when given."""

    def __init__(self, code: int, extra: Any = None) -> None:
        self.code = code
        self.text = FAULT_NAMES.get(code, "FAILED")
        if extra is not None:
            self.text = f"{self.text}: {extra}"
        super().__init__(self.text)


class BadRequest(Exception):
    """Not an XML-RPC method call (HTTP 400)."""


def _refuse_doctype(*_args: Any) -> None:
    raise BadRequest("a DOCTYPE is not allowed in an XML-RPC call")


def _refuse_entity(*_args: Any) -> None:
    raise BadRequest("entity declarations are not allowed in an XML-RPC call")


def parse_call(body: bytes) -> tuple[str, tuple]:
    """``(method name, params)`` of a ``<methodCall>``; raises BadRequest."""
    target = xmlrpc.client.Unmarshaller(use_datetime=False, use_builtin_types=True)
    parser = expat.ParserCreate(None, None)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    parser.CharacterDataHandler = target.data
    parser.buffer_text = True
    target.xml(None, None)
    try:
        parser.Parse(body, True)
        params = target.close()
    except BadRequest:
        raise
    except (expat.ExpatError, xmlrpc.client.ResponseError, xmlrpc.client.Fault, ValueError, TypeError,
            KeyError, IndexError, OverflowError) as exc:
        raise BadRequest(f"not an XML-RPC call: {str(exc)[:200]}") from None
    method = target.getmethodname()
    if not isinstance(method, str) or not method:
        raise BadRequest("not an XML-RPC call: no methodName")
    return method, tuple(params)


def clean(value: Any) -> Any:
    """``value`` as XML-RPC can carry it."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -_INT_MAX - 1 <= value <= _INT_MAX else float(value)
    if isinstance(value, str):
        return _NOT_XML.sub("\ufffd", value)
    if isinstance(value, bytes):
        return clean(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return clean(str(value))


def dumps_result(value: Any) -> bytes:
    return xmlrpc.client.dumps((clean(value),), methodresponse=True, encoding="utf-8").encode("utf-8")


def dumps_fault(code: int, text: str) -> bytes:
    fault = xmlrpc.client.Fault(code, clean(text))
    return xmlrpc.client.dumps(fault, methodresponse=True, encoding="utf-8").encode("utf-8")
