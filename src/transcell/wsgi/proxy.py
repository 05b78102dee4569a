"""Passing a path prefix of the API's endpoint through to a service of its own.

In the distributed layout Keystone and Placement run as processes of their
own, yet clients keep one endpoint with ``/identity`` and ``/placement`` under
it, as in the embedded layout (and as a devstack front end arranges). This is
a plain HTTP relay: it adds nothing to a request and decides nothing; each
service authenticates what reaches it. Bodies stream both ways in bounded
pieces, so an upload never sits in the API's memory.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

LOG = logging.getLogger(__name__)

CHUNK = 256 * 1024

#: Headers that describe one hop, not the message (RFC 9110, 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade", "host"}


class PassThrough:
    """A WSGI app relaying every request to ``backend`` (scheme://host:port[/base]).

    ``strip`` is the prefix the dispatcher matched: removed when the backend
    serves at its root (Placement), kept when it serves under the same prefix
    (Keystone, configured with the public ``/identity`` path).
    """

    def __init__(self, backend: str, timeout: float = 300.0, keep_prefix: bool = False):
        parts = urlsplit(backend)
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.base = parts.path.rstrip("/")
        self.timeout = timeout
        self.keep_prefix = keep_prefix

    def _connection(self) -> http.client.HTTPConnection:
        cls = (http.client.HTTPSConnection if self.scheme == "https"
               else http.client.HTTPConnection)
        return cls(self.netloc, timeout=self.timeout)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if self.keep_prefix:
            path = environ.get("SCRIPT_NAME", "") + path
        target = self.base + path
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
                if name.lower() not in HOP_BY_HOP:
                    headers[name] = value
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            headers["Content-Length"] = str(length)
        conn = self._connection()
        try:
            conn.putrequest(environ["REQUEST_METHOD"], target, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            stream = environ["wsgi.input"]
            remaining = length
            while remaining > 0:
                piece = stream.read(min(CHUNK, remaining))
                if not piece:
                    break
                conn.send(piece)
                remaining -= len(piece)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            LOG.warning("backend %s://%s did not answer: %s", self.scheme, self.netloc, exc)
            body = b'{"error": {"code": 502, "title": "Bad Gateway", ' \
                   b'"message": "The service behind this path did not answer."}}'
            start_response("502 Bad Gateway", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body)))])
            return [body]
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        start_response(f"{resp.status} {resp.reason}", out)
        return _relay(resp, conn)


def _relay(resp: http.client.HTTPResponse, conn: http.client.HTTPConnection
           ) -> Iterator[bytes]:
    try:
        while True:
            piece = resp.read(CHUNK)
            if not piece:
                return
            yield piece
    finally:
        conn.close()
