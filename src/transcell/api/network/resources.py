"""Networks, subnets, ports, segments, routers and subnet pools: the same five calls on
each, as Neutron has them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.network import access, common
from transcell.context import RequestContext
from transcell.network import exceptions as net_exc
from transcell.network.service import NetworkService
from transcell.network.views import public_network, public_port
from transcell.wsgi.app import context_of, empty_response

View = Callable[[dict[str, Any], RequestContext], dict[str, Any]]


def _as_is(body: dict[str, Any], _ctx: RequestContext) -> dict[str, Any]:
    return body


def _port_view(body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    return public_port(body, policy.check(ctx, "get_port:binding:host_id", {}))


def _network_view(body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    return public_network(body, policy.check(ctx, "get_network:segments", {}))


@dataclass(frozen=True)
class Resource:
    member: str
    collection: str
    missing: Callable[[str], exception.NotFound]
    view: View = _as_is

    def call(self, service: NetworkService, verb: str, *args: Any) -> Any:
        name = self.collection if verb == "list" else self.member
        return getattr(service, f"{verb}_{name}")(*args)


NETWORKS = Resource("network", "networks",
                    lambda found: exception.NetworkNotFound(network_id=found), _network_view)
SUBNETS = Resource("subnet", "subnets", lambda found: net_exc.SubnetNotFound(subnet_id=found))
PORTS = Resource("port", "ports", lambda found: exception.PortNotFound(port_id=found),
                 _port_view)
SEGMENTS = Resource("segment", "segments",
                    lambda found: net_exc.SegmentNotFound(segment_id=found))
ROUTERS = Resource("router", "routers", lambda found: net_exc.RouterNotFound(router_id=found))
SUBNETPOOLS = Resource("subnetpool", "subnetpools",
                       lambda found: net_exc.SubnetPoolNotFound(subnetpool_id=found))
#: tags only: security groups have handlers of their own (security_groups.py)
SECURITY_GROUPS = Resource("security_group", "security-groups",
                           lambda found: net_exc.SecurityGroupNotFound(id=found))


def load(resource: Resource, service: NetworkService, ctx: RequestContext,
         resource_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object and its policy target, or 404 when the caller may not see it."""
    found = resource.call(service, "get", ctx, resource_id)
    target = access.target_of(service, resource.member, found)
    access.require_visible(ctx, resource.member, target,
                           lambda: resource.missing(resource_id))
    return found, target


def index(resource: Resource, service: NetworkService, req: webob.Request
          ) -> webob.Response:
    ctx = context_of(req)
    items = resource.call(service, "list", ctx, common.filters_of(req))
    items = access.visible(ctx, resource.member, items,
                           access.targets_of(service, resource.member, items))
    return common.collection(req, resource.collection,
                             [resource.view(item, ctx) for item in items])


def authorize_create(resource: Resource, service: NetworkService, ctx: RequestContext,
                     body: dict[str, Any]) -> None:
    """The create rule and the per-attribute rules for one object ``body`` would make."""
    wanted = dict(body)
    wanted.setdefault("project_id", body.get("tenant_id") or ctx.project_id)
    target = access.target_of(service, resource.member, wanted)
    access.authorize(ctx, f"create_{resource.member}", target)
    access.authorize_attributes(ctx, "create", resource.member, body, target)


def create(resource: Resource, service: NetworkService, req: webob.Request
           ) -> webob.Response:
    ctx = context_of(req)
    body = common.member_body(req, resource.member)
    authorize_create(resource, service, ctx, body)
    made = resource.call(service, "create", ctx, body)
    return common.member(req, resource.member, resource.view(made, ctx), status=201)


def show(resource: Resource, service: NetworkService, req: webob.Request,
         resource_id: str) -> webob.Response:
    ctx = context_of(req)
    found, _target = load(resource, service, ctx, resource_id)
    return common.member(req, resource.member, resource.view(found, ctx))


def _if_revision(resource: Resource, req: webob.Request) -> list[int]:
    """Neutron's revision-if-match: ``If-Match: revision_number=N`` (ports only here)."""
    header = req.headers.get("If-Match")
    if header is None:
        return []
    key, _, number = header.strip().partition("=")
    if key != "revision_number" or not number.isdigit():
        raise exception.Invalid(f"If-Match must be 'revision_number=N', not '{header}'")
    if resource.member != "port":
        raise exception.Invalid(f"If-Match is not supported on {resource.collection}")
    return [int(number)]


def update(resource: Resource, service: NetworkService, req: webob.Request,
           resource_id: str) -> webob.Response:
    ctx = context_of(req)
    found, target = load(resource, service, ctx, resource_id)
    access.authorize(ctx, f"update_{resource.member}", target)
    body = common.member_body(req, resource.member)
    access.authorize_attributes(ctx, "update", resource.member, body, target, found)
    changed = resource.call(service, "update", ctx, resource_id, body,
                            *_if_revision(resource, req))
    return common.member(req, resource.member, resource.view(changed, ctx))


def delete(resource: Resource, service: NetworkService, req: webob.Request,
           resource_id: str) -> webob.Response:
    ctx = context_of(req)
    _found, target = load(resource, service, ctx, resource_id)
    access.authorize(ctx, f"delete_{resource.member}", target)
    resource.call(service, "delete", ctx, resource_id)
    return empty_response(204)
