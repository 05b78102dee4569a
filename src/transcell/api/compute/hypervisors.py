"""/os-hypervisors: the compute nodes of every cell, with their service's state.

Cell databases each number their compute nodes from 1, so below 2.53 the
integer ids of two cells can collide, exactly as they do in a multi-cell Nova;
2.53 switches to the node uuids, which are unique.

2.88 leaves out of the bodies the usage figures that Placement is the source
of truth for (vcpus, memory, disk and their use, workload, ``cpu_info``),
answers 404 for ``/os-hypervisors/statistics`` and ``/{id}/uptime``, and
shows the uptime in the show body instead.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

import webob
from sqlalchemy import func, select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.compute import service_state
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.wsgi.app import context_of, json_response

UUID_IDS = "2.53"
#: From 2.88 usage figures leave the bodies and the uptime joins the show body.
NO_USAGE = "2.88"
_QUERY_253 = ("limit", "marker", "hypervisor_hostname_pattern", "with_servers")


@dataclass(frozen=True)
class Node:
    """A compute node with what the API shows about it, read in one cell session."""

    cell: cells.Cell
    node: cm.ComputeNode
    service: cm.Service
    workload: int


def _read(cell: cells.Cell) -> list[Node]:
    with cell_session(cell) as s:
        services = {svc.host: svc for svc in s.scalars(select(cm.Service).where(
            cm.Service.binary == service_state.COMPUTE, cm.Service.deleted == 0))}
        busy = dict(s.execute(select(cm.Instance.host, func.count(cm.Instance.id)).where(
            cm.Instance.deleted == 0, cm.Instance.hidden.is_(False),
            cm.Instance.task_state.is_not(None)).group_by(cm.Instance.host)).all())
        nodes = s.scalars(select(cm.ComputeNode).where(cm.ComputeNode.deleted == 0)
                          .order_by(cm.ComputeNode.id)).all()
        # A node whose service was deleted is skipped, as Nova skips it.
        return [Node(cell, n, services[n.host], int(busy.get(n.host, 0)))
                for n in nodes if n.host in services]


def all_nodes() -> list[Node]:
    """Every cell's nodes (cell0 has none), in cell order then node id."""
    found = cells.scatter(cells.list_cells(include_cell0=False), _read)
    return [node for cell in sorted(found, key=lambda c: c.id) for node in found[cell]]


def _servers(node: Node) -> list[dict[str, str]]:
    with cell_session(node.cell) as s:
        rows = s.scalars(select(cm.Instance).where(
            cm.Instance.host == node.node.host, cm.Instance.deleted == 0,
            cm.Instance.hidden.is_(False)).order_by(cm.Instance.id)).all()
        return [{"name": f"instance-{r.id:08x}", "uuid": r.uuid} for r in rows
                if r.node in (None, node.node.hypervisor_hostname)]


def _cpu_info(node: cm.ComputeNode) -> dict[str, Any]:
    """What the fake driver reports: the host's architecture and a flat topology."""
    return {"arch": platform.machine() or "x86_64", "model": "transcell-fake",
            "vendor": "transcell", "features": [],
            "topology": {"cells": 1, "sockets": 1, "cores": node.vcpus, "threads": 1}}


def uptime_text(since: dt.datetime | None, now: dt.datetime) -> str:
    """The line ``uptime`` prints, for how long the host's compute service has run."""
    seconds = max(0, int((now - since).total_seconds())) if since else 0
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return (f" {now:%H:%M:%S} up {days} days, {hours:2d}:{minutes:02d},  1 user,  "
            "load average: 0.00, 0.00, 0.00")


def _usage(entry: Node, version: Any) -> dict[str, Any]:
    """The figures 2.88 removed: Placement has them now."""
    node = entry.node
    free_disk = node.local_gb - node.local_gb_used
    cpu_info = _cpu_info(node)
    return {
        "vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
        "vcpus_used": node.vcpus_used, "memory_mb_used": node.memory_mb_used,
        "local_gb_used": node.local_gb_used,
        "free_ram_mb": node.memory_mb - node.memory_mb_used, "free_disk_gb": free_disk,
        "current_workload": entry.workload, "running_vms": node.running_vms,
        "disk_available_least": free_disk,
        "cpu_info": cpu_info if version.matches("2.28") else json.dumps(cpu_info),
    }


def _view(req: webob.Request, entry: Node, detail: bool,
          servers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    version = api_version(req)
    uuid_ids = version.matches(UUID_IDS)
    node, service = entry.node, entry.service
    body: dict[str, Any] = {
        "id": node.uuid if uuid_ids else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if service_state.is_up(service) else "down",
        "status": "disabled" if service.disabled else "enabled",
    }
    if detail:
        body.update({
            "hypervisor_type": node.hypervisor_type,
            "hypervisor_version": node.hypervisor_version, "host_ip": node.host_ip,
            "service": {"id": service.uuid if uuid_ids else service.id, "host": node.host,
                        "disabled_reason": service.disabled_reason},
        })
        if not version.matches(NO_USAGE):
            body.update(_usage(entry, version))
    if servers or (servers is not None and version.matches("2.75")):
        # from 2.75 asking for servers always answers with the key, [] if none
        body["servers"] = servers
    return body


def _list(req: webob.Request, detail: bool) -> webob.Response:
    version = api_version(req)
    pattern = None
    with_servers = False
    if version.matches(UUID_IDS):
        common.reject_unknown_query(req, _QUERY_253)
        pattern = req.GET.get("hypervisor_hostname_pattern")
        with_servers = common.query_bool(req, "with_servers")
    nodes = all_nodes()
    paged = False
    if pattern is not None:
        if "limit" in req.GET or "marker" in req.GET:
            raise exception.Invalid("Paging over hypervisors with the "
                                    "hypervisor_hostname_pattern query parameter is not "
                                    "supported.")
        nodes = [n for n in nodes
                 if pattern.lower() in n.node.hypervisor_hostname.lower()]
        if not nodes:
            raise exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    elif version.matches("2.33"):
        paged = True
        limit, marker = common.limit_and_marker(req)
        if version.matches(UUID_IDS):
            nodes = common.page_after(nodes, lambda n: n.node.uuid, marker, limit)
        else:
            nodes = common.page_after(nodes, lambda n: str(n.node.id), marker, limit)
    items = [_view(req, n, detail, _servers(n) if with_servers else None) for n in nodes]
    body: dict[str, Any] = {"hypervisors": items}
    if paged:
        collection = "os-hypervisors/detail" if detail else "os-hypervisors"
        links = common.collection_links(req, items, collection)
        if links:
            body["hypervisors_links"] = links
    return json_response(body)


def index(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:list", {})
    return _list(req, detail=False)


def detail(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:detail", {})
    return _list(req, detail=True)


def show(req: webob.Request, hypervisor_id: str) -> webob.Response:
    version = api_version(req)
    with_servers = False
    if version.matches(UUID_IDS):
        common.reject_unknown_query(req, ("with_servers",))
        with_servers = common.query_bool(req, "with_servers")
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:show", {})
    not_found = exception.NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    if version.matches(UUID_IDS):
        if not common.is_uuid_like(hypervisor_id):
            raise exception.Invalid(f"Invalid uuid {hypervisor_id}")
        wanted = uuidlib.UUID(hypervisor_id)
        match = [n for n in all_nodes() if uuidlib.UUID(n.node.uuid) == wanted]
    else:
        try:
            number = int(hypervisor_id)
        except ValueError:
            raise not_found from None
        match = [n for n in all_nodes() if n.node.id == number]
    if not match:
        raise not_found
    entry = match[0]
    servers = _servers(entry) if with_servers else None
    body = _view(req, entry, True, servers)
    if version.matches(NO_USAGE):
        # a host whose compute service is down cannot say: null, as in Nova
        body["uptime"] = (uptime_text(entry.service.created_at, utcnow())
                          if service_state.is_up(entry.service) else None)
    return json_response({"hypervisor": body})


def statistics(req: webob.Request) -> webob.Response:
    """Totals over the nodes whose compute service is enabled (until 2.88)."""
    if api_version(req).matches(NO_USAGE):
        raise exception.NotFound("The resource could not be found.")
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:statistics", {})
    stats = dict.fromkeys(("count", "vcpus", "memory_mb", "local_gb", "vcpus_used",
                           "memory_mb_used", "local_gb_used", "free_ram_mb", "free_disk_gb",
                           "current_workload", "running_vms", "disk_available_least"), 0)
    for entry in all_nodes():
        if entry.service.disabled:
            continue
        node = entry.node
        free_disk = node.local_gb - node.local_gb_used
        stats["count"] += 1
        stats["vcpus"] += node.vcpus
        stats["memory_mb"] += node.memory_mb
        stats["local_gb"] += node.local_gb
        stats["vcpus_used"] += node.vcpus_used
        stats["memory_mb_used"] += node.memory_mb_used
        stats["local_gb_used"] += node.local_gb_used
        stats["free_ram_mb"] += node.memory_mb - node.memory_mb_used
        stats["free_disk_gb"] += free_disk
        stats["current_workload"] += entry.workload
        stats["running_vms"] += node.running_vms
        stats["disk_available_least"] += free_disk
    return json_response({"hypervisor_statistics": stats})
