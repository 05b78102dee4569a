"""Where a port's addresses work: the segments of a routed network and the host's cell.

On a network whose subnets belong to segments an address is usable only on
hosts of the cells its segment reaches. Binding a port to a host therefore
either checks that the port's addresses fit the host, or, for a port whose
address was deferred until binding, takes one from a segment reaching the
host's cell. Nothing is bound when neither works.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from transcell.network import exceptions as exc
from transcell.network import ipam
from transcell.network.cells import CellDirectory
from transcell.network.models import IPAllocation, Network, Port, Segment

DEFERRED = "deferred"
IMMEDIATE = "immediate"
NO_ADDRESS = "none"
NO_CELL = "none: no cell has this host"


def is_routed(net: Network) -> bool:
    """Routed: the network's subnets belong to segments, so addresses depend on the host."""
    return any(sub.segment_id is not None for sub in net.subnets)


def reach(net: Network) -> str:
    cells = sorted({cell for segment in net.segments for cell in segment.cells})
    return "[" + ", ".join(cells) + "]"


def segments_reaching(net: Network, cell: str | None) -> list[Segment]:
    if cell is None:
        return []
    return [segment for segment in net.segments if cell in segment.cells]


def allocations(session: Session, port_id: str) -> list[IPAllocation]:
    """The port's addresses as the database has them now (the relationship may be stale)."""
    return list(session.scalars(select(IPAllocation).where(IPAllocation.port_id == port_id)
                                .order_by(IPAllocation.id)))


def as_fixed_ips(rows: Iterable[IPAllocation]) -> list[dict[str, str]]:
    return [{"subnet_id": row.subnet_id, "ip_address": row.ip_address} for row in rows]


def allocate_from(session: Session, port_id: str, net: Network, segments: list[Segment],
                  versions: Iterable[int] = (4, 6)) -> None:
    """One address per IP version from the first subnet of ``segments`` with room."""
    wanted = {segment.id for segment in segments}
    for version in versions:
        subnets = [sub for sub in net.subnets
                   if sub.segment_id in wanted and sub.ip_version == version]
        for subnet in subnets:
            try:
                ipam.allocate(session, port_id, subnet)
                break
            except exc.IpAddressGenerationFailure:
                continue
        else:
            if subnets:
                raise exc.IpAddressGenerationFailure(net_id=net.id)


def place(session: Session, directory: CellDirectory, port: Port, net: Network, host: str,
          allocate: bool = True) -> None:
    """Check (or, for a deferred port, give) the port addresses that work on ``host``.

    Raises the Neutron conflict naming host, cell and network when they cannot;
    the caller's transaction then changes nothing.
    """
    if not host or not is_routed(net):
        return
    cell = directory.cell_of_host(host)
    reaching = segments_reaching(net, cell)
    held = allocations(session, port.id)
    if held:
        subnets = {sub.id: sub for sub in net.subnets}
        ids = {segment.id for segment in reaching}
        for row in held:
            segment_id = subnets[row.subnet_id].segment_id
            if segment_id not in ids:
                segment = next((s for s in net.segments if s.id == segment_id), None)
                raise exc.HostNotCompatibleWithFixedIps(
                    port_id=port.id, host=host, cell=cell or NO_CELL,
                    addresses=", ".join(r.ip_address for r in held), segment_id=segment_id,
                    network_id=net.id,
                    reach="[" + ", ".join(segment.cells if segment else []) + "]")
        return
    if not reaching:
        raise exc.HostNotConnectedToAnySegment(host=host, cell=cell or NO_CELL,
                                               network_id=net.id, reach=reach(net))
    if allocate and port.ip_allocation != NO_ADDRESS:
        allocate_from(session, port.id, net, reaching)
        session.expire(port, ["fixed_ips"])
