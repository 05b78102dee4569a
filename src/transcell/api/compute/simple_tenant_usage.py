"""/os-simple-tenant-usage: what projects' servers used over a period, from every cell.

A server is charged from its launch (or the period's start) to its
termination (or the period's end), hours times its flavor's vCPUs, RAM and
disk. Servers are read from every cell and counted once: a server in the
middle of a cross-cell move has a hidden copy in the other cell, which is
not a second server. Deleted servers still count for the part of the period
they ran, as in Nova.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass
from typing import Any

import webob
from sqlalchemy import null, or_, select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.wsgi.app import application_url, context_of, json_response

PAGING = "2.40"
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Row:
    instance: cm.Instance
    flavor: dict[str, Any] | None


def _parse_time(value: str | None) -> dt.datetime:
    if not value:
        return utcnow()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise exception.Invalid("Datetime is in invalid format")


def _period(req: webob.Request) -> tuple[dt.datetime, dt.datetime, bool]:
    start = _parse_time(req.GET.get("start"))
    stop = _parse_time(req.GET.get("end"))
    if not start < stop:
        raise exception.Invalid("Invalid start time. The start time cannot occur after the "
                                "end time.")
    return start, stop, req.GET.get("detailed", "0") == "1"


def _active(start: dt.datetime, stop: dt.datetime, project_id: str | None) -> list[Row]:
    """Servers of every cell that ran at some time in [start, stop), oldest first."""
    query = (select(cm.Instance, cm.InstanceExtra.flavor)
             .outerjoin(cm.InstanceExtra,
                        cm.InstanceExtra.instance_uuid == cm.Instance.uuid)
             .where(cm.Instance.hidden.is_(False),
                    or_(cm.Instance.terminated_at == null(), cm.Instance.terminated_at > start),
                    cm.Instance.launched_at < stop))
    if project_id is not None:
        query = query.where(cm.Instance.project_id == project_id)

    def read(cell: cells.Cell) -> list[Row]:
        with cell_session(cell) as s:
            return [Row(inst, (flavors or {}).get("cur")) for inst, flavors in s.execute(query)]

    found: dict[str, Row] = {}
    for rows in cells.scatter(cells.list_cells(), read).values():
        for row in rows:
            kept = found.get(row.instance.uuid)
            # one server, two rows (a move's copy soft-deleted in its old cell): the live one
            if kept is None or (kept.instance.deleted and not row.instance.deleted):
                found[row.instance.uuid] = row
    return sorted(found.values(), key=lambda r: (r.instance.created_at, r.instance.uuid))


def _hours(inst: cm.Instance, start: dt.datetime, stop: dt.datetime) -> float:
    launched, terminated = inst.launched_at, inst.terminated_at
    if launched is None or launched > stop or (terminated and terminated < start):
        return 0.0
    began = max(launched, start)
    ended = min(stop, terminated) if terminated else stop
    return (ended - began).total_seconds() / 3600.0


def _server_usage(row: Row, start: dt.datetime, stop: dt.datetime,
                  now: dt.datetime) -> dict[str, Any]:
    inst, flavor = row.instance, row.flavor or {}
    ended = inst.terminated_at
    ran = (ended if ended else now) - inst.launched_at
    return {
        "instance_id": inst.uuid,
        "name": inst.display_name,
        "hours": _hours(inst, start, stop),
        "memory_mb": flavor.get("memory_mb", inst.memory_mb),
        "local_gb": flavor.get("root_gb", inst.root_gb) + flavor.get("ephemeral_gb",
                                                                     inst.ephemeral_gb),
        "vcpus": flavor.get("vcpus", inst.vcpus),
        "tenant_id": inst.project_id,
        "flavor": flavor.get("name", ""),
        "started_at": inst.launched_at.isoformat(),
        "ended_at": ended.isoformat() if ended else None,
        "state": "terminated" if ended else inst.vm_state,
        "uptime": int(ran.total_seconds()),
    }


def _summaries(rows: list[Row], start: dt.datetime, stop: dt.datetime,
               detailed: bool) -> list[dict[str, Any]]:
    now = utcnow()
    by_project: dict[str, dict[str, Any]] = {}
    for row in rows:
        usage = _server_usage(row, start, stop, now)
        summary = by_project.setdefault(usage["tenant_id"], {
            "tenant_id": usage["tenant_id"], "server_usages": [],
            "total_local_gb_usage": 0, "total_vcpus_usage": 0,
            "total_memory_mb_usage": 0, "total_hours": 0,
            "start": start.isoformat(), "stop": stop.isoformat()})
        summary["server_usages"].append(usage)
        summary["total_local_gb_usage"] += usage["local_gb"] * usage["hours"]
        summary["total_vcpus_usage"] += usage["vcpus"] * usage["hours"]
        summary["total_memory_mb_usage"] += usage["memory_mb"] * usage["hours"]
        summary["total_hours"] += usage["hours"]
    summaries = list(by_project.values())
    if not detailed:
        for summary in summaries:
            del summary["server_usages"]
    return summaries


def _page(req: webob.Request, rows: list[Row]) -> tuple[list[Row], int | None]:
    """From 2.40 the servers behind the usage are paged (``limit``, ``marker`` a server's
    uuid); the page size is returned when a ``next`` link may be due."""
    if not api_version(req).matches(PAGING):
        return rows, None
    limit, marker = common.limit_and_marker(req)
    if marker is not None and not any(r.instance.uuid == marker for r in rows):
        raise exception.Invalid(f"Marker {marker} could not be found.")
    return common.page_after(rows, lambda r: r.instance.uuid, marker, limit), limit


def _links(req: webob.Request, path: str, page: list[Row], limit: int | None
           ) -> list[dict[str, str]]:
    if limit is None or not page or len(page) < limit:
        return []
    params = [(k, v) for k, v in req.GET.items() if k != "marker"]
    params.append(("marker", page[-1].instance.uuid))
    return [{"rel": "next",
             "href": f"{application_url(req)}/v2.1/{path}?{urllib.parse.urlencode(params)}"}]


def index(req: webob.Request) -> webob.Response:
    if req.path_info.endswith("/"):
        # ``/os-simple-tenant-usage/``: a project's usage with an empty project id
        raise exception.NotFound("The resource could not be found.")
    policy.authorize(context_of(req), "os_compute_api:os-simple-tenant-usage:list", {})
    start, stop, detailed = _period(req)
    rows, limit = _page(req, _active(start, stop, None))
    body: dict[str, Any] = {"tenant_usages": _summaries(rows, start, stop, detailed)}
    links = _links(req, "os-simple-tenant-usage", rows, limit)
    if links:
        body["tenant_usages_links"] = links
    return json_response(body)


def show(req: webob.Request, tenant_id: str) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-simple-tenant-usage:show",
                     {"project_id": tenant_id})
    start, stop, _ = _period(req)
    rows, limit = _page(req, _active(start, stop, tenant_id))
    summaries = _summaries(rows, start, stop, detailed=True)
    body: dict[str, Any] = {"tenant_usage": summaries[0] if summaries else {}}
    links = _links(req, f"os-simple-tenant-usage/{urllib.parse.quote(tenant_id)}", rows,
                   limit)
    if links:
        body["tenant_usage_links"] = links
    return json_response(body)
