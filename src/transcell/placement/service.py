"""Placement as a service of its own: ``transcell placement --config-file F``.

Serves the real openstack-placement WSGI app (built exactly as the embedded
cloud builds it, on ``[placement] database_connection``) with transcell's HTTP
server on ``[placement] bind_host``/``bind_port``. Every other service reaches
it by ``[placement] url``.

With ``[identity] auth_strategy = keystone``, keystonemiddleware's auth_token
filter (configured by the file's ``[keystone_authtoken]``) validates each
token against Keystone; only the version document at ``/`` is public, as in
Placement's own deployment. The confirmed identity is then handed to Placement
in the form its noauth2 layer reads, and only admin and service roles get
through, which is what Placement's default policy asks for. Otherwise Placement
runs with noauth2, trusting ``user:project`` tokens, for tests and one-machine
setups only.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable

from transcell.conf import CONF

LOG = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]


def keystone_protected(app: WSGIApp, authtoken_conf: dict | None = None) -> WSGIApp:
    """``app`` (Placement under noauth2) behind keystonemiddleware's auth_token.

    ``authtoken_conf`` is what the filter reads its settings from; by default the
    ``[keystone_authtoken]`` section of the loaded configuration.
    """
    from keystonemiddleware import auth_token

    from transcell.identity.auth import HeaderAuthenticator
    from transcell.placement.embedded import ProtectedPlacement

    inner = ProtectedPlacement(app, HeaderAuthenticator())
    settings = dict(authtoken_conf) if authtoken_conf is not None else {
        "oslo_config_config": CONF}
    # Decisions are not delayed: nothing but a confirmed identity reaches Placement.
    settings["delay_auth_decision"] = False
    guarded = auth_token.AuthProtocol(inner, settings)

    def app_with_public_root(environ, start_response):
        # The version document is how clients discover microversions, before
        # they hold a token (Placement's own deployment exempts it the same way).
        if environ.get("PATH_INFO", "") in ("", "/"):
            return inner(environ, start_response)
        return guarded(environ, start_response)

    return app_with_public_root


def build_app() -> WSGIApp:
    """The Placement app this process serves, its schema migrated if need be."""
    from transcell.placement import embedded

    app = embedded.load_app(embedded.database_url())
    if CONF.identity.auth_strategy == "keystone":
        return keystone_protected(app)
    LOG.warning("Placement is serving with noauth2: any caller may claim any identity")
    return app


def serve() -> int:
    """Serve Placement until SIGTERM or SIGINT (configuration already loaded)."""
    from transcell.lifecycle import StopSignals, serve_until_stopped
    from transcell.wsgi.server import HTTPService, raise_fd_limit

    raise_fd_limit()
    app = build_app()
    http = HTTPService(app, CONF.placement.bind_host, CONF.placement.bind_port,
                       max_body_size=CONF.wsgi.max_request_body_size)
    signals = StopSignals()
    http.start()
    # Placement commits every change before it answers, so a stop cut short by
    # the watchdog loses nothing that was acknowledged.
    return serve_until_stopped(
        f"transcell placement: http://{CONF.placement.bind_host}:{http.port}", http.stop,
        signals)


def main(argv: list[str] | None = None) -> int:
    """``transcell placement`` on its own: ``--config-file F [--debug]``."""
    parser = argparse.ArgumentParser(prog="transcell placement", description=__doc__.split(
        "\n", 1)[0])
    parser.add_argument("--config-file", action="append", default=[],
                        help="transcell configuration file (may be repeated)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    CONF([], project="transcell", default_config_files=args.config_file)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve()


if __name__ == "__main__":
    import sys

    sys.exit(main())
