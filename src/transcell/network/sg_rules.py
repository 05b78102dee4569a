"""Security group rules, checked the way Neutron checks them.

A rule says which traffic a group lets in or out: a direction, an ethertype,
optionally a protocol with a port (or ICMP type/code) range, and a remote side
that is either an address prefix or another group, never both. A rule equal to
one the group already has is refused, whatever spelling of its protocol or
prefix it uses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope, views
from transcell.network import exceptions as exc
from transcell.network.models import SecurityGroup, SecurityGroupRule, new_id

#: IP protocol names Neutron accepts, with their numbers
PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
    "igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89,
    "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
#: protocols whose rules may carry a port range
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
ICMP = {1, 58}
IPV6_ONLY = {41, 43, 44, 58, 59, 60}


def _bad(name: str, reason: str) -> exception.Invalid:
    return exception.Invalid(f"Invalid input for {name}. Reason: {reason}.")


def ethertype(name: str, value: Any) -> str:
    for known in ("IPv4", "IPv6"):
        if isinstance(value, str) and value.lower() == known.lower():
            return known
    raise _bad(name, f"'{value}' is not in ['IPv4', 'IPv6']")


def protocol(name: str, value: Any) -> str | None:
    """A protocol name (lower case) or number 0-255 (as a string); "any" means none."""
    if value is None:
        return None
    text = str(value).strip().lower() if isinstance(value, str | int) and \
        not isinstance(value, bool) else None
    if text in ("any", ""):
        return None
    if text in PROTOCOLS:
        return text
    if text is not None and text.isdigit() and 0 <= int(text) <= 255:
        return str(int(text))
    raise exc.SecurityGroupRuleInvalidProtocol(
        protocol=value, values=", ".join(sorted(PROTOCOLS)) + " or an integer 0-255")


def port_value(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exc.SecurityGroupInvalidPortValue(port=value) from None
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise exc.SecurityGroupInvalidPortValue(port=value)
    return number


def prefix(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name, f"'{value}' is not a valid IP prefix")
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _bad(name, f"'{value}' is not a valid IP prefix") from None
    return value


RULE: Mapping[str, attributes.Attr] = {
    "id": attributes.Attr(attributes.uuid_like),
    "security_group_id": attributes.Attr(attributes.string(36), required=True),
    "direction": attributes.Attr(attributes.choice("ingress", "egress"), required=True),
    "ethertype": attributes.Attr(ethertype),
    "protocol": attributes.Attr(protocol),
    "port_range_min": attributes.Attr(port_value),
    "port_range_max": attributes.Attr(port_value),
    "remote_ip_prefix": attributes.Attr(prefix),
    "remote_group_id": attributes.Attr(attributes.optional(attributes.string(36))),
    "remote_address_group_id": attributes.Attr(attributes.choice(None)),
    "description": attributes.Attr(attributes.string(255)),
    "tenant_id": attributes.Attr(attributes.string(255)),
    "project_id": attributes.Attr(attributes.string(255)),
}


def number_of(proto: str | None) -> int | None:
    if proto is None:
        return None
    return PROTOCOLS[proto] if proto in PROTOCOLS else int(proto)


def check_rule(values: dict[str, Any]) -> None:
    """Neutron's cross-attribute rules: ports need a port protocol, ICMP takes a
    type and code, the remote is a prefix or a group, the prefix fits the ethertype."""
    kind = values.setdefault("ethertype", "IPv4")
    proto = number_of(values.get("protocol"))
    low, high = values.get("port_range_min"), values.get("port_range_max")
    if proto in IPV6_ONLY and kind == "IPv4":
        raise exc.SecurityGroupEthertypeConflictWithProtocol(ethertype=kind,
                                                             protocol=values["protocol"])
    if low is not None or high is not None:
        if proto is None:
            raise exc.SecurityGroupProtocolRequiredWithPorts()
        if proto in PORT_PROTOCOLS:
            if low == 0 or high == 0:
                raise exc.SecurityGroupInvalidPortValue(port=0)
            if low is None or high is None or low > high:
                raise exc.SecurityGroupInvalidPortRange()
        elif proto in ICMP:
            for field, attr, value in (("type", "port_range_min", low),
                                       ("code", "port_range_max", high)):
                if value is not None and not 0 <= value <= 255:
                    raise exc.SecurityGroupInvalidIcmpValue(field=field, attr=attr,
                                                            value=value)
            if low is None:
                raise exc.SecurityGroupMissingIcmpType(value=high)
        else:
            raise exc.SecurityGroupInvalidProtocolForPortRange(
                protocol=values["protocol"])
    remote = values.get("remote_ip_prefix")
    if remote is not None and values.get("remote_group_id") is not None:
        raise exc.SecurityGroupRemoteGroupAndRemoteIpPrefix()
    if remote is not None:
        version = ipaddress.ip_network(remote, strict=False).version
        if f"IPv{version}" != kind:
            raise exc.SecurityGroupRuleParameterConflict(ethertype=kind, cidr=remote)


def _identity(rule: SecurityGroupRule | dict[str, Any]) -> tuple:
    """What makes two rules the same rule: protocols by number, prefixes normalized."""
    def get(key: str) -> Any:
        return rule.get(key) if isinstance(rule, dict) else getattr(rule, key)
    remote = get("remote_ip_prefix")
    return (get("direction"), get("ethertype"), number_of(get("protocol")),
            get("port_range_min"), get("port_range_max"),
            str(ipaddress.ip_network(remote, strict=False)) if remote else None,
            get("remote_group_id"))


def load_rule(session: Session, ctx: RequestContext, rule_id: Any) -> SecurityGroupRule:
    rule = session.get(SecurityGroupRule, rule_id) if isinstance(rule_id, str) else None
    if rule is None or not scope.owns(ctx, rule.project_id):
        raise exc.SecurityGroupRuleNotFound(id=rule_id)
    return rule


class SecurityGroupRules:
    db_url: str

    def list_security_group_rules(self, ctx: RequestContext,
                                  filters: scope.Filters | None = None
                                  ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(SecurityGroupRule).order_by(SecurityGroupRule.created_at,
                                                   SecurityGroupRule.id)
        if not ctx.is_admin:
            query = query.where(SecurityGroupRule.project_id == ctx.project_id)
        query = scope.sql_prefilter(query, SecurityGroupRule, wanted,
                                    ("id", "security_group_id", "direction", "tenant_id",
                                     "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.security_group_rule(rule) for rule in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def get_security_group_rule(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.security_group_rule(load_rule(session, ctx, rule_id))

    def create_security_group_rule(self, ctx: RequestContext, body: dict[str, Any]
                                   ) -> dict[str, Any]:
        values = attributes.check("security_group_rule", RULE, body, ctx, creating=True)
        values.pop("remote_address_group_id", None)
        project = attributes.owner_project(ctx, values)
        check_rule(values)
        with session_for(self.db_url) as session:
            group = session.get(SecurityGroup, values["security_group_id"])
            if group is None or not scope.owns(ctx, group.project_id):
                raise exc.SecurityGroupNotFound(id=values["security_group_id"])
            if group.project_id != project and not ctx.is_admin:
                raise exc.PolicyNotAuthorized(action="create_security_group_rule")
            remote = values.get("remote_group_id")
            if remote is not None:
                other = session.get(SecurityGroup, remote)
                if other is None or not scope.owns(ctx, other.project_id):
                    raise exc.SecurityGroupNotFound(id=remote)
            # the group's revision is counted first, so two creators of one rule queue
            group.revision_number += 1
            session.flush()
            wanted = _identity(values)
            for rule in group.rules:
                if _identity(rule) == wanted:
                    raise exc.SecurityGroupRuleExists(rule_id=rule.id)
            rule_id = values.pop("id", None) or new_id()
            if session.get(SecurityGroupRule, rule_id) is not None:
                raise exc.SecurityGroupRuleExists(rule_id=rule_id)
            rule = SecurityGroupRule(id=rule_id, project_id=group.project_id)
            attributes.apply(rule, values)
            session.add(rule)
            session.flush()
            session.refresh(rule)
            return views.security_group_rule(rule)

    def delete_security_group_rule(self, ctx: RequestContext, rule_id: str) -> None:
        with session_for(self.db_url) as session:
            rule = load_rule(session, ctx, rule_id)
            scope.require_owner(ctx, rule.project_id, "delete_security_group_rule")
            group = session.get(SecurityGroup, rule.security_group_id)
            if group is not None:
                group.revision_number += 1
            session.delete(rule)
