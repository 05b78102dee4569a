"""A request body size limit for the JSON APIs, answered in each API's own envelope.

The server's own limit (``[wsgi] max_upload_size``) has to let image data
through, so it cannot protect the JSON APIs, whose bodies are parsed whole in
memory. This middleware sits in front of every mounted API: a body declared
larger than ``[wsgi] max_request_body_size`` is refused before the app sees
it; a body with no Content-Length (chunked) is read up to the limit and
refused past it, otherwise handed on from memory. Routes that stream bulk data
(image uploads) are exempt. Nothing runs for a refused request, so it changes
nothing.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

ErrorFormatter = Callable[[int, str], dict[str, Any]]
WSGIApp = Callable[..., Iterable[bytes]]

_READ = 64 * 1024

#: environ key a server sets when it dropped the body of a limited route past the limit
TOO_LARGE_KEY = "transcell.body_too_large"


def _generic_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class BodySizeLimit:
    """Refuse request bodies over ``limit`` bytes with 413, except on exempt routes.

    ``envelopes`` maps a mount prefix (``/compute``) to the function that
    words that API's errors; ``exempt`` lists (method, path regex) pairs whose
    bodies are not limited here, or (method, path regex, limit) triples whose
    bodies are held to their own limit instead (image chunks: bulk, but bounded).
    """

    def __init__(self, app: WSGIApp, limit: int, envelopes: dict[str, ErrorFormatter],
                 exempt: Sequence[tuple[str, str] | tuple[str, str, int | None]] = ()):
        self.app = app
        self.limit = limit
        self.envelopes = sorted(envelopes.items(), key=lambda item: -len(item[0]))
        self.exempt = [(method.upper(), re.compile(pattern), own[0] if own else None)
                       for method, pattern, *own in exempt]

    def limit_for(self, method: str, path: str) -> int | None:
        """The most bytes a body sent as ``method path`` may hold here; None: no limit."""
        method = method.upper()
        for m, p, own in self.exempt:
            if m == method and p.fullmatch(path):
                return own
        return self.limit

    def applies(self, method: str, path: str) -> bool:
        """Whether a body sent as ``method path`` is held to a limit."""
        return self.limit_for(method, path) is not None

    def _formatter(self, path: str) -> ErrorFormatter:
        for prefix, formatter in self.envelopes:
            if path == prefix or path.startswith(prefix + "/"):
                return formatter
        return _generic_error

    def _too_large(self, environ, start_response, limit: int) -> list[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        message = (f"Request body is larger than the {limit} bytes this API accepts; "
                   "send a smaller request.")
        body = json.dumps(self._formatter(path)(413, message)).encode()
        start_response("413 Request Entity Too Large", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        limit = self.limit_for(method, path)
        if limit is None:
            return self.app(environ, start_response)
        if environ.get(TOO_LARGE_KEY):
            return self._too_large(environ, start_response, limit)
        length = environ.get("CONTENT_LENGTH") or ""
        if length.strip():
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > limit:
                return self._too_large(environ, start_response, limit)
            if declared >= 0:
                return self.app(environ, start_response)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and not length.strip():
            return self.app(environ, start_response)
        # No usable length: read what arrives, but never more than the limit.
        stream = environ["wsgi.input"]
        buffered = bytearray()
        while len(buffered) <= limit:
            piece = stream.read(min(_READ, limit + 1 - len(buffered)))
            if not piece:
                break
            buffered += piece
        if len(buffered) > limit:
            return self._too_large(environ, start_response, limit)
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(bytes(buffered))
        environ["CONTENT_LENGTH"] = str(len(buffered))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)
