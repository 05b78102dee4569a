"""A threaded WSGI server and a path-prefix dispatcher.

The standard library server with a thread per request matches the design's
choice of threads and synchronous I/O; it keeps the embedded cloud free of a
web-server dependency. Distributed deployments can run the same WSGI apps
under any production server.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

LOG = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("%s - %s", self.address_string(), format % args)


class PrefixDispatcher:
    """Send each request to the app mounted at the longest matching prefix."""

    def __init__(self, mounts: dict[str, WSGIApp], root: WSGIApp | None = None):
        self.mounts = sorted(mounts.items(), key=lambda item: -len(item[0]))
        self.root = root

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                environ = dict(environ)
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app(environ, start_response)
        if self.root is not None:
            return self.root(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]


class HTTPService:
    """Serve a WSGI app on a background thread until stopped."""

    def __init__(self, app: WSGIApp, host: str, port: int):
        self.server = make_server(host, port, app, server_class=_ThreadingServer,
                                  handler_class=_QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
