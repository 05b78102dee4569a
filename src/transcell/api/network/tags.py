"""Tags (standard-attr-tag): /v2.0/{collection}/{resource_id}/tags[/{tag}]."""

from __future__ import annotations

import webob

from transcell import exception
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, empty_response, json_response, read_json


def index(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str) -> webob.Response:
    tags = service.get_tags(context_of(req), collection, resource_id)
    return json_response({"tags": tags})


def replace(service: NetworkService, req: webob.Request, collection: str,
            resource_id: str) -> webob.Response:
    body = read_json(req)
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise exception.Invalid("Invalid input for tags. Reason: expected {\"tags\": [...]}.")
    tags = service.replace_tags(context_of(req), collection, resource_id, body["tags"])
    return json_response({"tags": tags})


def clear(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str) -> webob.Response:
    service.replace_tags(context_of(req), collection, resource_id, [])
    return empty_response(204)


def check(service: NetworkService, req: webob.Request, collection: str,
          resource_id: str, tag: str) -> webob.Response:
    service.check_tag(context_of(req), collection, resource_id, tag)
    return empty_response(204)


def add(service: NetworkService, req: webob.Request, collection: str,
        resource_id: str, tag: str) -> webob.Response:
    service.add_tag(context_of(req), collection, resource_id, tag)
    return empty_response(201)


def remove(service: NetworkService, req: webob.Request, collection: str,
           resource_id: str, tag: str) -> webob.Response:
    service.remove_tag(context_of(req), collection, resource_id, tag)
    return empty_response(204)
