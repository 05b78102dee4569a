"""/os-availability-zone: one zone per cell, named after it, plus "internal".

A zone is listed when a service is in it, available while one of its
services is enabled; the "internal" zone (conductor, scheduler) only appears
in the administrator's detailed view, as in Nova.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import policy
from transcell.api.compute.services import Entry, all_services
from transcell.compute import service_state
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, json_response


def _zones(entries: list[Entry]) -> tuple[list[str], list[str]]:
    """(available, unavailable) zone names, in the order their cells are listed."""
    available: list[str] = []
    unavailable: list[str] = []
    for entry in entries:
        zone = service_state.zone_of(entry.service.binary, entry.cell)
        if not entry.service.disabled and zone not in available:
            available.append(zone)
    for entry in entries:
        zone = service_state.zone_of(entry.service.binary, entry.cell)
        if entry.service.disabled and zone not in available and zone not in unavailable:
            unavailable.append(zone)
    return available, unavailable


def index(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-availability-zone:list", {})
    available, unavailable = _zones(all_services())
    info = [{"zoneName": zone, "zoneState": {"available": state}, "hosts": None}
            for names, state in ((available, True), (unavailable, False))
            for zone in names if zone != service_state.INTERNAL_ZONE]
    return json_response({"availabilityZoneInfo": info})


def detail(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-availability-zone:detail", {})
    entries = all_services()
    available, unavailable = _zones(entries)
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in entries:
        svc = entry.service
        if svc.disabled:
            continue
        zone = service_state.zone_of(svc.binary, entry.cell)
        hosts.setdefault(zone, {}).setdefault(svc.host, {})[svc.binary] = {
            "available": service_state.is_up(svc),
            "active": True,
            "updated_at": isotime(service_state.updated_time(svc)),
        }
    info = [{"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts.get(zone, {})}
            for zone in available]
    info += [{"zoneName": zone, "zoneState": {"available": False}, "hosts": None}
             for zone in unavailable]
    return json_response({"availabilityZoneInfo": info})
