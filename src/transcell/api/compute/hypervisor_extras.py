"""Hypervisor routes beyond the list and show: ``uptime`` (until 2.88), and
``{pattern}/search`` and ``{pattern}/servers`` (until 2.53, when the list took
``hypervisor_hostname_pattern`` and ``with_servers`` instead).

Nodes are read from every cell (``hypervisors.all_nodes``), so a pattern finds
matching hypervisors whichever cell they serve.
"""

from __future__ import annotations

import uuid as uuidlib

import webob

from transcell import exception, policy
from transcell.api.compute import common, hypervisors
from transcell.api.compute.app import api_version
from transcell.compute import service_state
from transcell.db.types import utcnow
from transcell.wsgi.app import context_of, json_response

UPTIME_GONE = hypervisors.NO_USAGE
PATTERN_ROUTES_GONE = "2.53"


def _find(req: webob.Request, hypervisor_id: str) -> hypervisors.Node:
    """One node by the id the microversion uses (integer before 2.53, uuid after)."""
    not_found = exception.NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    if api_version(req).matches(hypervisors.UUID_IDS):
        if not common.is_uuid_like(hypervisor_id):
            raise exception.Invalid(f"Invalid uuid {hypervisor_id}")
        wanted = uuidlib.UUID(hypervisor_id)
        match = [n for n in hypervisors.all_nodes() if uuidlib.UUID(n.node.uuid) == wanted]
    else:
        try:
            number = int(hypervisor_id)
        except ValueError:
            raise not_found from None
        match = [n for n in hypervisors.all_nodes() if n.node.id == number]
    if not match:
        raise not_found
    return match[0]


def uptime(req: webob.Request, hypervisor_id: str) -> webob.Response:
    if api_version(req).matches(UPTIME_GONE):
        raise exception.NotFound("The resource could not be found.")
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:uptime", {})
    entry = _find(req, hypervisor_id)
    if not service_state.is_up(entry.service):
        raise exception.Invalid(f"Compute service of {entry.node.host} is unavailable at "
                                 "this time.")
    body = hypervisors._view(req, entry, detail=False)
    body["uptime"] = hypervisors.uptime_text(entry.service.created_at, utcnow())
    return json_response({"hypervisor": body})


def _matching(req: webob.Request, pattern: str) -> list[hypervisors.Node]:
    if api_version(req).matches(PATTERN_ROUTES_GONE):
        raise exception.NotFound("The resource could not be found.")
    nodes = [n for n in hypervisors.all_nodes()
             if pattern.lower() in n.node.hypervisor_hostname.lower()]
    if not nodes:
        raise exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return nodes


def search(req: webob.Request, hypervisor_hostname_pattern: str) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:search", {})
    nodes = _matching(req, hypervisor_hostname_pattern)
    return json_response({"hypervisors": [hypervisors._view(req, n, detail=False)
                                          for n in nodes]})


def servers(req: webob.Request, hypervisor_hostname_pattern: str) -> webob.Response:
    """Each matching hypervisor with its servers (the key left out when it has none)."""
    policy.authorize(context_of(req), "os_compute_api:os-hypervisors:servers", {})
    nodes = _matching(req, hypervisor_hostname_pattern)
    return json_response({"hypervisors": [
        hypervisors._view(req, n, detail=False, servers=hypervisors._servers(n))
        for n in nodes]})
