"""Tags (standard-attr-tag): /v2.0/{collection}/{resource_id}/tags[/{tag}]."""

from __future__ import annotations

import webob

from transcell import exception
from transcell.api.network import access, resources
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

_TAGGED = {r.collection: r for r in (
    resources.NETWORKS, resources.SUBNETS, resources.PORTS, resources.ROUTERS,
    resources.SUBNETPOOLS, resources.SECURITY_GROUPS, resources.SEGMENTS)}


def _authorize(service: NetworkService, req: webob.Request, collection: str,
               resource_id: str, verb: str) -> None:
    """404 for what the caller cannot see; else ``<verb>_<member>:tags`` or 403."""
    resource = _TAGGED.get(collection)
    if resource is None:
        raise exception.NotFound(f"Tags are not supported on {collection}.")
    ctx = context_of(req)
    _found, target = resources.load(resource, service, ctx, resource_id)
    access.authorize(ctx, f"{verb}_{resource.member}:tags", target)


def index(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "get")
    tags = service.get_tags(context_of(req), collection, resource_id)
    return json_response({"tags": tags})


def replace(service: NetworkService, req: webob.Request, collection: str,
            resource_id: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "update")
    body = read_json(req)
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise exception.Invalid("Invalid input for tags. Reason: expected {\"tags\": [...]}.")
    tags = service.replace_tags(context_of(req), collection, resource_id, body["tags"])
    return json_response({"tags": tags})


def clear(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "delete")
    service.replace_tags(context_of(req), collection, resource_id, [])
    return empty_response(204)


def check(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str, tag: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "get")
    service.check_tag(context_of(req), collection, resource_id, tag)
    return empty_response(204)


def add(service: NetworkService, req: webob.Request, collection: str,
        resource_id: str, tag: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "create")
    service.add_tag(context_of(req), collection, resource_id, tag)
    return empty_response(201)


def remove(service: NetworkService, req: webob.Request, collection: str,
           resource_id: str, tag: str) -> webob.Response:
    _authorize(service, req, collection, resource_id, "delete")
    service.remove_tag(context_of(req), collection, resource_id, tag)
    return empty_response(204)
