"""/os-services: every cell's services, their state, enabling and deleting them.

Compute services live in their host's cell; the conductor and scheduler rows
live in cell0. Before 2.53 a service is updated by ``PUT
/os-services/{action}`` with host and binary in the body; from 2.53 by its
uuid, because integer ids repeat from one cell to the next.

A cell that is down leaves its services out of the list; from 2.69 its
compute hosts are listed instead by what the API database knows of them
(their host mappings), with status ``UNKNOWN``, as Nova lists them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import webob
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.compute import service_state
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import isotime, utcnow
from transcell.registry import services as registry
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

LOG = logging.getLogger(__name__)

UUID_IDS = "2.53"
#: From this microversion the compute hosts of a cell that is down are listed.
CELL_DOWN = "2.69"

_HOSTNAME = {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[a-zA-Z0-9-._]*$"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}

LEGACY_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"host": _HOSTNAME, "binary": _HOSTNAME, "disabled_reason": _REASON},
    "required": ["host", "binary"],
    "additionalProperties": False,
}
LEGACY_UPDATE_SCHEMA_211: dict[str, Any] = dict(
    LEGACY_UPDATE_SCHEMA,
    properties=dict(LEGACY_UPDATE_SCHEMA["properties"], forced_down=common.BOOLEAN))
UPDATE_SCHEMA_253: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["enabled", "disabled"]},
                   "disabled_reason": _REASON,
                   "forced_down": common.BOOLEAN},
    "additionalProperties": False,
}

#: Migration states after which a move no longer needs its hosts.
_FINISHED_MIGRATIONS = ("confirmed", "reverted", "error", "failed", "completed",
                        "cancelled", "done")


@dataclass(frozen=True)
class Entry:
    cell: cells.Cell
    service: cm.Service


def _read(cell: cells.Cell) -> list[cm.Service]:
    with cell_session(cell) as s:
        return list(s.scalars(select(cm.Service).where(cm.Service.deleted == 0)
                              .order_by(cm.Service.id)))


def all_services() -> list[Entry]:
    """Every service of every cell; a cell that is down fails the read, since what is
    looked for (to update or delete it) may be in that very cell."""
    found = cells.scatter(cells.list_cells(), _read)
    return [Entry(cell, svc) for cell in found for svc in found[cell]]


def _listed(req: webob.Request) -> list[dict[str, Any]]:
    """The bodies of every cell's services, cell by cell; a cell that is down adds a
    minimal body per compute host mapped to it from 2.69, and nothing before."""
    every = cells.list_cells()
    gathered = cells.gather(every, _read)
    partial = api_version(req).matches(CELL_DOWN)
    bodies: list[dict[str, Any]] = []
    for cell in every:
        if cell in gathered.results:
            bodies += [_view(req, Entry(cell, svc)) for svc in gathered.results[cell]]
        elif partial and cell in gathered.down:
            bodies += [{"binary": service_state.COMPUTE, "host": host, "status": "UNKNOWN"}
                       for host in cells.hosts_in_cell(cell)]
    return bodies


def _view(req: webob.Request, entry: Entry) -> dict[str, Any]:
    version = api_version(req)
    svc = entry.service
    body = {
        "binary": svc.binary,
        "host": svc.host,
        "id": svc.uuid if version.matches(UUID_IDS) else svc.id,
        "zone": service_state.zone_of(svc.binary, entry.cell),
        "status": "disabled" if svc.disabled else "enabled",
        "state": "up" if service_state.is_up(svc) else "down",
        "updated_at": isotime(service_state.updated_time(svc)),
        "disabled_reason": svc.disabled_reason,
    }
    if version.matches("2.11"):
        body["forced_down"] = bool(svc.forced_down)
    return body


def index(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-services:list", {})
    host = req.GET.get("host") or ""
    binary = req.GET.get("binary") or ""
    return json_response({"services": [
        body for body in _listed(req)
        if (not host or body["host"] == host) and (not binary or body["binary"] == binary)]})


# -- updates -------------------------------------------------------------------

def _save(entry: Entry, **values: Any) -> cm.Service:
    with cell_session(entry.cell) as s:
        row = s.get(cm.Service, entry.service.id)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.flush()
        return row


def _update_by_host(host: str, binary: str, **values: Any) -> None:
    """The legacy path: find the compute service through the host's mapping."""
    if binary != service_state.COMPUTE:
        raise exception.Invalid(f"Updating a {binary} service is not supported. Only "
                                "nova-compute services can be updated.")
    try:
        cell = cells.cell_of_host(host)
    except exception.ComputeHostNotFound:
        raise exception.NotFound(f"Host '{host}' is not mapped to any cell") from None
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Service).where(cm.Service.host == host,
                                                cm.Service.binary == binary,
                                                cm.Service.deleted == 0))
    if row is None:
        raise exception.NotFound(f"Could not find binary {binary} on host {host}.")
    _save(Entry(cell, row), **values)


def _legacy_update(req: webob.Request, action: str) -> webob.Response:
    version = api_version(req)
    body = read_json(req)
    common.validate(LEGACY_UPDATE_SCHEMA_211 if version.matches("2.11")
                    else LEGACY_UPDATE_SCHEMA, body)
    policy.authorize(context_of(req), "os_compute_api:os-services:update", {})
    actions = {"enable", "disable", "disable-log-reason"}
    if version.matches("2.11"):
        actions.add("force-down")
    if action not in actions:
        raise exception.NotFound("Unknown action")
    host, binary = body["host"], body["binary"]
    if action == "force-down":
        if "forced_down" not in body:
            raise exception.Invalid("Missing forced_down field")
        forced_down = common.is_true(body["forced_down"])
        _update_by_host(host, binary, forced_down=forced_down)
        return json_response({"service": {"host": host, "binary": binary,
                                          "forced_down": forced_down}})
    reason = None
    if action == "disable-log-reason":
        if "disabled_reason" not in body:
            raise exception.Invalid("Missing disabled reason field")
        reason = body["disabled_reason"]
    disabled = action != "enable"
    _update_by_host(host, binary, disabled=disabled, disabled_reason=reason)
    result: dict[str, Any] = {"host": host, "binary": binary,
                              "status": "disabled" if disabled else "enabled"}
    if reason:
        result["disabled_reason"] = reason
    return json_response({"service": result})


def _find(service_id: str, by_uuid: bool) -> Entry:
    if by_uuid:
        match = [e for e in all_services() if e.service.uuid == service_id]
    else:
        match = [e for e in all_services() if e.service.id == int(service_id)]
    if len(match) > 1:
        raise exception.Invalid(f"Service id {service_id} refers to multiple services.")
    if not match:
        raise exception.NotFound(f"Service {service_id} not found.")
    return match[0]


def update(req: webob.Request, service_id: str) -> webob.Response:
    version = api_version(req)
    if not version.matches(UUID_IDS):
        return _legacy_update(req, service_id)
    body = read_json(req)
    common.validate(UPDATE_SCHEMA_253, body)
    if not common.is_uuid_like(service_id):
        raise exception.Invalid(f"Invalid uuid {service_id}")
    policy.authorize(context_of(req), "os_compute_api:os-services:update", {})
    try:
        entry = _find(service_id, by_uuid=True)
    except exception.NotFound:
        raise exception.NotFound(f"Service {service_id} could not be found.") from None
    if entry.service.binary != service_state.COMPUTE:
        raise exception.Invalid(f"Updating a {entry.service.binary} service is not "
                                "supported. Only nova-compute services can be updated.")
    values: dict[str, Any] = {}
    if body.get("status") == "enabled":
        if body.get("disabled_reason"):
            raise exception.Invalid("Specifying 'disabled_reason' with status 'enabled' is "
                                    "invalid.")
        values.update(disabled=False, disabled_reason=None)
    elif body.get("status") == "disabled":
        values.update(disabled=True, disabled_reason=body.get("disabled_reason"))
    if "forced_down" in body:
        values["forced_down"] = common.parse_bool(body["forced_down"])
    if "status" not in body and "forced_down" not in body:
        raise exception.Invalid("No updates were requested. Fields 'status' or "
                                "'forced_down' should be specified.")
    row = _save(entry, **values)
    view = _view(req, Entry(entry.cell, row))
    view["forced_down"] = bool(row.forced_down)
    return json_response({"service": view})


# -- delete ----------------------------------------------------------------------

def _assert_idle(entry: Entry) -> None:
    """A compute host still hosting servers or moves cannot be forgotten."""
    host = entry.service.host
    with cell_session(entry.cell) as s:
        hosting = s.scalar(select(func.count(cm.Instance.id)).where(
            cm.Instance.host == host, cm.Instance.deleted == 0))
    if hosting:
        raise exception.Conflict("Unable to delete compute service that is hosting "
                                 "instances. Migrate or delete the instances first.")

    def moving(cell: cells.Cell) -> int:
        with cell_session(cell) as s:
            return int(s.scalar(select(func.count(cm.Migration.id)).where(
                cm.Migration.deleted == 0,
                cm.Migration.status.not_in(_FINISHED_MIGRATIONS),
                or_(cm.Migration.source_compute == host, cm.Migration.dest_compute == host)))
                or 0)

    if any(cells.scatter(cells.list_cells(include_cell0=False), moving).values()):
        raise exception.Conflict("Unable to delete compute service that has in-progress "
                                 "migrations. Complete the migrations or delete the "
                                 "instances first.")


def _forget_compute_host(entry: Entry) -> None:
    host = entry.service.host
    now = utcnow()
    with cell_session(entry.cell) as s:
        nodes = list(s.scalars(select(cm.ComputeNode).where(cm.ComputeNode.host == host,
                                                            cm.ComputeNode.deleted == 0)))
        for node in nodes:
            node.deleted = node.id
            node.deleted_at = now
    for node in nodes:
        if registry.placement is None:
            break
        try:
            registry.placement.delete_provider(node.uuid)
        except exception.TranscellError as exc:
            LOG.error("Failed to delete resource provider %s of host %s: %s",
                      node.uuid, host, exc)
    with api_session() as s:
        s.execute(sql_delete(am.HostMapping).where(am.HostMapping.host == host))


def delete(req: webob.Request, service_id: str) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-services:delete", {})
    by_uuid = api_version(req).matches(UUID_IDS)
    if by_uuid and not common.is_uuid_like(service_id):
        raise exception.Invalid(f"Invalid uuid {service_id}")
    if not by_uuid:
        try:
            int(service_id)
        except ValueError:
            raise exception.Invalid("Invalid input received: id must be an integer") from None
    entry = _find(service_id, by_uuid)
    if entry.service.binary == service_state.COMPUTE:
        _assert_idle(entry)
        _forget_compute_host(entry)
    with cell_session(entry.cell) as s:
        row = s.get(cm.Service, entry.service.id)
        row.deleted = row.id
        row.deleted_at = utcnow()
    return empty_response(204)
