"""/os-hosts (until 2.43, when os-services and os-hypervisors replaced it): every
service's host and zone, one compute host's resources with what each project's
servers on it take, and the host's enable/disable switch.

A host's zone is its cell's (``service_state.zone_of``), so the list reads
as the availability zones do. Maintenance mode and the host power actions
(reboot, shutdown, startup) are the virt driver's, and the fake driver has
none: once the caller's rights and the host are checked they are refused
with 400 and the reason (Nova answers 501; the API here keeps 5xx for its
own failures, as with trusted image certificates).
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.services import all_services
from transcell.compute import service_state
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.wsgi.app import context_of, json_response, read_json

GONE = "2.43"

_SWITCH = {"type": "string", "enum": ["enable", "disable", "Enable", "Disable", "ENABLE",
                                      "DISABLE"]}
UPDATE_SCHEMA = {"type": "object",
                 "properties": {"status": _SWITCH, "maintenance_mode": _SWITCH},
                 "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
                 "additionalProperties": False}


class NotImplementedByDriver(exception.Invalid):
    msg_fmt = "Host %(action)s is not supported: the virt driver does not implement it."


def _require_old(req: webob.Request) -> None:
    if api_version(req).matches(GONE):
        raise exception.NotFound("The resource could not be found.")


def index(req: webob.Request) -> webob.Response:
    _require_old(req)
    policy.authorize(context_of(req), "os_compute_api:os-hosts:list", {})
    zone = req.GET.get("zone")
    hosts = []
    for entry in all_services():
        svc = entry.service
        where = service_state.zone_of(svc.binary, entry.cell)
        if zone and where != zone:
            continue
        hosts.append({"host_name": svc.host, "service": svc.topic, "zone": where})
    return json_response({"hosts": hosts})


def _resource(host: str, project: str, cpu: int, memory_mb: int, disk_gb: int
              ) -> dict[str, Any]:
    return {"resource": {"host": host, "project": project, "cpu": cpu,
                         "memory_mb": memory_mb, "disk_gb": disk_gb}}


def show(req: webob.Request, host_name: str) -> webob.Response:
    """(total), (used_now) from the node, (used_max) and each project from the servers."""
    _require_old(req)
    policy.authorize(context_of(req), "os_compute_api:os-hosts:show", {})
    try:
        cell = cells.cell_of_host(host_name)
    except exception.NotFound:
        raise exception.NotFound(f"Compute host {host_name} could not be found.") from None
    with cell_session(cell) as s:
        node = s.scalar(select(cm.ComputeNode).where(cm.ComputeNode.host == host_name,
                                                     cm.ComputeNode.deleted == 0)
                        .order_by(cm.ComputeNode.id))
        servers = s.scalars(select(cm.Instance).where(
            cm.Instance.host == host_name, cm.Instance.deleted == 0,
            cm.Instance.hidden.is_(False)).order_by(cm.Instance.id)).all()
    if node is None:
        raise exception.NotFound(f"Compute host {host_name} could not be found.")
    resources = [
        _resource(host_name, "(total)", node.vcpus, node.memory_mb, node.local_gb),
        _resource(host_name, "(used_now)", node.vcpus_used, node.memory_mb_used,
                  node.local_gb_used),
    ]
    per_project: dict[str, list[int]] = {}
    totals = [0, 0, 0]
    for inst in servers:
        took = (inst.vcpus or 0, inst.memory_mb or 0,
                (inst.root_gb or 0) + (inst.ephemeral_gb or 0))
        sums = per_project.setdefault(inst.project_id, [0, 0, 0])
        for i, amount in enumerate(took):
            sums[i] += amount
            totals[i] += amount
    resources.append(_resource(host_name, "(used_max)", *totals))
    resources += [_resource(host_name, project, *sums)
                  for project, sums in per_project.items()]
    return json_response({"host": resources})


def _compute_service(host_name: str) -> tuple[cells.Cell, cm.Service]:
    try:
        cell = cells.cell_of_host(host_name)
    except exception.NotFound:
        raise exception.NotFound(f"Compute host {host_name} could not be found.") from None
    with cell_session(cell) as s:
        service = s.scalar(select(cm.Service).where(
            cm.Service.host == host_name, cm.Service.binary == service_state.COMPUTE,
            cm.Service.deleted == 0))
    if service is None:
        raise exception.NotFound(f"Compute host {host_name} could not be found.")
    return cell, service


def update(req: webob.Request, host_name: str) -> webob.Response:
    """``status`` enables or disables the host's compute service (the scheduler stops
    or resumes choosing it), as ``os-services`` would; ``maintenance_mode`` is refused (400)."""
    _require_old(req)
    body = read_json(req)
    common.validate(UPDATE_SCHEMA, body)
    policy.authorize(context_of(req), "os_compute_api:os-hosts:update", {})
    cell, service = _compute_service(host_name)
    if "maintenance_mode" in body:
        raise NotImplementedByDriver(action="maintenance mode")
    enabled = body["status"].lower() == "enable"
    with cell_session(cell) as s:
        row = s.get(cm.Service, service.id)
        row.disabled = not enabled
        row.disabled_reason = None
    return json_response({"host": host_name, "status": "enabled" if enabled else "disabled"})


def _power(req: webob.Request, host_name: str, rule: str, action: str) -> webob.Response:
    _require_old(req)
    policy.authorize(context_of(req), rule, {})
    _compute_service(host_name)
    raise NotImplementedByDriver(action=action)


def reboot(req: webob.Request, host_name: str) -> webob.Response:
    return _power(req, host_name, "os_compute_api:os-hosts:reboot", "reboot")


def shutdown(req: webob.Request, host_name: str) -> webob.Response:
    return _power(req, host_name, "os_compute_api:os-hosts:shutdown", "shutdown")


def startup(req: webob.Request, host_name: str) -> webob.Response:
    return _power(req, host_name, "os_compute_api:os-hosts:start", "startup")
