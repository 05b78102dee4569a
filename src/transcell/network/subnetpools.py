"""Subnet pools: recorded prefixes a project or everyone may later carve subnets from.

The subset keeps the pools and their prefix bounds as Neutron checks them;
subnets are not yet allocated from a pool (a subnet's ``subnetpool_id`` stays
null), which is why a pool can always be deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, ipam, scope, views
from transcell.network import exceptions as exc
from transcell.network.models import SubnetPool, new_id

#: Neutron's default bounds per IP version: (min_prefixlen, max_prefixlen)
BOUNDS = {4: (8, 32), 6: (64, 128)}


def prefix_list(name: str, value: Any) -> list[str]:
    items = attributes.string_list(name, value)
    if not items:
        raise exc.InvalidInput(error_message=f"{name} must not be empty")
    return items


SUBNETPOOL: Mapping[str, attributes.Attr] = {
    "name": attributes.Attr(attributes.string(255), put=True, required=True),
    "prefixes": attributes.Attr(prefix_list, put=True, required=True),
    "default_prefixlen": attributes.Attr(attributes.integer(0, 128), put=True),
    "min_prefixlen": attributes.Attr(attributes.integer(0, 128), put=True),
    "max_prefixlen": attributes.Attr(attributes.integer(0, 128), put=True),
    "default_quota": attributes.Attr(attributes.optional(attributes.integer(0, 2**31 - 1)),
                                     put=True),
    "shared": attributes.Attr(attributes.boolean, admin=True, default=False),
    "is_default": attributes.Attr(attributes.boolean, put=True, admin=True, default=False),
    "address_scope_id": attributes.Attr(attributes.choice(None), put=True),
    "tenant_id": attributes.Attr(attributes.string(255)),
    "project_id": attributes.Attr(attributes.string(255)),
    "description": attributes.Attr(attributes.string(255), put=True),
    "tags": attributes.Attr(attributes.string_list),
}


def _prefixes(values: list[str]) -> tuple[int, list[str]]:
    """The version and the collapsed prefixes; all of one IP version."""
    nets = [ipam.parse_cidr(value) for value in values]
    versions = {net.version for net in nets}
    if len(versions) != 1:
        raise exc.InvalidInput(error_message="Cannot mix IPv4 and IPv6 prefixes in a "
                                             "subnet pool")
    collapsed = ipaddress.collapse_addresses(nets)  # type: ignore[type-var]
    return versions.pop(), [str(net) for net in collapsed]


def _check_bounds(row: SubnetPool) -> None:
    low, high = 0, 32 if row.ip_version == 4 else 128
    for name in ("min_prefixlen", "max_prefixlen", "default_prefixlen"):
        value = getattr(row, name)
        if not low <= value <= high:
            raise exc.InvalidInput(error_message=f"Illegal prefix bounds: {name}="
                                                 f"{value}, must be in {low}..{high}")
    if not row.min_prefixlen <= row.default_prefixlen <= row.max_prefixlen:
        raise exc.InvalidInput(error_message=(
            f"Illegal prefix bounds: min_prefixlen={row.min_prefixlen}, default_prefixlen="
            f"{row.default_prefixlen}, max_prefixlen={row.max_prefixlen}"))


def load_subnetpool(session: Session, ctx: RequestContext, pool_id: str) -> SubnetPool:
    row = session.get(SubnetPool, pool_id) if isinstance(pool_id, str) else None
    if row is None or not (scope.owns(ctx, row.project_id) or row.shared):
        raise exc.SubnetPoolNotFound(subnetpool_id=pool_id)
    return row


def _lock(session: Session, ctx: RequestContext, pool_id: str, action: str) -> SubnetPool:
    if isinstance(pool_id, str):
        session.execute(SubnetPool.__table__.update().where(SubnetPool.id == pool_id)
                        .values(revision_number=SubnetPool.revision_number + 1))
    row = load_subnetpool(session, ctx, pool_id)
    scope.require_owner(ctx, row.project_id, action)
    return row


class SubnetPools:
    db_url: str

    def create_subnetpool(self, ctx: RequestContext, body: dict[str, Any]
                          ) -> dict[str, Any]:
        values = attributes.check("subnetpool", SUBNETPOOL, body, ctx, creating=True)
        project = attributes.owner_project(ctx, values)
        values.pop("address_scope_id", None)
        version, prefixes = _prefixes(values.pop("prefixes"))
        low, high = BOUNDS[version]
        values.setdefault("min_prefixlen", low)
        values.setdefault("max_prefixlen", high)
        values.setdefault("default_prefixlen", values["min_prefixlen"])
        row = SubnetPool(id=new_id(), project_id=project, ip_version=version,
                         prefixes=prefixes)
        attributes.apply(row, values)
        _check_bounds(row)
        with session_for(self.db_url) as session:
            session.add(row)
            session.flush()
            session.refresh(row)
            return views.subnetpool(row)

    def get_subnetpool(self, ctx: RequestContext, pool_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.subnetpool(load_subnetpool(session, ctx, pool_id))

    def list_subnetpools(self, ctx: RequestContext, filters: scope.Filters | None = None
                         ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(SubnetPool).order_by(SubnetPool.created_at, SubnetPool.id)
        if not ctx.is_admin:
            query = query.where(or_(SubnetPool.project_id == ctx.project_id,
                                    SubnetPool.shared.is_(True)))
        query = scope.sql_prefilter(query, SubnetPool, wanted,
                                    ("id", "name", "tenant_id", "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.subnetpool(row) for row in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_subnetpool(self, ctx: RequestContext, pool_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
        values = attributes.check("subnetpool", SUBNETPOOL, body, ctx, creating=False)
        values.pop("address_scope_id", None)
        with session_for(self.db_url) as session:
            row = _lock(session, ctx, pool_id, "update_subnetpool")
            if "prefixes" in values:
                version, prefixes = _prefixes(values.pop("prefixes"))
                if version != row.ip_version:
                    raise exc.InvalidInput(error_message="Cannot mix IPv4 and IPv6 "
                                                         "prefixes in a subnet pool")
                old = [ipaddress.ip_network(p) for p in row.prefixes]
                new = [ipaddress.ip_network(p) for p in prefixes]
                if not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                    raise exc.InvalidInput(error_message="Existing prefixes must be a "
                                                         "subset of the new prefixes")
                row.prefixes = prefixes
            attributes.apply(row, values)
            _check_bounds(row)
            session.flush()
            return views.subnetpool(row)

    def delete_subnetpool(self, ctx: RequestContext, pool_id: str) -> None:
        with session_for(self.db_url) as session:
            session.delete(_lock(session, ctx, pool_id, "delete_subnetpool"))
