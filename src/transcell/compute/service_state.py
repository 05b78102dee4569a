"""Whether a service is alive, and how the API names and places it.

A service is up while its heartbeat is younger than
``[compute] service_down_time`` and an operator has not forced it down.
Binary names are Nova's ("nova-compute", ...) because the CLI, the SDK and
Tempest filter services by them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.inlist import InList
from transcell.db.session import api_session, cell_session
from transcell.db.types import utcnow

COMPUTE = "nova-compute"
CONDUCTOR = "nova-conductor"
SCHEDULER = "nova-scheduler"

#: Zone of the services that do not host servers (conductor, scheduler).
INTERNAL_ZONE = "internal"

# host_status values (microversion 2.16)
HOST_UP = "UP"
HOST_DOWN = "DOWN"
HOST_MAINTENANCE = "MAINTENANCE"
HOST_UNKNOWN = "UNKNOWN"
HOST_NONE = ""


def _field(service: Any, name: str) -> Any:
    if isinstance(service, dict):
        return service.get(name)
    return getattr(service, name, None)


def last_heartbeat(service: Any) -> dt.datetime | None:
    """The newest sign of life: the heartbeat column, else the row's own timestamps."""
    return (_field(service, "last_seen_up") or _field(service, "updated_at")
            or _field(service, "created_at"))


def updated_time(service: Any) -> dt.datetime | None:
    """What the API reports as ``updated_at``: the later of a row update and a heartbeat."""
    stamps = [s for s in (_field(service, "updated_at"), _field(service, "last_seen_up")) if s]
    return max(stamps) if stamps else None


def is_up(service: Any, now: dt.datetime | None = None) -> bool:
    if _field(service, "forced_down"):
        return False
    beat = last_heartbeat(service)
    if beat is None:
        return False
    if beat.tzinfo is not None:
        beat = beat.astimezone(dt.UTC).replace(tzinfo=None)
    elapsed = abs(((now or utcnow()) - beat).total_seconds())
    return elapsed <= CONF.compute.service_down_time


def zone_of(binary: str, cell: cells.Cell) -> str:
    """One availability zone per cell, named after it; control services are internal."""
    return cell.name if binary == COMPUTE else INTERNAL_ZONE


def compute_service(host: str) -> tuple[cells.Cell, cm.Service] | None:
    """The live nova-compute service row of ``host`` (detached) and its cell, or None."""
    try:
        cell = cells.cell_of_host(host)
    except exception.ComputeHostNotFound:
        return None
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Service).where(cm.Service.host == host,
                                                cm.Service.binary == COMPUTE,
                                                cm.Service.deleted == 0))
    return (cell, row) if row is not None else None


def host_status(host: str | None) -> str:
    """A server's host status as microversion 2.16 shows it."""
    if not host:
        return HOST_NONE
    found = compute_service(host)
    if found is None:
        return HOST_NONE
    return _status_of(found[1])


#: Host mappings and compute services by name, over the names bound at execution.
_MAPPED = InList(lambda among: select(am.HostMapping.host, am.HostMapping.cell_id).where(
    among(am.HostMapping.host)))
_SERVICES = cm.Service.__table__
_COMPUTES = InList(lambda among: select(
    _SERVICES.c.host, _SERVICES.c.forced_down, _SERVICES.c.disabled,
    _SERVICES.c.last_seen_up, _SERVICES.c.updated_at, _SERVICES.c.created_at).where(
    among(_SERVICES.c.host), _SERVICES.c.binary == COMPUTE, _SERVICES.c.deleted == 0))


def host_statuses(hosts: set[str]) -> dict[str, str]:
    """``host_status`` of many hosts in one query of the API database and one per cell,
    so a page of servers does not cost two queries per server (plain rows, not ORM
    objects: a page may name a thousand hosts)."""
    wanted = sorted(h for h in hosts if h)
    by_id = {cell.id: cell for cell in cells.list_cells()}
    by_cell: dict[cells.Cell, list[str]] = {}
    with api_session() as s:
        for start in range(0, len(wanted), 500):
            for host, cell_id in _MAPPED.execute(s, wanted[start:start + 500]):
                if cell_id in by_id:
                    by_cell.setdefault(by_id[cell_id], []).append(host)
    statuses = dict.fromkeys(wanted, HOST_NONE)
    # one clock and one reading of the configuration for the page, as ``is_up`` would
    # read them per host
    now, down_time = utcnow(), CONF.compute.service_down_time
    for cell, names in by_cell.items():
        with cell_session(cell) as s:
            for start in range(0, len(names), 500):
                for host, forced_down, disabled, *stamps in _COMPUTES.execute(
                        s, names[start:start + 500]):
                    statuses[host] = _status(forced_down, disabled, stamps, now, down_time)
    return statuses


def _status(forced_down: Any, disabled: Any, stamps: list, now: dt.datetime,
            down_time: int) -> str:
    """``_status_of`` a service from its columns (``last_seen_up``, ``updated_at``,
    ``created_at``, in ``last_heartbeat``'s order of preference)."""
    if forced_down:
        return HOST_DOWN
    beat = stamps[0] or stamps[1] or stamps[2]
    if beat is None:
        return HOST_UNKNOWN
    if beat.tzinfo is not None:
        beat = beat.astimezone(dt.UTC).replace(tzinfo=None)
    if abs((now - beat).total_seconds()) > down_time:
        return HOST_UNKNOWN
    return HOST_MAINTENANCE if disabled else HOST_UP


def _status_of(service: Any) -> str:
    if _field(service, "forced_down"):
        return HOST_DOWN
    if not is_up(service):
        return HOST_UNKNOWN
    return HOST_MAINTENANCE if _field(service, "disabled") else HOST_UP
