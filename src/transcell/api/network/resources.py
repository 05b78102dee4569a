"""Networks, subnets and ports: the same five calls on each, as Neutron has them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import webob

from transcell.api.network import common
from transcell.context import RequestContext
from transcell.network.service import NetworkService
from transcell.network.views import public_port
from transcell.wsgi.app import context_of, empty_response

View = Callable[[dict[str, Any], RequestContext], dict[str, Any]]


def _as_is(body: dict[str, Any], _ctx: RequestContext) -> dict[str, Any]:
    return body


def _port_view(body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    return public_port(body, ctx.is_admin)


@dataclass(frozen=True)
class Resource:
    member: str
    collection: str
    view: View = _as_is

    def call(self, service: NetworkService, verb: str, *args: Any) -> Any:
        name = self.collection if verb == "list" else self.member
        return getattr(service, f"{verb}_{name}")(*args)


NETWORKS = Resource("network", "networks")
SUBNETS = Resource("subnet", "subnets")
PORTS = Resource("port", "ports", _port_view)


def index(resource: Resource, service: NetworkService, req: webob.Request
          ) -> webob.Response:
    ctx = context_of(req)
    items = resource.call(service, "list", ctx, common.filters_of(req))
    return common.collection(req, resource.collection,
                             [resource.view(item, ctx) for item in items])


def create(resource: Resource, service: NetworkService, req: webob.Request
           ) -> webob.Response:
    ctx = context_of(req)
    body = common.member_body(req, resource.member)
    made = resource.call(service, "create", ctx, body)
    return common.member(req, resource.member, resource.view(made, ctx), status=201)


def show(resource: Resource, service: NetworkService, req: webob.Request,
         resource_id: str) -> webob.Response:
    ctx = context_of(req)
    found = resource.call(service, "get", ctx, resource_id)
    return common.member(req, resource.member, resource.view(found, ctx))


def update(resource: Resource, service: NetworkService, req: webob.Request,
           resource_id: str) -> webob.Response:
    ctx = context_of(req)
    body = common.member_body(req, resource.member)
    changed = resource.call(service, "update", ctx, resource_id, body)
    return common.member(req, resource.member, resource.view(changed, ctx))


def delete(resource: Resource, service: NetworkService, req: webob.Request,
           resource_id: str) -> webob.Response:
    resource.call(service, "delete", context_of(req), resource_id)
    return empty_response(204)
