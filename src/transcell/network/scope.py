"""Who sees what, and Neutron's list filters.

A project sees its own resources, shared and external networks, the subnets of
networks it can see, and the ports on networks it owns; an administrator sees
everything. Anything a caller cannot see is reported as missing, never as
forbidden, so ids of other projects' resources do not leak.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.network import exceptions as exc
from transcell.network.models import Network, Port, Subnet

Filters = Mapping[str, Any]


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or project_id == ctx.project_id


def require_owner(ctx: RequestContext, project_id: str, action: str) -> None:
    if not owns(ctx, project_id):
        raise exc.PolicyNotAuthorized(action=action)


def require_admin(ctx: RequestContext, action: str) -> None:
    if not ctx.is_admin:
        raise exc.PolicyNotAuthorized(action=action)


def network_clause(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(Network.project_id == ctx.project_id, Network.shared.is_(True),
               Network.router_external.is_(True))


def _owned_networks(ctx: RequestContext) -> Select:
    return select(Network.id).where(Network.project_id == ctx.project_id)


def subnet_clause(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    visible = select(Network.id).where(network_clause(ctx))
    return or_(Subnet.project_id == ctx.project_id, Subnet.network_id.in_(visible))


def port_clause(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(Port.project_id == ctx.project_id, Port.network_id.in_(_owned_networks(ctx)))


def can_see_network(ctx: RequestContext, net: Network) -> bool:
    return owns(ctx, net.project_id) or net.shared or net.router_external


def load_network(session: Session, ctx: RequestContext, network_id: str) -> Network:
    net = session.get(Network, network_id)
    if net is None or not can_see_network(ctx, net):
        raise exception.NetworkNotFound(network_id=network_id)
    return net


def load_subnet(session: Session, ctx: RequestContext, subnet_id: str) -> Subnet:
    sub = session.get(Subnet, subnet_id)
    if sub is None or not (owns(ctx, sub.project_id) or can_see_network(ctx, sub.network)):
        raise exc.SubnetNotFound(subnet_id=subnet_id)
    return sub


def port_owner_ok(ctx: RequestContext, row: Port, network_project: str) -> bool:
    return owns(ctx, row.project_id) or owns(ctx, network_project)


def load_port(session: Session, ctx: RequestContext, port_id: str) -> Port:
    row = session.get(Port, port_id)
    if row is None:
        raise exception.PortNotFound(port_id=port_id)
    if not ctx.is_admin:
        net = session.get(Network, row.network_id)
        if not port_owner_ok(ctx, row, net.project_id if net else ""):
            raise exception.PortNotFound(port_id=port_id)
    return row


def lock_port(session: Session, port_id: str) -> None:
    """Start the write transaction on the port row before anything else reads.

    On SQLite this takes the database write lock now, so a read-then-write
    sequence cannot race another writer; elsewhere it is a row lock.
    """
    session.execute(Port.__table__.update().where(Port.id == port_id)
                    .values(revision_number=Port.revision_number + 1))


# --- filters ---------------------------------------------------------------

def normalize(filters: Filters | None) -> dict[str, list[str]]:
    """Every filter as a list of strings: repeated query keys mean OR."""
    result: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        values = value if isinstance(value, list | tuple | set) else [value]
        result[key] = [str(v) for v in values]
    return result


def _as_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise exception.Invalid(f"Invalid input for {key}. Reason: '{value}' cannot be "
                            "converted to boolean.")


def _match_value(key: str, actual: Any, wanted: list[str]) -> bool:
    if isinstance(actual, bool):
        return any(_as_bool(key, w) == actual for w in wanted)
    if isinstance(actual, list):
        return any(str(item) in wanted for item in actual)
    if actual is None:
        return any(w in ("", "None") for w in wanted)
    return str(actual) in wanted


def _match_fixed_ips(fixed: list[dict[str, str]], wanted: list[str]) -> bool:
    by_key: dict[str, list[str]] = {}
    for item in wanted:
        key, _, value = item.partition("=")
        if key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise exception.Invalid(f"Invalid input for fixed_ips. Reason: '{item}' "
                                    "is not of the form ip_address=IP or subnet_id=ID.")
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        if key == "ip_address_substr":
            if not any(v in ip["ip_address"] for ip in fixed for v in values):
                return False
        elif not any(ip[key] in values for ip in fixed):
            return False
    return True


def _match_tags(tags: list[str], key: str, wanted: list[str]) -> bool:
    names = {t for value in wanted for t in value.split(",") if t}
    have = set(tags)
    return {
        "tags": names <= have,
        "tags-any": bool(names & have),
        "not-tags": not names <= have,
        "not-tags-any": not names & have,
    }[key]


TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def matches(body: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if key in TAG_FILTERS:
            if not _match_tags(body.get("tags", []), key, wanted):
                return False
        elif key == "fixed_ips" and "fixed_ips" in body:
            if not _match_fixed_ips(body["fixed_ips"], wanted):
                return False
        elif key not in body:
            raise exception.Invalid(f"[{key}] is invalid attribute for filtering")
        elif not _match_value(key, body[key], wanted):
            return False
    return True


def sql_prefilter(query: Select, model: Any, filters: Mapping[str, list[str]],
                  keys: Iterable[str]) -> Select:
    """Narrow a query in SQL by plain indexed columns; ``matches`` still decides."""
    for key in keys:
        column = "project_id" if key == "tenant_id" else key
        if key in filters:
            query = query.where(getattr(model, column).in_(filters[key]))
    return query
