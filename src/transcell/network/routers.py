"""Routers: records of which subnets a router joins, as Neutron shows them.

A router's interfaces are ports with ``device_owner`` network:router_interface
and the router's id as ``device_id``; an interface added by subnet gets the
subnet's gateway address. Nothing forwards packets: there is no data plane,
only the objects, their rules (a router with interfaces cannot go, nor can a
subnet one of them uses) and what clients read back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope, views
from transcell.network import exceptions as exc
from transcell.network.models import ACTIVE, IPAllocation, Port, Router, Subnet, new_id

INTERFACE_OWNER = "network:router_interface"
#: the device owners of the ports a router holds on its subnets
INTERFACE_OWNERS = (INTERFACE_OWNER, "network:router_interface_distributed",
                    "network:ha_router_replicated_interface")
MAC_ATTEMPTS = 8


def gateway_info(name: str, value: Any) -> dict[str, Any] | None:
    """None or {} clears the gateway; else an external network and SNAT flag."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise exception.Invalid(f"Invalid input for {name}. Reason: '{value}' is not a "
                                "dictionary.")
    unknown = sorted(set(value) - {"network_id", "enable_snat", "external_fixed_ips"})
    if unknown:
        raise exception.Invalid(f"Invalid input for {name}. Reason: unexpected keys "
                                f"{unknown}.")
    if "network_id" not in value:
        raise exception.Invalid(f"Invalid input for {name}. Reason: network_id is "
                                "required.")
    if value.get("external_fixed_ips"):
        raise exc.BadRequest(resource="router", msg="external_fixed_ips are not supported "
                                                    "(routers have no gateway port here)")
    return {"network_id": attributes.string(36)(f"{name}.network_id", value["network_id"]),
            "enable_snat": attributes.boolean(f"{name}.enable_snat",
                                              value.get("enable_snat", True))}


ROUTER: Mapping[str, attributes.Attr] = {
    "name": attributes.Attr(attributes.string(255), put=True),
    "admin_state_up": attributes.Attr(attributes.boolean, put=True),
    "external_gateway_info": attributes.Attr(gateway_info, put=True),
    "tenant_id": attributes.Attr(attributes.string(255)),
    "project_id": attributes.Attr(attributes.string(255)),
    "description": attributes.Attr(attributes.string(255), put=True),
    "tags": attributes.Attr(attributes.string_list),
}


def load_router(session: Session, ctx: RequestContext, router_id: str) -> Router:
    row = session.get(Router, router_id) if isinstance(router_id, str) else None
    if row is None or not scope.owns(ctx, row.project_id):
        raise exc.RouterNotFound(router_id=router_id)
    return row


def _lock_router(session: Session, ctx: RequestContext, router_id: str) -> Router:
    """The router, its row written first so concurrent changes to it queue here."""
    if isinstance(router_id, str):
        session.execute(Router.__table__.update().where(Router.id == router_id)
                        .values(revision_number=Router.revision_number + 1))
    return load_router(session, ctx, router_id)


def _set_gateway(session: Session, ctx: RequestContext, row: Router,
                 gateway: dict[str, Any] | None) -> None:
    if gateway is None:
        row.gw_network_id = None
        return
    net = scope.load_network(session, ctx, gateway["network_id"])
    if not net.router_external:
        raise exc.BadRequest(resource="router",
                             msg=f"Network {net.id} is not an external network")
    row.gw_network_id = net.id
    row.enable_snat = gateway["enable_snat"]


def _interface_body(row: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id,
            "port_id": port.id, "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}


def interface_request(body: Any, adding: bool) -> tuple[str | None, str | None]:
    """The (port_id, subnet_id) of an add or remove_router_interface body."""
    if not isinstance(body, dict) or not body:
        raise exc.BadRequest(resource="router",
                             msg="Either subnet_id or port_id must be specified")
    unknown = sorted(set(body) - {"port_id", "subnet_id"})
    if unknown:
        raise exception.Invalid(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    port_id, subnet_id = body.get("port_id"), body.get("subnet_id")
    for name, value in (("port_id", port_id), ("subnet_id", subnet_id)):
        if value is not None:
            attributes.uuid_like(name, value)
    if port_id is None and subnet_id is None:
        raise exc.BadRequest(resource="router",
                             msg="Either subnet_id or port_id must be specified")
    if adding and port_id is not None and subnet_id is not None:
        raise exc.BadRequest(resource="router",
                             msg="Cannot specify both subnet-id and port-id")
    return port_id, subnet_id


def _interfaces(session: Session, router_id: str) -> list[Port]:
    return list(session.scalars(select(Port).where(
        Port.device_id == router_id, Port.device_owner.in_(INTERFACE_OWNERS))
        .order_by(Port.created_at, Port.id)))


def _check_new_subnets(session: Session, row: Router, subnets: list[Subnet]) -> None:
    """Neutron's rule: a router joins a subnet once, and its subnets never overlap."""
    taken = [session.get(Subnet, ip.subnet_id) for port in _interfaces(session, row.id)
             for ip in port.fixed_ips]
    for subnet in subnets:
        cidr = ipaddress.ip_network(subnet.cidr)
        for other in taken:
            if other is None:
                continue
            if other.id == subnet.id:
                raise exc.BadRequest(resource="router",
                                     msg=f"Router already has a port on subnet {subnet.id}")
            if cidr.version == ipaddress.ip_network(other.cidr).version and \
                    cidr.overlaps(ipaddress.ip_network(other.cidr)):
                raise exc.BadRequest(
                    resource="router", msg=f"Cidr {subnet.cidr} of subnet {subnet.id} "
                                           f"overlaps with cidr {other.cidr} of subnet "
                                           f"{other.id}")


def _gateway_port(session: Session, row: Router, subnet: Subnet) -> Port:
    """A new interface port holding the subnet's gateway address."""
    from transcell.network.ports import random_mac  # ports imports this module
    if subnet.gateway_ip is None:
        raise exc.BadRequest(resource="router",
                             msg="Subnet for router interface must have a gateway IP")
    for attempt in range(MAC_ATTEMPTS):
        port = Port(id=new_id(), network_id=subnet.network_id, project_id=row.project_id,
                    mac_address=random_mac(), device_id=row.id,
                    device_owner=INTERFACE_OWNER, status=ACTIVE,
                    port_security_enabled=False, security_groups=[])
        try:
            with session.begin_nested():
                session.add(port)
        except IntegrityError:
            if attempt == MAC_ATTEMPTS - 1:
                raise exc.MacAddressInUse(net_id=subnet.network_id,
                                          mac=port.mac_address) from None
            continue
        break
    try:
        with session.begin_nested():
            session.add(IPAllocation(port_id=port.id, subnet_id=subnet.id,
                                     ip_address=subnet.gateway_ip))
    except IntegrityError:
        raise exc.IpAddressAlreadyAllocated(ip=subnet.gateway_ip,
                                            subnet_id=subnet.id) from None
    return port


class Routers:
    db_url: str

    def create_router(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        values = attributes.check("router", ROUTER, body, ctx, creating=True)
        project = attributes.owner_project(ctx, values)
        gateway = values.pop("external_gateway_info", None)
        with session_for(self.db_url) as session:
            row = Router(id=new_id(), project_id=project)
            attributes.apply(row, values)
            _set_gateway(session, ctx, row, gateway)
            session.add(row)
            session.flush()
            session.refresh(row)
            return views.router(row)

    def get_router(self, ctx: RequestContext, router_id: str) -> dict[str, Any]:
        with session_for(self.db_url) as session:
            return views.router(load_router(session, ctx, router_id))

    def list_routers(self, ctx: RequestContext, filters: scope.Filters | None = None
                     ) -> list[dict[str, Any]]:
        wanted = scope.normalize(filters)
        query = select(Router).order_by(Router.created_at, Router.id)
        if not ctx.is_admin:
            query = query.where(Router.project_id == ctx.project_id)
        query = scope.sql_prefilter(query, Router, wanted,
                                    ("id", "name", "tenant_id", "project_id"))
        with session_for(self.db_url) as session:
            bodies = [views.router(row) for row in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_router(self, ctx: RequestContext, router_id: str, body: dict[str, Any]
                      ) -> dict[str, Any]:
        values = attributes.check("router", ROUTER, body, ctx, creating=False)
        with session_for(self.db_url) as session:
            row = _lock_router(session, ctx, router_id)
            if "external_gateway_info" in values:
                _set_gateway(session, ctx, row, values.pop("external_gateway_info"))
            attributes.apply(row, values)
            session.flush()
            return views.router(row)

    def delete_router(self, ctx: RequestContext, router_id: str) -> None:
        with session_for(self.db_url) as session:
            row = _lock_router(session, ctx, router_id)
            if _interfaces(session, row.id):
                raise exc.RouterInUse(router_id=row.id, reason="still has ports")
            session.delete(row)

    def add_router_interface(self, ctx: RequestContext, router_id: str, body: Any
                             ) -> dict[str, Any]:
        port_id, subnet_id = interface_request(body, adding=True)
        with session_for(self.db_url) as session:
            row = _lock_router(session, ctx, router_id)
            if subnet_id is not None:
                subnet = scope.load_subnet(session, ctx, subnet_id)
                _check_new_subnets(session, row, [subnet])
                port = _gateway_port(session, row, subnet)
                return _interface_body(row, port, [subnet.id])
            scope.lock_port(session, port_id)
            port = scope.load_port(session, ctx, port_id)
            if port.device_id or port.device_owner:
                raise exc.PortInUse(port_id=port.id, net_id=port.network_id,
                                    device_id=port.device_id or port.device_owner)
            if not port.fixed_ips:
                raise exc.BadRequest(resource="router",
                                     msg="Router port must have at least one fixed IP")
            subnets = [session.get(Subnet, ip.subnet_id) for ip in port.fixed_ips]
            _check_new_subnets(session, row, [s for s in subnets if s is not None])
            port.device_id, port.device_owner, port.status = row.id, INTERFACE_OWNER, ACTIVE
            session.flush()
            return _interface_body(row, port, [ip.subnet_id for ip in port.fixed_ips])

    def remove_router_interface(self, ctx: RequestContext, router_id: str, body: Any
                                ) -> dict[str, Any]:
        port_id, subnet_id = interface_request(body, adding=False)
        with session_for(self.db_url) as session:
            row = _lock_router(session, ctx, router_id)
            if subnet_id is not None:
                scope.load_subnet(session, ctx, subnet_id)
            ports = _interfaces(session, row.id)
            if port_id is not None:
                port = next((p for p in ports if p.id == port_id), None)
                if port is None:
                    raise exc.RouterInterfaceNotFound(router_id=row.id, port_id=port_id)
                if subnet_id is not None and subnet_id not in {
                        ip.subnet_id for ip in port.fixed_ips}:
                    raise exc.BadRequest(resource="router",
                                         msg=f"Subnet on port {port_id} does not match "
                                             f"the requested subnet {subnet_id}")
            else:
                port = next((p for p in ports
                             if subnet_id in {ip.subnet_id for ip in p.fixed_ips}), None)
                if port is None:
                    raise exc.RouterInterfaceNotFoundForSubnet(router_id=row.id,
                                                               subnet_id=subnet_id)
            subnet_ids = [ip.subnet_id for ip in port.fixed_ips]
            if subnet_id is not None and port_id is None and len(subnet_ids) > 1:
                # the port keeps its other subnets, as Neutron's does
                port.fixed_ips = [ip for ip in port.fixed_ips if ip.subnet_id != subnet_id]
                port.revision_number += 1
                subnet_ids = [subnet_id]
            else:
                session.delete(port)
            session.flush()
            return _interface_body(row, port, subnet_ids)


def router_of(session: Session, port: Port) -> Router | None:
    """The router an interface port belongs to, if it still exists."""
    if port.device_owner not in INTERFACE_OWNERS or not port.device_id:
        return None
    return session.get(Router, port.device_id)

