"""The HTTP server every transcell API is served by, and a path-prefix dispatcher.

The APIs face untrusted clients, so the server is waitress, not the standard
library's ``wsgiref``/``socketserver`` pair. The stdlib server spends a thread
on every open connection, has no header or idle timeout and no cap: a few
thousand clients that open a connection and send half a request line exhaust
it and everything else in the process. waitress reads and writes every
connection from one non-blocking I/O loop (``poll``, so thousands of file
descriptors are fine) and hands a request to a bounded pool of worker threads
only once its headers and body have fully arrived, so a slow client costs a
socket and a buffer, never a worker. It closes connections that stay silent
(``client_socket_timeout``), caps their number and the size of headers and
bodies, and is pure Python with no C extension, which keeps the embedded cloud
a ``pip install``. The request handlers stay synchronous code on threads, as
the design chose.

On top of waitress this module adds a deadline for a request's headers (a
client trickling one byte every few seconds never counts as idle) and a stop
that finishes in bounded time however many connections are open: the I/O loop
itself closes the listening socket and every connection, then the workers get
``shutdown_timeout`` seconds to finish what they are running.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable

from waitress.adjustments import Adjustments
from waitress.buffers import OverflowableBuffer
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import WSGITask

from transcell.wsgi.sizelimit import TOO_LARGE_KEY, BodySizeLimit

LOG = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]

#: descriptors kept free for databases, disks, image chunks and subprocess pipes
_FD_RESERVE = 512


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


class _CappedBuffer(OverflowableBuffer):
    """Keeps at most ``cap`` bytes of a body and drops the rest, remembering that it did."""

    def __init__(self, overflow: int, cap: int):
        super().__init__(overflow)
        self.cap = cap
        self.dropped = False

    def append(self, s):
        if self.dropped or self.__len__() + len(s) > self.cap:
            self.dropped = True
            return
        super().append(s)


class _Parser(HTTPRequestParser):
    """Bodies of size-limited routes are drained, not stored, past the limit.

    waitress reads a whole body before the app runs, so without this a JSON
    route would buffer (to a temp file) up to the upload limit just to answer
    413. Draining rather than closing lets the client finish sending and read
    the 413 instead of a connection reset.
    """

    policy: BodySizeLimit | None = None

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        policy = self.policy
        if policy is not None and self.body_rcv is not None:
            limit = policy.limit_for(self.command, self.path)
            if limit is not None:
                self.body_rcv.buf = _CappedBuffer(self.adj.inbuf_overflow, limit)

    @property
    def body_too_large(self) -> bool:
        buf = getattr(self.body_rcv, "buf", None)
        return isinstance(buf, _CappedBuffer) and buf.dropped


class _Task(WSGITask):
    def get_environment(self):
        environ = super().get_environment()
        if getattr(self.request, "body_too_large", False):
            environ[TOO_LARGE_KEY] = True
        return environ


class _Channel(HTTPChannel):
    """A connection that remembers when the request it is reading began."""

    task_class = _Task

    def parser_class(self, adj):  # waitress calls self.parser_class(self.adj)
        parser = _Parser(adj)
        parser.policy = self.server.body_policy
        return parser

    def received(self, data):
        result = super().received(data)
        parser = self.request
        if parser is not None and not hasattr(parser, "transcell_began"):
            parser.transcell_began = time.time()
        return result


class _Server(TcpWSGIServer):
    channel_class = _Channel
    header_timeout: float = 30.0
    body_policy: BodySizeLimit | None = None
    #: connections taken from the backlog per wake-up of the I/O loop
    accept_batch = 256

    def handle_accept(self):
        # waitress accepts one connection per loop iteration, and every iteration
        # walks all open connections: a burst of N connections would cost O(N^2)
        # before a new client's request is even read. Drain the backlog instead.
        for _ in range(self.accept_batch):
            before = len(self._map)
            if before >= self.adj.connection_limit:
                return
            super().handle_accept()
            if len(self._map) == before:  # backlog empty (or a failed accept)
                return

    def maintenance(self, now):
        # waitress closes connections idle for channel_timeout; a client that
        # keeps sending a byte now and then is never idle, so also close those
        # whose current request has not finished its headers in time.
        super().maintenance(now)
        cutoff = now - self.header_timeout
        for channel in list(self.active_channels.values()):
            parser = channel.request
            if (parser is not None and not channel.requests
                    and not parser.headers_finished
                    and getattr(parser, "transcell_began", now) < cutoff):
                channel.will_close = True


def fd_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_fd_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; returns the new soft limit.

    Each client connection is a descriptor, and the soft limit is often 1024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            LOG.warning("could not raise the open-file limit from %s to %s: %s",
                        soft, target, exc)
    return soft


class HTTPService:
    """Serve a WSGI app on a background thread until stopped.

    Limits come from the ``[wsgi]`` options unless given here. When ``app`` is a
    :class:`BodySizeLimit`, bodies of the routes it limits are drained rather
    than stored past its limit.
    """

    def __init__(self, app: WSGIApp, host: str, port: int, *, threads: int | None = None,
                 connection_limit: int | None = None, client_timeout: float | None = None,
                 header_timeout: float | None = None, max_header_size: int | None = None,
                 max_body_size: int | None = None, shutdown_timeout: float | None = None):
        from transcell.conf import CONF
        opts = CONF.wsgi
        client_timeout = client_timeout or opts.client_socket_timeout
        header_timeout = header_timeout or opts.header_timeout
        wanted = connection_limit or opts.connection_limit
        # accept() failing with EMFILE would spin the I/O loop; stay below the limit
        limit = max(16, min(wanted, fd_limit() - _FD_RESERVE))
        if limit < wanted:
            LOG.warning("serving at most %d connections (wanted %d): the open-file "
                        "limit is %d", limit, wanted, fd_limit())
        self.shutdown_timeout = shutdown_timeout or opts.shutdown_timeout
        adj = Adjustments(
            host=host, port=port,
            threads=threads or opts.threads,
            connection_limit=limit,
            channel_timeout=client_timeout,
            # maintenance runs at most this often; keep it well under the timeouts
            cleanup_interval=max(1, min(client_timeout, header_timeout) // 4),
            asyncore_use_poll=True,
            asyncore_loop_timeout=1,
            backlog=2048,
            max_request_header_size=max_header_size or opts.max_header_size,
            max_request_body_size=max_body_size or opts.max_upload_size,
            expose_tracebacks=False,
            log_socket_errors=False,
            ident="transcell",
            # what links fall back to when no public endpoint is configured (never
            # the client's Host header): the address this server listens on
            server_name=host,
        )
        self._map: dict = {}
        self.server = _Server(app, map=self._map, adj=adj)
        self.server.header_timeout = header_timeout
        if isinstance(app, BodySizeLimit):
            self.server.body_policy = app
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.run()
        except Exception:
            if not self._stopping.is_set():
                LOG.exception("HTTP server loop failed")

    def _close_all(self) -> None:
        """Runs on the I/O loop's own thread: no other thread touches the map meanwhile."""
        for obj in list(self._map.values()):
            if obj is self.server or obj is self.server.trigger:
                continue
            try:
                obj.handle_close()
            except Exception:  # a broken connection must not keep the others open
                LOG.debug("closing a connection failed", exc_info=True)
        # closes the listening socket and the trigger; the map is empty and the loop ends
        self.server.close()

    def stop(self) -> None:
        """Stop listening, drop every connection, end the loop and the workers, in bounded time."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        deadline = time.monotonic() + self.shutdown_timeout
        if self.thread.is_alive():
            try:
                self.server.trigger.pull_trigger(self._close_all)
            except OSError:
                LOG.debug("could not wake the HTTP loop", exc_info=True)
            self.thread.join(max(0.5, min(2.0, deadline - time.monotonic())))
        if self.thread.is_alive() or self._map:
            # the loop is stuck (or never ran): close from here; a racing loop
            # iteration can only fail on a closed socket, and its thread is a daemon
            LOG.warning("HTTP loop did not stop by itself; closing its sockets directly")
            self._close_all()
        self.server.task_dispatcher.shutdown(
            cancel_pending=True, timeout=max(0.1, deadline - time.monotonic()))
