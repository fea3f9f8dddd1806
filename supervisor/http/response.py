"""An HTTP answer as the handlers build it and the server sends it."""

from __future__ import annotations

from typing import Callable, Optional


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
