"""The dashboard at ``/``: one page of HTML, its style sheet and its script,
package data read the first time a browser asks for them (a superd with
``[http]`` that nobody looks at never loads them) and kept from then on.

They come with a Content-Security-Policy that allows superd's own script,
style and API only: nothing external, no inline code, no framing.
"""

from __future__ import annotations

import os

from .response import Response

#: URL path -> (file in the package's dashboard/ folder, content type).
ASSETS = {
    b"/": ("index.html", "text/html; charset=utf-8"),
    b"/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    b"/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
}
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard")
HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
]


class Dashboard:
    def __init__(self) -> None:
        self._files: dict[bytes, bytes] = {}

    def respond(self, path: bytes) -> Response:
        name, content_type = ASSETS[path]
        body = self._files.get(path)
        if body is None:
            with open(os.path.join(FOLDER, name), "rb") as f:
                body = self._files[path] = f.read()
        return Response(200, body, content_type=content_type, headers=list(HEADERS))
