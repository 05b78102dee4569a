"""The API tier as its own process: compute, image, network and volume APIs on one port.

The image store and the network and volume databases belong to this process
(their services are mounted here); Keystone and Placement run as services of their
own and are passed through under ``/identity`` and ``/placement`` so clients
keep the one endpoint of the embedded layout. Every API sits behind
keystonemiddleware's auth_token filter; the roles it confirms drive policy
exactly as the built-in identity's do.
"""

from __future__ import annotations

import configparser
import logging

from transcell import conf
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.registry import services
from transcell.rpc.bus import get_bus
from transcell.service import common
from transcell.wsgi.app import PUBLIC_ENDPOINT_KEY
from transcell.wsgi.server import HTTPService, PrefixDispatcher

LOG = logging.getLogger(__name__)

#: The in-process bus between the compute API and the network service mounted
#: beside it. Hosts and conductors reach the network service over HTTP instead.
LOCAL_NETWORK_BUS = "inproc://api-network"


def authtoken_settings(config_files: list[str]) -> dict[str, str]:
    """The ``[keystone_authtoken]`` section, as paste would hand it to the filter."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(config_files)
    if not parser.has_section("keystone_authtoken"):
        raise SystemExit("[keystone_authtoken] must be configured for the API service")
    defaults = parser.defaults()
    return {key: value for key, value in parser.items("keystone_authtoken", raw=True)
            if key not in defaults}


def protect(app, settings: dict[str, str]):
    """auth_token in front of one API, deciding nothing itself.

    The decision is delayed to the API so that its version documents stay
    public and a refused request gets that API's own error body; auth_token
    still strips identity headers a client sent and marks what it confirmed.
    """
    from keystonemiddleware import auth_token
    return auth_token.AuthProtocol(app, {**settings, "delay_auth_decision": "true"})


class APIService:
    def __init__(self, config_files: list[str]):
        self.config_files = config_files
        self.http: HTTPService | None = None

    def setup(self) -> None:
        from transcell.compute.flavor_defaults import ensure_default_flavors
        from transcell.image.client import ImageClient
        from transcell.image.default import ensure_default_image
        from transcell.image.service import ImageService
        from transcell.image.store import ChunkStore
        from transcell.network.rpcapi import NetworkAPI
        from transcell.network.service import NetworkService
        from transcell.notifications import TOPIC as NOTIFICATIONS
        from transcell.notifications import NotificationLog

        ctx = RequestContext.admin()
        common.use_remote_placement()
        self.image_service = ImageService(ChunkStore(conf.image_store_dir(),
                                                     CONF.image.chunk_size))
        services.image = ImageClient(self.image_service)
        ensure_default_image(self.image_service, ctx)
        self.network_service = NetworkService(conf.network_database_url())
        local = get_bus(LOCAL_NETWORK_BUS)
        local.serve("network", self.network_service)
        services.network = NetworkAPI(local)
        self.network_service.ensure_default_network(ctx)
        from transcell.volume.client import VolumeClient
        from transcell.volume.service import VolumeService
        self.volume_service = VolumeService(conf.volume_database_url())
        self.volume_service.recover(ctx)
        services.volume = VolumeClient(self.volume_service)
        ensure_default_flavors()
        self.bus = get_bus(CONF.rpc.transport_url)
        self.bus.serve(NOTIFICATIONS, NotificationLog(conf.state_path("notifications.log")),
                       server=CONF.host)

    def wsgi_app(self):
        from transcell.api.compute.app import make_app as compute_app
        from transcell.api.image import make_app as image_app
        from transcell.api.network import make_app as network_app
        from transcell.api.volume import make_app as volume_app
        from transcell.cloud import _root_app, _size_limited
        from transcell.identity.auth import HeaderAuthenticator
        from transcell.wsgi.proxy import PassThrough

        settings = authtoken_settings(self.config_files)
        authenticate = HeaderAuthenticator()
        apps = {
            "/compute": protect(compute_app(authenticate), settings),
            "/image": protect(image_app(self.image_service, authenticate), settings),
            "/network": protect(network_app(self.network_service, authenticate), settings),
            "/volume": protect(volume_app(self.volume_service, authenticate), settings),
        }
        if CONF.api.identity_backend:
            apps["/identity"] = PassThrough(CONF.api.identity_backend, keep_prefix=True)
        if CONF.api.placement_backend:
            apps["/placement"] = PassThrough(CONF.api.placement_backend)
        dispatcher = PrefixDispatcher(apps, root=_root_app)
        endpoint = self.public_endpoint

        def app(environ, start_response):
            environ[PUBLIC_ENDPOINT_KEY] = endpoint
            return dispatcher(environ, start_response)

        return _size_limited(app)

    @property
    def public_endpoint(self) -> str:
        return (CONF.public_endpoint or f"http://{CONF.bind_host}:{CONF.bind_port}").rstrip("/")

    def serve(self) -> None:
        self.http = HTTPService(self.wsgi_app(), CONF.bind_host, CONF.bind_port)
        self.http.start()

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()


def run_api(config_files: list[str]) -> int:
    from transcell.wsgi.server import raise_fd_limit
    raise_fd_limit()
    service = APIService(config_files)
    service.setup()
    service.serve()
    return common.run_until_signalled("api", service.stop)
