"""Bulk create: ``POST /v2.0/networks`` with ``{"networks": [...]}`` (subnets, ports alike).

All or nothing, as Neutron promises: every item passes its policy checks
before anything is written, then the network service creates them all in one
transaction (:mod:`transcell.network.bulk`), so one failing item leaves no
trace of the others; the answer lists the created objects in request order
(201).
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception
from transcell.api.network import common, resources
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, json_response, read_json

#: collections Neutron creates in bulk here
BULK = frozenset({"networks", "subnets", "ports"})
#: most objects one request may create (a bound on the work one request does)
MAX_ITEMS = 1000


def _items(resource: resources.Resource, data: dict[str, Any]) -> list[dict[str, Any]]:
    if set(data) != {resource.collection}:
        extra = sorted(set(data) - {resource.collection})
        raise exception.Invalid(f"Unrecognized attribute(s) '{', '.join(extra)}'")
    items = data[resource.collection]
    if not isinstance(items, list) or not items:
        raise exception.Invalid(f"'{resource.collection}' must be a non-empty list of "
                                f"{resource.member} objects.")
    if len(items) > MAX_ITEMS:
        raise exception.Invalid(f"At most {MAX_ITEMS} {resource.collection} can be created "
                                "in one request.")
    for item in items:
        if not isinstance(item, dict):
            raise exception.Invalid(f"Each of '{resource.collection}' must be a JSON object.")
    return items


def create(resource: resources.Resource, service: NetworkService, req: webob.Request
           ) -> webob.Response:
    data = read_json(req)
    if not (isinstance(data, dict) and resource.collection in data
            and resource.member not in data):
        return resources.create(resource, service, req)
    items = _items(resource, data)
    ctx = context_of(req)
    for body in items:
        resources.authorize_create(resource, service, ctx, body)
    made = service.create_in_bulk(ctx, resource.member, items)
    fields = common.fields_of(req)
    return json_response({resource.collection: [
        common.select_fields(resource.view(item, ctx), fields) for item in made]}, status=201)
