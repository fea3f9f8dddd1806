"""An HTTP answer as the handlers build it and the server sends it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable, Optional


class Response:
    __slots__ = ("status", "headers", "body", "after")

    def __init__(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
                 headers: Optional[list[tuple[str, str]]] = None, after: Optional[Callable[[], None]] = None) -> None:
        self.status = status
        self.body = body
        self.headers = [("Content-Type", content_type), *(headers or [])]
        self.after = after  # called once the answer is sent (shutdown: after the client has it)


def text(status: int, message: str, headers: Optional[list[tuple[str, str]]] = None) -> Response:
    return Response(status, (message + "\n").encode(), headers=headers)


class StreamingResponse:
    """An answer whose body is produced over time (``tail -f``, Server-Sent Events).

    The server sends the head, then calls ``open(body)`` once: it returns the
    body's first bytes and the follower that writes the rest through
    ``body`` (:class:`~supervisor.http.streaming.Body`) until the follow
    ends. Nothing is followed before the server has room for the stream.
    """

    __slots__ = ("status", "headers", "open")

    def __init__(self, content_type: str, open: Callable[[Any], tuple[bytes, Any]],
                 headers: Optional[list[tuple[str, str]]] = None, status: int = 200) -> None:
        self.status = status
        self.headers = [("Content-Type", content_type), *(headers or [])]
        self.open = open


def reason(status: int) -> bytes:
    """The status line's reason phrase (supervisorctl's ``tail -f`` needs one)."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
