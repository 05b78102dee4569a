"""What every service process does the same way: its clients, its service row,
and running until it is told to stop."""

from __future__ import annotations

import logging
import os
import threading
import uuid as uuidlib
from collections.abc import Callable

from sqlalchemy import select

from transcell.cell import Cell
from transcell.conf import CONF
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.registry import services

LOG = logging.getLogger(__name__)


def own_cell() -> Cell:
    """The cell a compute host or cell conductor belongs to, from its own config.

    Such a service never reads the API database, so its cell's database and
    bus (with that cell's credentials) come from ``[cell]``, not from a mapping.
    """
    missing = [name for name in ("name", "uuid", "database_connection", "transport_url")
               if not getattr(CONF.cell, name)]
    if missing:
        raise SystemExit(f"[cell] {', '.join(missing)} must be set for a service of a cell")
    return Cell(0, CONF.cell.uuid, CONF.cell.name, CONF.cell.database_connection,
                CONF.cell.transport_url)


#: Times a request whose connection is refused is sent again, 0.5 s, 1 s, 2 s ... apart
#: (about half a minute in all): long enough for a service manager to start a killed API
#: again, and only ever for a request that never reached a server.
CONNECT_RETRIES = 6


class ReconnectingSession:
    """A keystoneauth session that rides out a restart of the service it calls."""

    def __init__(self, session):
        self._session = session

    def request(self, url, method, **kwargs):
        kwargs.setdefault("connect_retries", CONNECT_RETRIES)
        return self._session.request(url, method, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


def service_session():
    """A keystoneauth session of this service's own user (``[service_auth]``).

    Its token is fetched now, at start: a password login costs Keystone a slow
    hash on purpose, and the first request of a move should not pay for it.
    """
    from transcell import service_auth
    session = service_auth.session()
    try:
        session.get_token()
    except Exception as exc:  # Keystone not up yet: the first request logs in instead
        LOG.warning("could not log in to Keystone yet: %s", exc)
    return session


def use_remote_placement() -> None:
    from transcell.placement import client
    if not CONF.placement.url:
        raise SystemExit("[placement] url must be set: Placement is a service of its own")
    services.placement = client.PlacementClient(client.SessionTransport(
        ReconnectingSession(service_session()), CONF.placement.url))


def use_remote_services() -> None:
    """Reach image, network, volume and Placement over HTTP only, never by import."""
    from transcell.image.http_client import HTTPImageClient
    from transcell.network.http_client import HTTPNetworkAPI
    from transcell.volume.http_client import VolumeHTTPClient
    for group in ("image", "network", "volume"):
        if not getattr(CONF, group).api_url:
            raise SystemExit(f"[{group}] api_url must be set for a service of its own")
    session = ReconnectingSession(service_session())
    services.image = HTTPImageClient(session, CONF.image.api_url,
                                     connect_retries=CONNECT_RETRIES)
    services.network = HTTPNetworkAPI(session, CONF.network.api_url)
    services.volume = VolumeHTTPClient(session, CONF.volume.api_url)
    use_remote_placement()


class ServiceRow:
    """This process's row in ``os-services``, kept alive by a heartbeat.

    Conductors and schedulers report into cell0 as Nova's do; a compute host's
    row is its resource tracker's business.
    """

    def __init__(self, cell: Cell, binary: str, host: str):
        self.cell, self.binary, self.host = cell, binary, host
        self._stop = threading.Event()

    def start(self) -> None:
        with cell_session(self.cell) as s:
            svc = s.scalar(select(cm.Service).where(cm.Service.binary == self.binary,
                                                    cm.Service.host == self.host,
                                                    cm.Service.deleted == 0))
            if svc is None:
                svc = cm.Service(uuid=str(uuidlib.uuid4()), host=self.host,
                                 binary=self.binary, topic=self.binary.split("-", 1)[1])
                s.add(svc)
            svc.last_seen_up = utcnow()
        threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.binary}"
                         ).start()

    def _beat(self) -> None:
        while not self._stop.wait(CONF.compute.report_interval):
            try:
                with cell_session(self.cell) as s:
                    svc = s.scalar(select(cm.Service).where(
                        cm.Service.binary == self.binary, cm.Service.host == self.host,
                        cm.Service.deleted == 0))
                    if svc is not None:
                        svc.last_seen_up = utcnow()
                        svc.report_count += 1
            except Exception:
                LOG.exception("heartbeat of %s failed", self.binary)

    def stop(self) -> None:
        self._stop.set()


def run_until_signalled(name: str, stop: Callable[[], None]) -> int:
    """Say ``ready``, run until SIGTERM or SIGINT, then stop and close every bus."""
    from transcell.lifecycle import serve_until_stopped
    from transcell.rpc.bus import reset

    def stop_all() -> None:
        try:
            stop()
        finally:
            reset()

    return serve_until_stopped(f"transcell {name}: ready (pid {os.getpid()})", stop_all)
