"""Ports: a MAC address and fixed IPs on a network, for a device to plug in."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import (
    attributes,
    bindings,
    ipam,
    routers,
    routing,
    scope,
    security_groups,
    views,
)
from transcell.network import exceptions as exc
from transcell.network.cells import CellDirectory
from transcell.network.models import Network, Port, Subnet, new_id

MAC_PREFIX = "fa:16:3e"
MAC_ATTEMPTS = 8

FixedIP = tuple[Subnet, str | None]


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{random.randrange(256):02x}" for _ in range(3))


class _MacTaken(Exception):
    """The port row lost a uniqueness race; retried with a fresh MAC."""


@dataclass
class _NewPort:
    """A checked port create request, ready to insert."""

    values: dict[str, Any]
    project: str
    groups: list[str] | None
    default_group: str
    wanted_mac: str | None


def _resolve(ctx: RequestContext, net: Network, item: dict[str, str]) -> FixedIP:
    """The subnet (and address, if one was asked for) of one fixed_ips entry."""
    ip = item.get("ip_address")
    if ip is not None and not (ctx.is_admin or net.project_id == ctx.project_id):
        raise exc.PolicyNotAuthorized(action="create_port:fixed_ips:ip_address")
    if "subnet_id" in item:
        subnet = next((s for s in net.subnets if s.id == item["subnet_id"]), None)
        if subnet is None:
            raise exc.InvalidInput(
                error_message=f"Failed to create port on network {net.id}, because "
                              f"fixed_ips included invalid subnet {item['subnet_id']}")
    else:
        address = ipaddress.ip_address(ip)
        subnet = next((s for s in net.subnets
                       if address in ipaddress.ip_network(s.cidr)), None)
        if subnet is None:
            raise exc.InvalidIpForNetwork(ip_address=ip)
    if ip is not None:
        ipam.check_requested(subnet, ip)
    return subnet, ip


def _allocate_default(session: Session, port: Port, net: Network) -> None:
    """One address per IP version, from the first subnet of that version with room."""
    for version in (4, 6):
        subnets = [s for s in net.subnets if s.ip_version == version]
        for subnet in subnets:
            try:
                ipam.allocate(session, port.id, subnet)
                break
            except exc.IpAddressGenerationFailure:
                continue
        else:
            if subnets:
                raise exc.IpAddressGenerationFailure(net_id=net.id)


def _free_mac(session: Session) -> str:
    """A MAC no port has yet (MACs are unique across networks here)."""
    while True:
        mac = random_mac()
        if session.scalar(select(Port.id).where(Port.mac_address == mac)) is None:
            return mac


def _finish(session: Session, port: Port) -> dict[str, Any]:
    session.flush()
    session.refresh(port)
    return views.port(port)


class Ports:
    db_url: str
    cells: CellDirectory

    def create_port(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return self._create_port(ctx, body)

    def _create_port(self, ctx: RequestContext, body: dict[str, Any], **internal: Any
                     ) -> dict[str, Any]:
        """Create a port; ``internal`` sets columns no API client may set."""
        return self._place_port(None, ctx, self._prepare_port(ctx, body), internal)

    def _prepare_port(self, ctx: RequestContext, body: dict[str, Any]) -> _NewPort:
        """The checks and lookups a port create does outside its own transaction
        (the project's default security group may be made here, in a session of its own)."""
        values = attributes.check("port", attributes.PORT, body, ctx, creating=True)
        project = attributes.owner_project(ctx, values)
        groups = values.pop("security_groups", None)
        if groups is not None:
            security_groups.check_groups(self.db_url, ctx, groups)
        default_group = security_groups.default_group_id(self.db_url, project)
        wanted_mac = values.pop("mac_address", None)
        if wanted_mac is not None and not ctx.is_admin:
            self._check_network_owner(ctx, values["network_id"], "create_port:mac_address")
        return _NewPort(values, project, groups, default_group, wanted_mac)

    def _place_port(self, session: Session | None, ctx: RequestContext, new: _NewPort,
                    internal: dict[str, Any]) -> dict[str, Any]:
        """Insert a prepared port, in a transaction of its own, or (bulk) in ``session``
        with a MAC no port has yet; a race lost there fails the whole bulk
        (SQLite's driver would commit a savepoint opened before the first write)."""
        if session is not None:
            network_id = new.values["network_id"]
            mac = new.wanted_mac or _free_mac(session)
            try:
                return self._insert_port(session, ctx, new.project, dict(new.values), mac,
                                         new.groups, new.default_group, internal)
            except _MacTaken:
                raise exc.MacAddressInUse(net_id=network_id, mac=mac) from None
        for attempt in range(MAC_ATTEMPTS):
            mac = new.wanted_mac or random_mac()
            try:
                with session_for(self.db_url) as own:
                    return self._insert_port(own, ctx, new.project, dict(new.values), mac,
                                             new.groups, new.default_group, internal)
            except _MacTaken:
                if new.wanted_mac or attempt == MAC_ATTEMPTS - 1:
                    raise exc.MacAddressInUse(net_id=new.values["network_id"],
                                              mac=mac) from None
        raise AssertionError("unreachable")

    def _check_network_owner(self, ctx: RequestContext, network_id: str, action: str
                             ) -> None:
        with session_for(self.db_url) as session:
            net = scope.load_network(session, ctx, network_id)
            if not scope.owns(ctx, net.project_id):
                raise exc.PolicyNotAuthorized(action=action)

    def _insert_port(self, session: Session, ctx: RequestContext, project: str,
                     values: dict[str, Any], mac: str, groups: list[str] | None,
                     default_group: str, internal: dict[str, Any]) -> dict[str, Any]:
        net = scope.load_network(session, ctx, values["network_id"])
        if not (scope.owns(ctx, net.project_id) or net.shared):
            raise exc.PolicyNotAuthorized(action="create_port")
        requested = values.pop("fixed_ips", None)
        fixed = ([_resolve(ctx, net, item) for item in requested]
                 if requested is not None else None)
        secure = values.pop("port_security_enabled", net.port_security_enabled)
        if groups is None:
            groups = [default_group] if secure else []
        host = values.pop("binding:host_id", "")
        port_id = values.pop("id", None) or new_id()
        if session.get(Port, port_id) is not None:
            raise exception.Conflict(f"Port {port_id} already exists.")
        routed = routing.is_routed(net)
        allocation = (routing.NO_ADDRESS if fixed == [] else
                      routing.DEFERRED if routed and fixed is None and not host
                      else routing.IMMEDIATE)
        port = Port(id=port_id, project_id=project,
                    mac_address=mac, port_security_enabled=secure,
                    security_groups=groups, ip_allocation=allocation, **internal)
        attributes.apply(port, values)
        session.add(port)
        try:
            session.flush()
        except IntegrityError as err:
            raise _MacTaken() from err
        if fixed is None and not routed:
            _allocate_default(session, port, net)
        for subnet, ip in fixed or []:
            ipam.allocate(session, port.id, subnet, ip)
        if host:
            routing.place(session, self.cells, port, net, host)
            bindings.plug(session, port, host)
        return _finish(session, port)

    def get_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.port(scope.load_port(session, ctx, port_id))

    def list_ports(self, ctx: RequestContext, filters: scope.Filters | None = None
                   ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(Port).order_by(Port.created_at, Port.id)
        clause = scope.port_clause(ctx)
        if clause is not None:
            query = query.where(clause)
        query = scope.sql_prefilter(query, Port, wanted, (
            "id", "network_id", "device_id", "mac_address", "tenant_id", "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.port(row) for row in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_port(self, ctx: RequestContext, port_id: str, body: dict[str, Any],
                    if_revision: int | None = None) -> dict[str, Any]:
        """``if_revision``: change nothing unless the port is still at that revision
        (Neutron's ``If-Match: revision_number=N``), for read-check-write callers."""
        return self._update_port(ctx, port_id, body, if_revision=if_revision)

    def _update_port(self, ctx: RequestContext, port_id: str, body: dict[str, Any],
                     require_unattached: bool = False, if_revision: int | None = None,
                     **internal: Any) -> dict[str, Any]:
        values = attributes.check("port", attributes.PORT, body, ctx, creating=False)
        groups = values.pop("security_groups", None)
        if groups is not None:
            security_groups.check_groups(self.db_url, ctx, groups)
        with session_for(self.db_url) as session:
            scope.lock_port(session, port_id)
            port = scope.load_port(session, ctx, port_id)
            current = port.revision_number - 1  # lock_port has just counted this update
            if if_revision is not None and current != if_revision:
                raise exc.RevisionNumberConstraintFailed(
                    constraint=f"revision_number={if_revision}", current=current)
            net = session.get(Network, port.network_id)
            if require_unattached and port.device_id:
                raise exc.PortInUse(port_id=port.id, net_id=port.network_id,
                                    device_id=port.device_id)
            if "mac_address" in values:
                self._check_new_mac(session, port, values["mac_address"])
            host = values.pop("binding:host_id", None)
            active = port.active_binding()
            if "fixed_ips" in values:
                self._replace_fixed_ips(session, ctx, port, net, values.pop("fixed_ips"))
                session.expire(port, ["fixed_ips"])
                if active is not None and not host:
                    routing.place(session, self.cells, port, net, active.host,
                                  allocate=False)
            if groups is not None:
                port.security_groups = groups
            attributes.apply(port, values)
            for column, value in internal.items():
                setattr(port, column, value)
            if active is not None and host is None:
                self._refresh_binding(active, values)
            if host:
                routing.place(session, self.cells, port, net, host)
                bindings.plug(session, port, host, values.get("binding:vnic_type"),
                              values.get("binding:profile"))
            elif host == "":
                bindings.unplug(session, port)
            return _finish(session, port)

    @staticmethod
    def _check_new_mac(session: Session, port: Port, mac: str) -> None:
        """A plugged-in port keeps its MAC, and a new one must be free; the unique
        key still stops a concurrent update that takes it at the same moment."""
        active = port.active_binding()
        if active is not None and mac != port.mac_address:
            raise exc.PortBound(port_id=port.id, host=active.host)
        holder = session.scalar(select(Port.id).where(Port.mac_address == mac))
        if holder is not None and holder != port.id:
            raise exc.MacAddressInUse(net_id=port.network_id, mac=mac)

    @staticmethod
    def _refresh_binding(active: Any, values: dict[str, Any]) -> None:
        if "binding:vnic_type" in values:
            active.vnic_type = values["binding:vnic_type"]
        if "binding:profile" in values:
            active.profile = dict(values["binding:profile"])

    @staticmethod
    def _replace_fixed_ips(session: Session, ctx: RequestContext, port: Port,
                           net: Network, requested: list[dict[str, str]]) -> None:
        """The port's addresses become exactly the requested ones, keeping what matches."""
        remaining = list(port.fixed_ips)
        new: list[FixedIP] = []
        for subnet, ip in (_resolve(ctx, net, item) for item in requested):
            kept = next((a for a in remaining if a.subnet_id == subnet.id
                         and (ip is None or a.ip_address == ip)), None)
            if kept is not None:
                remaining.remove(kept)
            else:
                new.append((subnet, ip))
        for allocation in remaining:
            port.fixed_ips.remove(allocation)
        session.flush()
        for subnet, ip in new:
            ipam.allocate(session, port.id, subnet, ip)

    def delete_port(self, ctx: RequestContext, port_id: str) -> None:
        with session_for(self.db_url) as session:
            port = scope.load_port(session, ctx, port_id)
            # a router's interface goes with remove_router_interface, as in Neutron;
            # one whose router is gone may be deleted
            if routers.router_of(session, port) is not None:
                raise exc.L3PortInUse(port_id=port.id, device_owner=port.device_owner)
            session.delete(port)
