"""Nova's security group proxy (``os-security-groups``, ``os-security-group-rules``,
until 2.36), a server's groups (``/servers/{id}/os-security-groups``) and the
``addSecurityGroup``/``removeSecurityGroup`` server actions.

The groups live in the network service; everything here goes through the
network client with the caller's context, so the network service's ownership
checks apply as they do through the network API. The views are Nova's: a group
with its ingress rules, a rule as ``ip_protocol``/``from_port``/``to_port`` and
either an ``ip_range`` or a source ``group``. Nova's checks of a rule come
before the network service sees it, with Nova's words.
"""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from typing import Any

import webob
from sqlalchemy import select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute.app import api_version
from transcell.api.compute.common import validate
from transcell.compute.api import API
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.registry import services
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

#: The first microversion without the proxy (the server's groups and actions stay).
GONE = "2.36"
RULE = "os_compute_api:os-security-groups:%s"

compute_api = API()

GROUP_SCHEMA = {
    "type": "object",
    "properties": {"security_group": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255},
                       "description": {"type": "string", "maxLength": 255}},
        "required": ["name", "description"],
    }},
    "required": ["security_group"],
}
RULE_SCHEMA = {
    "type": "object",
    "properties": {"security_group_rule": {
        "type": "object",
        "properties": {"parent_group_id": {"type": "string"},
                       "group_id": {"type": ["string", "null"]},
                       "cidr": {"type": ["string", "null"]},
                       "ip_protocol": {"type": ["string", "null"]},
                       "from_port": {"type": ["string", "integer", "null"]},
                       "to_port": {"type": ["string", "integer", "null"]}},
        "required": ["parent_group_id"],
    }},
    "required": ["security_group_rule"],
}
_ACTION_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1}},
    "required": ["name"],
}


def _call(ctx, method: str, **kwargs: Any) -> Any:
    return services.network.security_group_call(ctx, method, **kwargs)


def _require_old(req: webob.Request) -> None:
    if api_version(req).matches(GONE):
        raise exception.NotFound("The resource could not be found.")


def _authorize(req: webob.Request, action: str):
    _require_old(req)
    ctx = context_of(req)
    policy.authorize(ctx, RULE % action, {"project_id": ctx.project_id})
    return ctx


# -- views -------------------------------------------------------------------

def _rule_view(rule: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol == "icmp":
        low = -1 if low is None else low
        high = -1 if high is None else high
    view: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"],
                            "ip_protocol": protocol, "from_port": low, "to_port": high,
                            "group": {}, "ip_range": {}}
    if rule.get("remote_group_id"):
        source = names.get(rule["remote_group_id"], {})
        view["group"] = {"name": source.get("name"), "tenant_id": source.get("tenant_id")}
    else:
        view["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or (
            "::/0" if rule.get("ethertype") == "IPv6" else "0.0.0.0/0")}
    return view


def _group_view(group: dict[str, Any], names: dict[str, dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    names = {group["id"]: group, **(names or {})}
    return {"id": group["id"], "name": group["name"],
            "description": group.get("description") or "",
            "tenant_id": group.get("tenant_id") or group.get("project_id"),
            "rules": [_rule_view(r, names) for r in group.get("security_group_rules", [])
                      if r.get("direction") == "ingress"]}


def _check_id(group_id: Any) -> str:
    """Nova's proxy takes only a UUID for a group (nova-network's were integers): 400."""
    try:
        uuidlib.UUID(str(group_id))
    except ValueError:
        raise exception.Invalid("Security group id should be uuid") from None
    return str(group_id)


def _get(ctx, group_id: str) -> dict[str, Any]:
    _check_id(group_id)
    try:
        return _call(ctx, "get_security_group", group_id=group_id)
    except exception.NotFound:
        raise exception.NotFound(f"Security group {group_id} not found.") from None


# -- os-security-groups ------------------------------------------------------

def no_id(req: webob.Request) -> webob.Response:
    """``/os-security-groups/`` with the id left out: Nova's router finds no group."""
    _require_old(req)
    raise exception.NotFound("The resource could not be found.")


def index(req: webob.Request) -> webob.Response:
    if req.path_info.endswith("/"):
        return no_id(req)
    ctx = _authorize(req, "get")
    filters: dict[str, Any] = {}
    all_tenants = req.GET.get("all_tenants", "").lower() in ("1", "true", "yes", "on")
    if not (ctx.is_admin and all_tenants):
        filters["project_id"] = ctx.project_id
    groups = services.network.list_security_groups(ctx, **filters)
    names = {g["id"]: g for g in groups}
    views = [_group_view(g, names) for g in groups]
    offset, limit = req.GET.get("offset"), req.GET.get("limit")
    if offset and offset.isdigit():
        views = views[int(offset):]
    if limit and limit.isdigit():
        views = views[:int(limit)]
    return json_response({"security_groups": views})


def show(req: webob.Request, group_id: str) -> webob.Response:
    ctx = _authorize(req, "show")
    return json_response({"security_group": _group_view(_get(ctx, group_id))})


def create(req: webob.Request) -> webob.Response:
    ctx = _authorize(req, "create")
    body = read_json(req)
    validate(GROUP_SCHEMA, body)
    wanted = body["security_group"]
    try:
        made = _call(ctx, "create_security_group",
                     body={"name": wanted["name"], "description": wanted["description"]})
    except exception.Conflict as exc:
        raise exception.Invalid(exc.message) from None
    return json_response({"security_group": _group_view(made)})


def update(req: webob.Request, group_id: str) -> webob.Response:
    ctx = _authorize(req, "update")
    body = read_json(req)
    validate(GROUP_SCHEMA, body)
    _get(ctx, group_id)
    wanted = body["security_group"]
    try:
        changed = _call(ctx, "update_security_group", group_id=group_id,
                        body={"name": wanted["name"], "description": wanted["description"]})
    except exception.Conflict as exc:
        raise exception.Invalid(exc.message) from None
    return json_response({"security_group": _group_view(changed)})


def delete(req: webob.Request, group_id: str) -> webob.Response:
    ctx = _authorize(req, "delete")
    group = _get(ctx, group_id)
    if group["name"] == "default":
        raise exception.Invalid("Removing default security group not allowed.")
    try:
        _call(ctx, "delete_security_group", group_id=group_id)
    except exception.Conflict as exc:
        raise exception.Invalid(exc.message) from None
    return empty_response(202)


# -- os-security-group-rules ------------------------------------------------

def _port(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise exception.Invalid(f"Invalid {name} value: {value}.") from None


def _rule_body(rule: dict[str, Any]) -> dict[str, Any]:
    """Nova's checks of an ingress rule, then the network service's body for it."""
    protocol = (rule.get("ip_protocol") or "").lower() or None
    body: dict[str, Any] = {"security_group_id": rule["parent_group_id"],
                            "direction": "ingress", "ethertype": "IPv4"}
    if protocol is not None:
        if protocol not in ("tcp", "udp", "icmp") and not (
                protocol.isdigit() and 0 <= int(protocol) <= 255):
            raise exception.Invalid(f"Invalid IP protocol {rule.get('ip_protocol')}.")
        body["protocol"] = protocol
        low = _port("from_port", rule.get("from_port"))
        high = _port("to_port", rule.get("to_port"))
        if protocol in ("tcp", "udp"):
            for name, value in (("from_port", low), ("to_port", high)):
                if not 1 <= value <= 65535:
                    raise exception.Invalid(f"Invalid port range {low}:{high}. Valid TCP "
                                            f"ports should be between 1-65535 ({name}).")
            if low > high:
                raise exception.Invalid(f"Invalid port range {low}:{high}. Former value "
                                        "cannot be greater than the later")
            body["port_range_min"], body["port_range_max"] = low, high
        elif protocol == "icmp":
            for name, value in (("type", low), ("code", high)):
                if not -1 <= value <= 255:
                    raise exception.Invalid(f"Invalid ICMP {name} value: {value}.")
            if low != -1:
                body["port_range_min"] = low
                if high != -1:
                    body["port_range_max"] = high
    if rule.get("group_id"):
        if rule.get("cidr"):
            raise exception.Invalid("Only one of cidr and group_id may be given.")
        body["remote_group_id"] = rule["group_id"]
    else:
        cidr = rule.get("cidr") or "0.0.0.0/0"
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise exception.Invalid(f"Invalid cidr {cidr}.") from None
        body["remote_ip_prefix"] = cidr  # as given: Nova shows the rule's cidr unchanged
        body["ethertype"] = f"IPv{network.version}"
    return body


def rule_create(req: webob.Request) -> webob.Response:
    ctx = _authorize(req, "rule:create")
    payload = read_json(req)
    validate(RULE_SCHEMA, payload)
    rule = payload["security_group_rule"]
    _check_id(rule["parent_group_id"])
    if rule.get("group_id"):
        _check_id(rule["group_id"])
    body = _rule_body(rule)
    parent = _get(ctx, rule["parent_group_id"])
    names = {parent["id"]: parent}
    if body.get("remote_group_id"):
        names[body["remote_group_id"]] = _get(ctx, body["remote_group_id"])
    try:
        made = _call(ctx, "create_security_group_rule", body=body)
    except exception.Conflict:
        raise exception.Invalid(
            f"This rule already exists in group {rule['parent_group_id']}") from None
    return json_response({"security_group_rule": _rule_view(made, names)})


def rule_delete(req: webob.Request, rule_id: str) -> webob.Response:
    ctx = _authorize(req, "rule:delete")
    try:
        _call(ctx, "delete_security_group_rule", rule_id=rule_id)
    except exception.NotFound:
        raise exception.NotFound(f"Security group rule {rule_id} not found.") from None
    return empty_response(202)


# -- a server's groups -------------------------------------------------------

def _server_ports(req: webob.Request, server_id: str, action: str):
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, RULE % action, {"project_id": server["project_id"]})
    return ctx, services.network.list_ports(ctx, device_id=server_id)


def server_index(req: webob.Request, server_id: str) -> webob.Response:
    ctx, ports = _server_ports(req, server_id, "list")
    ids = sorted({g for p in ports for g in p.get("security_groups") or []})
    groups = [_get(ctx, group_id) for group_id in ids]
    names = {g["id"]: g for g in groups}
    return json_response({"security_groups": [_group_view(g, names) for g in groups]})


def _named(ctx, project_id: str, name: str) -> dict[str, Any]:
    found = services.network.list_security_groups(ctx, project_id=project_id, name=name)
    if not found:
        found = [g for g in services.network.list_security_groups(ctx, id=name)]
    if len(found) != 1:
        raise exception.NotFound(f"Security group {name} not found for project "
                                 f"{project_id}.")
    return found[0]


def _change_groups(req: webob.Request, server_id: str, args: Any, adding: bool
                   ) -> webob.Response:
    ctx, ports = _server_ports(req, server_id, "add" if adding else "remove")
    validate(_ACTION_SCHEMA, args)
    _, server = compute_api.get(ctx, server_id)
    group = _named(ctx, server["project_id"], args["name"])
    if not ports:
        raise exception.Invalid(f"Server {server_id} has no network port to "
                                f"{'add security group to' if adding else 'remove it from'}.")
    holding = [p for p in ports if group["id"] in (p.get("security_groups") or [])]
    if adding and len(holding) == len(ports):
        raise exception.Invalid(f"Security group {args['name']} is already associated "
                                f"with the instance {server_id}")
    if not adding and not holding:
        raise exception.Invalid(f"Security group {args['name']} not associated with the "
                                f"instance {server_id}")
    names: dict[str, list[str]] = {}
    for port in ports:
        current = list(port.get("security_groups") or [])
        wanted = (current + [group["id"]] if group["id"] not in current else current) \
            if adding else [g for g in current if g != group["id"]]
        if wanted != current:
            _call(ctx, "update_port", port_id=port["id"], body={"security_groups": wanted})
        names[port["id"]] = [_get(ctx, g)["name"] for g in wanted]
    _record_on_vifs(server_id, names)
    return empty_response(202)


def _record_on_vifs(server_id: str, names: dict[str, list[str]]) -> None:
    """The server view names its groups from its VIFs (as Nova's from the instance):
    write each port's groups there, in the server's cell."""
    with cell_session(cells.cell_of_instance(server_id)) as session:
        for vif in session.scalars(select(cm.VirtualInterface).where(
                cm.VirtualInterface.instance_uuid == server_id,
                cm.VirtualInterface.deleted == 0)):
            if vif.uuid in names:
                vif.info = {**(vif.info or {}), "security_groups": names[vif.uuid]}


def _add(req: webob.Request, server_id: str, args: Any) -> webob.Response:
    return _change_groups(req, server_id, args, adding=True)


def _remove(req: webob.Request, server_id: str, args: Any) -> webob.Response:
    return _change_groups(req, server_id, args, adding=False)


ACTIONS = {"addSecurityGroup": _add, "removeSecurityGroup": _remove}
