"""Networks and their subnets."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, ipam, scope, segments, views
from transcell.network import exceptions as exc
from transcell.network.models import IPAllocation, Network, Port, Subnet, new_id

#: ports the network service itself would own; they never keep a network in use
SERVICE_OWNERS = ("network:dhcp",)


class Networks:
    db_url: str

    def create_network(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return self._add_network(session, ctx, body)

    def _add_network(self, session: Session, ctx: RequestContext, body: dict[str, Any]
                     ) -> dict[str, Any]:
        """Create a network in ``session``'s transaction (a bulk create shares one)."""
        values = attributes.check("network", attributes.NETWORK, body, ctx, creating=True)
        net = Network(id=values.pop("id", None) or new_id(),
                      project_id=attributes.owner_project(ctx, values))
        attributes.apply(net, values)
        session.add(net)
        session.flush()
        session.refresh(net)
        return views.network(net)

    def get_network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.network(scope.load_network(session, ctx, network_id))

    def list_networks(self, ctx: RequestContext, filters: scope.Filters | None = None
                      ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(Network).order_by(Network.created_at, Network.id)
        clause = scope.network_clause(ctx)
        if clause is not None:
            query = query.where(clause)
        query = scope.sql_prefilter(query, Network, wanted, ("id", "name", "tenant_id",
                                                              "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.network(net) for net in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_network(self, ctx: RequestContext, network_id: str, body: dict[str, Any]
                       ) -> dict[str, Any]:
        values = attributes.check("network", attributes.NETWORK, body, ctx, creating=False)
        with session_for(self.db_url) as session:
            net = scope.load_network(session, ctx, network_id)
            scope.require_owner(ctx, net.project_id, "update_network")
            if values.get("shared") is False and net.shared:
                self._check_unshare(session, net)
            attributes.apply(net, values)
            net.revision_number += 1
            session.flush()
            return views.network(net)

    @staticmethod
    def _check_unshare(session, net: Network) -> None:
        others = session.scalar(select(func.count()).select_from(Port).where(
            Port.network_id == net.id, Port.project_id != net.project_id))
        if others:
            raise exception.Conflict(
                f"Unable to reconfigure sharing settings for network {net.id}. "
                "Multiple tenants are using it.")

    def delete_network(self, ctx: RequestContext, network_id: str) -> None:
        with session_for(self.db_url) as session:
            net = scope.load_network(session, ctx, network_id)
            scope.require_owner(ctx, net.project_id, "delete_network")
            in_use = session.scalar(select(func.count()).select_from(Port).where(
                Port.network_id == net.id, Port.device_owner.not_in(SERVICE_OWNERS)))
            if in_use:
                raise exc.NetworkInUse(net_id=net.id)
            session.delete(net)


class Subnets:
    db_url: str

    def create_subnet(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return self._add_subnet(session, ctx, body)

    def _add_subnet(self, session: Session, ctx: RequestContext, body: dict[str, Any]
                    ) -> dict[str, Any]:
        """Create a subnet in ``session``'s transaction (a bulk create shares one)."""
        values = attributes.check("subnet", attributes.SUBNET, body, ctx, creating=True)
        values.pop("subnetpool_id", None)
        project = attributes.owner_project(ctx, values)
        cidr = ipam.parse_cidr(values.pop("cidr"), values.pop("ip_version", None))
        gateway = ipam.validate_gateway(
            cidr, values.pop("gateway_ip") if "gateway_ip" in values
            else ipam.default_gateway(cidr))
        pools = values.pop("allocation_pools", None)
        pools = (ipam.validate_pools(cidr, pools, gateway) if pools is not None
                 else ipam.default_pools(cidr, gateway))
        self._check_family(cidr, values)
        net = scope.load_network(session, ctx, values["network_id"])
        scope.require_owner(ctx, net.project_id, "create_subnet")
        segments.check_subnet_segment(session, net, values.get("segment_id"))
        for other in net.subnets:
            if ipaddress.ip_network(other.cidr).overlaps(cidr):
                raise exc.InvalidInput(
                    error_message=f"Requested subnet with cidr: {cidr} for network: "
                                  f"{net.id} overlaps with another subnet")
        sub = Subnet(id=values.pop("id", None) or new_id(), project_id=project,
                     cidr=str(cidr), ip_version=cidr.version, gateway_ip=gateway,
                     allocation_pools=pools)
        attributes.apply(sub, values)
        session.add(sub)
        net.revision_number += 1
        session.flush()
        # the next subnet of a bulk create checks its overlaps against this one too
        session.expire(net, ["subnets"])
        return views.subnet(sub)

    @staticmethod
    def _check_family(cidr, values: dict[str, Any]) -> None:
        for server in values.get("dns_nameservers", []):
            if ipaddress.ip_address(server).version != cidr.version:
                raise exc.InvalidInput(
                    error_message=f"DNS server {server} is not an IPv{cidr.version} address")

    def get_subnet(self, ctx: RequestContext, subnet_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.subnet(scope.load_subnet(session, ctx, subnet_id))

    def list_subnets(self, ctx: RequestContext, filters: scope.Filters | None = None
                     ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(Subnet).order_by(Subnet.created_at, Subnet.id)
        clause = scope.subnet_clause(ctx)
        if clause is not None:
            query = query.where(clause)
        query = scope.sql_prefilter(query, Subnet, wanted, ("id", "network_id", "name"))
        with session_for(self.db_url) as session:
            bodies = [views.subnet(sub) for sub in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_subnet(self, ctx: RequestContext, subnet_id: str, body: dict[str, Any]
                      ) -> dict[str, Any]:
        values = attributes.check("subnet", attributes.SUBNET, body, ctx, creating=False)
        with session_for(self.db_url) as session:
            sub = scope.load_subnet(session, ctx, subnet_id)
            scope.require_owner(ctx, sub.project_id, "update_subnet")
            cidr = ipaddress.ip_network(sub.cidr)
            gateway = (ipam.validate_gateway(cidr, values.pop("gateway_ip"))
                       if "gateway_ip" in values else sub.gateway_ip)
            pools = values.pop("allocation_pools", sub.allocation_pools)
            sub.allocation_pools = ipam.validate_pools(cidr, pools, gateway)
            sub.gateway_ip = gateway
            self._check_family(cidr, values)
            if "segment_id" in values:
                segments.change_subnet_segment(session, sub, values.pop("segment_id"))
            attributes.apply(sub, values)
            sub.revision_number += 1
            session.flush()
            return views.subnet(sub)

    def delete_subnet(self, ctx: RequestContext, subnet_id: str) -> None:
        with session_for(self.db_url) as session:
            sub = scope.load_subnet(session, ctx, subnet_id)
            scope.require_owner(ctx, sub.project_id, "delete_subnet")
            in_use = session.scalar(select(func.count()).select_from(IPAllocation).where(
                IPAllocation.subnet_id == sub.id))
            if in_use:
                raise exc.SubnetInUse(subnet_id=sub.id)
            session.delete(sub)
