"""Who may do what in the Network API: Neutron's policy rules, checked before the service acts.

Each check needs the target as Neutron builds it: the object's project, and
for subnets and ports the owner and sharing of their network. Anything the
caller may not ``get_*`` is reported missing (404), as Neutron does; what it
may see but not change is refused with ``PolicyNotAuthorized`` (403). Checks
run before the service is called, so a refused request changes nothing.

The network service's own checks (visibility, admin-only attributes) stay as
they are: compute hosts and the conductor call the service either over RPC
with an administrator's context, never passing through here, or over this API
as a service user with the admin and service roles
(``transcell.network.http_client``), which these rules let through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from transcell import exception, policy
from transcell.context import RequestContext
from transcell.network.exceptions import PolicyNotAuthorized
from transcell.network.service import NetworkService
from transcell.policies.network import RESERVED_OWNERS

Body = dict[str, Any]

#: attributes with a rule of their own, and the value that needs no permission
GUARDED = {
    "network": {"shared": False, "router:external": False},
    "subnet": {"segment_id": None},
    "segment": {"transcell:cells": []},
    "subnetpool": {"shared": False, "is_default": False},
    "port": {"binding:host_id": "", "binding:profile": {}, "mac_address": None,
             "transcell:created_for_instance": False, "transcell:vif_tag": None,
             "transcell:vif_index": 0},
}
#: who reads the network an object hangs off, only to know its owner and sharing
_LOOKUP = RequestContext.admin()


def authorize(ctx: RequestContext, action: str, target: Body) -> None:
    policy.authorize(ctx, action, target, exc=PolicyNotAuthorized)


def allowed(ctx: RequestContext, action: str, target: Body) -> bool:
    return policy.check(ctx, action, target)


def _network_fields(net: Body | None) -> Body:
    if net is None:
        return {"network:project_id": "", "network:shared": False,
                "network:router:external": False}
    return {"network:project_id": net.get("project_id") or "",
            "network:shared": bool(net.get("shared")),
            "network:router:external": bool(net.get("router:external"))}


def network_of(service: NetworkService, network_id: Any) -> Body | None:
    if not isinstance(network_id, str) or not network_id:
        return None
    try:
        return service.get_network(_LOOKUP, network_id)
    except exception.NotFound:
        return None


def target(member: str, body: Body, network: Body | None = None) -> Body:
    """Neutron's target for ``body`` (a stored object, or a create request)."""
    project = body.get("project_id") or body.get("tenant_id") or ""
    result: Body = {"project_id": project, "tenant_id": project}
    if member == "network":
        network = body
    result.update(_network_fields(network))
    if member == "port":
        result["device_owner"] = body.get("device_owner") or ""
    if member == "subnetpool":
        result["shared"] = bool(body.get("shared"))
    return result


def target_of(service: NetworkService, member: str, body: Body) -> Body:
    network = None if member == "network" else network_of(service, body.get("network_id"))
    return target(member, body, network)


def targets_of(service: NetworkService, member: str, items: list[Body]) -> list[Body]:
    """Targets of a whole list, reading each network they hang off once."""
    if member == "network":
        return [target(member, item) for item in items]
    ids = sorted({item["network_id"] for item in items if item.get("network_id")})
    networks = {net["id"]: net for net in service.list_networks(_LOOKUP, {"id": ids})} \
        if ids else {}
    return [target(member, item, networks.get(item.get("network_id"))) for item in items]


def visible(ctx: RequestContext, member: str, items: Iterable[Body],
            targets: Iterable[Body]) -> list[Body]:
    return [item for item, tgt in zip(items, targets, strict=True)
            if allowed(ctx, f"get_{member}", tgt)]


def require_visible(ctx: RequestContext, member: str, tgt: Body,
                    not_found: Callable[[], exception.NotFound]) -> None:
    if not allowed(ctx, f"get_{member}", tgt):
        raise not_found()


def _reserved(owner: Any) -> bool:
    return isinstance(owner, str) and owner.startswith(RESERVED_OWNERS)


def authorize_attributes(ctx: RequestContext, verb: str, member: str, body: Body,
                         tgt: Body, current: Body | None = None) -> None:
    """The per-attribute rules (``create_port:binding:host_id``...) for what ``body`` sets."""
    for name, harmless in GUARDED.get(member, {}).items():
        if name not in body:
            continue
        if verb == "create" and body[name] == harmless:
            continue
        if current is not None and current.get(name) == body[name]:
            continue
        authorize(ctx, f"{verb}_{member}:{name}", tgt)
    if member == "port" and "device_owner" in body:
        old = (current or {}).get("device_owner", "")
        if body["device_owner"] != old and (_reserved(body["device_owner"]) or _reserved(old)):
            authorize(ctx, f"{verb}_port:device_owner", tgt)
