"""Serve the real Keystone's API with waitress, optionally below a path prefix.

Run as ``python -m transcell.deploy.keystone_wsgi --config-file keystone.conf
--port N [--prefix /identity]``; ``transcell.deploy.keystone.serve_command``
builds that line. Keystone ships its API as a WSGI application
(``keystone.server.flask.core.initialize_application``) and leaves serving it
to the operator; waitress is the server transcell's own APIs use, so the
distributed layout needs no second HTTP server.

This module must not import ``transcell.conf``: Keystone's options live on the
same process-global oslo.config object and two of them collide with
transcell's. It therefore uses waitress directly rather than
``transcell.wsgi.server.HTTPService``, which reads its limits from
transcell's options.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[..., Iterable[bytes]]


class PrefixMount:
    """Serve ``app`` below ``prefix``: the prefix moves from PATH_INFO to SCRIPT_NAME,
    which Keystone puts in every link it returns; other paths are 404."""

    def __init__(self, app: WSGIApp, prefix: str):
        self.app = app
        self.prefix = "/" + prefix.strip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path = environ.get("PATH_INFO", "") or "/"
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ = dict(environ)
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix):]
            return self.app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]


def load_app(conf_file: str) -> WSGIApp:
    """Keystone's public application configured from ``conf_file`` only.

    Keystone parses ``sys.argv`` itself when it reads its configuration, so
    the command line is replaced by one that names just the config file.
    """
    sys.argv = [sys.argv[0], "--config-file", conf_file]
    from keystone.server.flask import core

    return core.initialize_application(name="public", config_files=[conf_file])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="",
                        help="serve below this path, e.g. /identity (default: at the root)")
    parser.add_argument("--threads", type=int, default=8)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = "/" + args.prefix.strip("/") if args.prefix.strip("/") else ""
    app = load_app(args.config_file)
    if prefix:
        app = PrefixMount(app, prefix)

    from waitress import create_server

    server = create_server(
        app, host=args.host, port=args.port, threads=args.threads,
        channel_timeout=60, connection_limit=1000, max_request_header_size=64 * 1024,
        max_request_body_size=1024 * 1024, expose_tracebacks=False, ident="keystone",
        asyncore_use_poll=True, clear_untrusted_proxy_headers=True)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # the launcher waits for this line (or polls the URL) to know the port is bound
    print(f"keystone listening on http://{args.host}:{server.effective_port}{prefix}",
          flush=True)
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
