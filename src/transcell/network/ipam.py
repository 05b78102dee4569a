"""Addresses: subnet geometry (gateway, allocation pools) and handing out IPs.

Allocation relies on the database's unique (subnet_id, ip_address) constraint
rather than on a lock: the first free address is tried inside a savepoint, and
an IntegrityError means another transaction took it first, so the next one is
tried. That holds across threads, processes and database engines alike.

The caller's transaction must already have written something (the port row)
before ``allocate`` opens its first savepoint: SQLite's driver starts
transactions lazily, and a SAVEPOINT that opens the transaction would commit
it on release.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transcell.network import exceptions as exc
from transcell.network.models import IPAllocation, Subnet

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Pool = dict[str, str]


def parse_cidr(value: str, ip_version: int | None = None) -> IPNetwork:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise exc.InvalidInput(
                error_message=f"'{value}' is not a valid IP subnet") from err
        raise exc.InvalidInput(
            error_message=f"'{value}' isn't a recommended CIDR, use '{loose}' instead"
        ) from err
    if ip_version is not None and net.version != ip_version:
        raise exc.InvalidInput(
            error_message=f"Cidr {value} does not match the ip_version {ip_version}")
    return net


def parse_ip(value: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError as err:
        raise exc.InvalidInput(error_message=f"'{value}' is not a valid IP address") from err


def host_range(net: IPNetwork) -> tuple[int, int]:
    """The first and last usable addresses: IPv4 loses network and broadcast."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    return first, last


def is_usable(net: IPNetwork, ip: IPAddress) -> bool:
    first, last = host_range(net)
    return ip in net and first <= int(ip) <= last


def default_gateway(net: IPNetwork) -> str | None:
    first, last = host_range(net)
    return str(ipaddress.ip_address(first)) if first <= last else None


def default_pools(net: IPNetwork, gateway: str | None) -> list[Pool]:
    """The whole host range, split around the gateway as Neutron does."""
    first, last = host_range(net)
    skip = int(ipaddress.ip_address(gateway)) if gateway else None
    ranges = [(first, last)]
    if skip is not None and first <= skip <= last:
        ranges = [(first, skip - 1), (skip + 1, last)]
    return [_pool(net.version, lo, hi) for lo, hi in ranges if lo <= hi]


def _address(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def _pool(version: int, lo: int, hi: int) -> Pool:
    return {"start": _address(version, lo), "end": _address(version, hi)}


def validate_gateway(net: IPNetwork, gateway: str | None) -> str | None:
    if gateway is None:
        return None
    ip = parse_ip(gateway)
    if ip.version != net.version or not is_usable(net, ip):
        raise exc.InvalidInput(
            error_message=f"Gateway is not valid on subnet: {gateway} is outside {net}")
    return str(ip)


def validate_pools(net: IPNetwork, pools: Iterable[Pool], gateway: str | None
                   ) -> list[Pool]:
    """Pools inside the subnet, each start <= end, no overlap, no gateway."""
    bounds: list[tuple[int, int, Pool]] = []
    for pool in pools:
        start, end = parse_ip(pool["start"]), parse_ip(pool["end"])
        if (start.version != net.version or end.version != net.version
                or not is_usable(net, start) or not is_usable(net, end) or start > end):
            raise exc.InvalidAllocationPool(pool=f"{pool['start']}-{pool['end']}")
        bounds.append((int(start), int(end), {"start": str(start), "end": str(end)}))
    bounds.sort(key=lambda b: b[0])
    for (_lo1, hi1, p1), (lo2, _hi2, p2) in zip(bounds, bounds[1:], strict=False):
        if lo2 <= hi1:
            raise exc.OverlappingAllocationPools(
                pool_1=f"{p1['start']}-{p1['end']}", pool_2=f"{p2['start']}-{p2['end']}",
                subnet_cidr=str(net))
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        for lo, hi, pool in bounds:
            if lo <= gw <= hi:
                raise exc.GatewayConflictWithAllocationPools(
                    ip_address=gateway, pool=f"{pool['start']}-{pool['end']}")
    return [pool for _lo, _hi, pool in bounds]


def candidates(subnet: Subnet, used: set[str]) -> Iterator[str]:
    """Free addresses of the subnet's pools in order, never the gateway."""
    version = subnet.ip_version
    for pool in subnet.allocation_pools:
        lo = int(ipaddress.ip_address(pool["start"]))
        hi = int(ipaddress.ip_address(pool["end"]))
        for value in range(lo, hi + 1):
            address = _address(version, value)
            if address != subnet.gateway_ip and address not in used:
                yield address


def check_requested(subnet: Subnet, ip_address: str) -> str:
    """A specific address may lie outside the pools, but not off the subnet."""
    ip = parse_ip(ip_address)
    net = ipaddress.ip_network(subnet.cidr)
    if ip.version != net.version or not is_usable(net, ip) or str(ip) == subnet.gateway_ip:
        raise exc.InvalidIpForSubnet(ip_address=ip_address)
    return str(ip)


def allocate(session: Session, port_id: str, subnet: Subnet,
             ip_address: str | None = None) -> str:
    """Reserve an address on the subnet for the port; returns the address."""
    if ip_address is not None:
        address = check_requested(subnet, ip_address)
        if not _try_insert(session, port_id, subnet.id, address):
            raise exc.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet.id)
        return address
    for address in candidates(subnet, used_addresses(session, subnet.id)):
        if _try_insert(session, port_id, subnet.id, address):
            return address
    raise exc.IpAddressGenerationFailure(net_id=subnet.network_id)


def used_addresses(session: Session, subnet_id: str) -> set[str]:
    """A snapshot only: another transaction may take an address right after."""
    return set(session.scalars(
        select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)))


def _try_insert(session: Session, port_id: str, subnet_id: str, address: str) -> bool:
    try:
        with session.begin_nested():
            session.add(IPAllocation(port_id=port_id, subnet_id=subnet_id,
                                     ip_address=address))
    except IntegrityError:
        return False
    return True
