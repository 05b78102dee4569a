"""The embedded cloud: every service of transcell in one process.

The services are wired exactly as in a distributed deployment, through the
bus and the service APIs; only the transports are in-process.
"""

from __future__ import annotations

import configparser
import io
import logging
import os
import threading
import uuid as uuidlib

import yaml
from sqlalchemy import select

from transcell import bootstrap, conf, statefiles
from transcell import cell as cells
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.registry import services
from transcell.rpc.bus import get_bus
from transcell.wsgi.app import PUBLIC_ENDPOINT_KEY
from transcell.wsgi.server import HTTPService, PrefixDispatcher

LOG = logging.getLogger(__name__)


def _placement_error(code: int, message: str) -> dict:
    """Placement's error body, as its own webob faults word it."""
    return {"errors": [{"status": code, "title": "Request Entity Too Large",
                        "detail": message, "code": "placement.undefined_code"}]}


def _size_limited(app):
    """The JSON body limit in front of every API, worded in each API's envelope.

    Image data uploads are exempt: their bodies are disk images, streamed to the
    store, and bounded by ``[wsgi] max_upload_size`` in the server instead; image
    chunks and chunk-list commits have limits of their own (``body_limits``).
    """
    from transcell.api.compute.app import nova_fault
    from transcell.api.identity.app import format_error as keystone_error
    from transcell.api.image.app import glance_error
    from transcell.api.image.chunks import body_limits as image_body_limits
    from transcell.api.network.faults import format_error as neutron_error
    from transcell.api.volume.faults import cinder_fault
    from transcell.wsgi.sizelimit import BodySizeLimit

    return BodySizeLimit(app, CONF.wsgi.max_request_body_size, {
        "/compute": nova_fault, "/image": glance_error, "/network": neutron_error,
        "/volume": cinder_fault, "/identity": keystone_error,
        "/placement": _placement_error,
    }, exempt=image_body_limits("/image"))


def _root_app(environ, start_response):
    start_response("300 Multiple Choices", [("Content-Type", "application/json")])
    return [b'{"choices": ["/identity", "/compute", "/image", "/network", "/volume", '
            b'"/placement"]}']


class EmbeddedCloud:
    def __init__(self, state_dir: str, port: int = 8774, host: str = "127.0.0.1"):
        self.state_dir = os.path.abspath(state_dir)
        self.port = port
        self.host = host
        self.http: HTTPService | None = None
        self.computes: dict[str, object] = {}
        self._stopped = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # bootstrap -------------------------------------------------------------
    def setup(self) -> None:
        CONF.set_override("state_dir", self.state_dir)
        statefiles.private_dir(self.state_dir)
        bootstrap.sync_databases()
        bootstrap.ensure_host_mappings()
        self._setup_global_services()
        self._start_services()

    def _setup_global_services(self) -> None:
        from transcell.identity import auth as id_auth
        from transcell.identity import store as id_store
        from transcell.image.client import ImageClient
        from transcell.image.default import ensure_default_image
        from transcell.image.service import ImageService
        from transcell.image.store import ChunkStore
        from transcell.network.rpcapi import NetworkAPI
        from transcell.network.service import NetworkService
        from transcell.placement import client as pclient
        from transcell.placement import embedded

        ctx = RequestContext.admin()
        self.identity = id_store.bootstrap(self.state_dir)
        self.authenticate = id_auth.authenticator_for(self.identity)
        self.placement_app = embedded.load_app(embedded.database_url())
        services.placement = (pclient.from_config() if CONF.placement.url
                              else pclient.PlacementClient(
                                  pclient.DirectTransport(self.placement_app)))
        self.image_service = ImageService(ChunkStore(conf.image_store_dir(),
                                                     CONF.image.chunk_size))
        services.image = ImageClient(self.image_service)
        self.default_image = ensure_default_image(self.image_service, ctx)
        self.network_service = NetworkService(conf.network_database_url())
        api_bus = get_bus(CONF.rpc.transport_url)
        api_bus.serve("network", self.network_service)
        services.network = NetworkAPI(api_bus)
        self.network_service.ensure_default_network(ctx)
        from transcell.volume.client import VolumeClient
        from transcell.volume.service import VolumeService
        self.volume_service = VolumeService(conf.volume_database_url())
        self.volume_service.recover(ctx)
        services.volume = VolumeClient(self.volume_service)
        from transcell.compute.flavor_defaults import ensure_default_flavors
        ensure_default_flavors()

    def _start_services(self) -> None:
        from transcell.compute.manager import ComputeManager
        from transcell.compute.rpcapi import topic_for
        from transcell.compute.virt.fake import FakeDriver
        from transcell.conductor.cell import TOPIC as CELL_CONDUCTOR
        from transcell.conductor.cell import CellConductorManager
        from transcell.conductor.manager import ConductorManager
        from transcell.notifications import TOPIC as NOTIFICATIONS
        from transcell.notifications import NotificationLog
        from transcell.scheduler.manager import SchedulerManager

        api_bus = get_bus(CONF.rpc.transport_url)
        api_bus.serve(NOTIFICATIONS, NotificationLog(conf.state_path("notifications.log")))
        api_bus.serve("scheduler", SchedulerManager())
        self.conductor = ConductorManager()
        api_bus.serve("conductor", self.conductor)
        self._register_control_services()
        for cell in cells.list_cells(include_cell0=False):
            get_bus(cell.transport_url).serve(CELL_CONDUCTOR, CellConductorManager(cell))
            for host in bootstrap.host_names(cell.name):
                driver = FakeDriver.for_host(host)
                manager = ComputeManager(host, cell, driver, bootstrap.cell_traits(cell.name))
                manager.init_host()
                get_bus(cell.transport_url).serve(topic_for(host), manager)
                manager.start_periodic()
                self.computes[host] = manager
        # Only now can moves a previous process left unfinished be resumed: they
        # need the compute hosts of both cells.
        self.conductor.moves.start_periodic()
        from transcell.drain.runner import DrainRunner
        self.drains = DrainRunner()
        self.drains.start_periodic()

    def _register_control_services(self) -> None:
        """Conductor and scheduler report into cell0, where ``os-services`` finds them."""
        with cell_session(cells.cell0()) as s:
            for binary in ("nova-conductor", "nova-scheduler"):
                svc = s.scalar(select(cm.Service).where(cm.Service.binary == binary,
                                                        cm.Service.deleted == 0))
                if svc is None:
                    svc = cm.Service(uuid=str(uuidlib.uuid4()), host="control",
                                     binary=binary, topic=binary.split("-", 1)[1])
                    s.add(svc)
                svc.last_seen_up = utcnow()
        threading.Thread(target=self._control_heartbeat, daemon=True,
                         name="control-heartbeat").start()

    def _control_heartbeat(self) -> None:
        while not self._stopped.wait(CONF.compute.report_interval):
            try:
                with cell_session(cells.cell0()) as s:
                    for svc in s.scalars(select(cm.Service).where(cm.Service.host == "control")):
                        svc.last_seen_up = utcnow()
                        svc.report_count += 1
            except Exception:
                LOG.exception("control heartbeat failed")

    # HTTP ------------------------------------------------------------------
    def wsgi_app(self):
        from transcell.api.compute.app import make_app as compute_app
        from transcell.api.identity.app import make_app as identity_app
        from transcell.api.image import make_app as image_app
        from transcell.api.network import make_app as network_app
        from transcell.api.volume import make_app as volume_app
        from transcell.placement.embedded import ProtectedPlacement

        dispatcher = PrefixDispatcher({
            "/identity": identity_app(self.identity, self.catalog),
            "/compute": compute_app(self.authenticate),
            "/image": image_app(self.image_service, self.authenticate),
            "/network": network_app(self.network_service, self.authenticate),
            "/volume": volume_app(self.volume_service, self.authenticate),
            "/placement": ProtectedPlacement(self.placement_app, self.authenticate),
        }, root=_root_app)

        def app(environ, start_response):
            # read per request: the port is known only once the server is bound
            environ[PUBLIC_ENDPOINT_KEY] = self.public_endpoint
            return dispatcher(environ, start_response)

        return app

    @property
    def public_endpoint(self) -> str:
        """Where clients reach this cloud: configured, or the address it listens on."""
        return (CONF.public_endpoint or self.base_url).rstrip("/")

    @staticmethod
    def catalog(base_url: str) -> list[dict]:
        """Endpoints under ``base_url``, the public endpoint (never the Host header)."""
        from transcell.identity.catalog import build_catalog
        return build_catalog(base_url, CONF.region_name)

    def serve(self) -> None:
        self.http = HTTPService(_size_limited(self.wsgi_app()), self.host, self.port)
        self.port = self.http.port
        self.http.start()
        self._write_client_files()

    def _write_client_files(self) -> None:
        from transcell.identity.store import clouds_yaml
        path = os.path.join(self.state_dir, "clouds.yaml")
        data = clouds_yaml(self.identity, f"{self.base_url}/identity")
        # the admin password is inside: a fresh 0600 file, never a reused temp file
        statefiles.write_atomic(path, yaml.safe_dump(data, default_flow_style=False))
        self._write_config()

    def _write_config(self) -> None:
        """Record where this cloud runs in STATE/transcell.conf, keeping every other option.

        The operator commands read this file; options an operator put there
        (``[conductor]``, ``[oslo_policy]``...) stay for the next start.
        """
        path = os.path.join(self.state_dir, "transcell.conf")
        config = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            config.read(path)
        except configparser.Error as exc:
            LOG.warning("%s could not be parsed (%s); writing it afresh", path, exc)
            config = configparser.ConfigParser(interpolation=None)
        config["DEFAULT"].update({"state_dir": self.state_dir, "bind_host": self.host,
                                  "bind_port": str(self.port)})
        if not config.has_section("embedded"):
            config.add_section("embedded")
        config["embedded"].update({"cells": str(CONF.embedded.cells),
                                   "hosts_per_cell": str(CONF.embedded.hosts_per_cell)})
        text = io.StringIO()
        config.write(text)
        statefiles.write_atomic(path, text.getvalue())

    def stop(self) -> None:
        # the API first: no request is accepted into services that are stopping,
        # and its connections (however many) are closed in bounded time
        if self.http is not None:
            self.http.stop()
        self._stopped.set()
        for manager in self.computes.values():
            manager.stop()
        if getattr(self, "conductor", None) is not None:
            self.conductor.moves.stop()
        if getattr(self, "drains", None) is not None:
            self.drains.stop()
