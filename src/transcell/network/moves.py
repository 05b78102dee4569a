"""What a server's move asks of its ports: do they work in the target cell, and if
not, a new address there (and the old one back on revert).

Each call is safe to repeat: a conductor killed mid-move runs it again. Every
change happens under the port's row lock (``scope.lock_port``) in one
transaction, so it is all or nothing and two callers never interleave. The
port keeps its id and MAC; only its fixed IPs change, and an address is given
up only by ``readdress_port``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, ipam, routing, scope
from transcell.network import exceptions as exc
from transcell.network.cells import CellDirectory
from transcell.network.models import IPAllocation, Network, Port, Segment

KEEP = "keep"
READDRESS = "readdress"
BLOCKED = "blocked"


def _segment_ids(net: Network, rows: list[IPAllocation]) -> set[str | None]:
    subnets = {sub.id: sub for sub in net.subnets}
    return {subnets[row.subnet_id].segment_id for row in rows if row.subnet_id in subnets}


def _target(net: Network, reaching: list[Segment]) -> Segment | None:
    """The segment a re-addressed port takes its address from: the first with a subnet."""
    with_subnets = {sub.segment_id for sub in net.subnets}
    return next((segment for segment in reaching if segment.id in with_subnets), None)


def _describe(segment: Segment) -> str:
    return f"segment {segment.name or segment.id} ({segment.id}, cells " \
           f"{', '.join(segment.cells) or 'none'})"


def plan_port(net: Network, rows: list[IPAllocation], host: str, cell: str | None
              ) -> tuple[str, str, str | None]:
    """(action, reason, segment id) for a port with addresses ``rows`` moving to ``host``.

    The segment is the one the port's address is on after the move: its current
    one for "keep", the one a re-address takes from for "readdress", None when
    blocked or when the network has no segments.
    """
    where = f"host {host} (cell {cell or routing.NO_CELL})"
    if not routing.is_routed(net):
        return KEEP, f"network {net.name or net.id} has no segments: it reaches every cell", \
            None
    reaching = routing.segments_reaching(net, cell)
    target = _target(net, reaching)
    if not rows:
        if target is None:
            return BLOCKED, (f"the port has no address yet and no segment of network "
                             f"{net.name or net.id} reaches {where}"), None
        return KEEP, f"the port has no address yet; {_describe(target)} reaches {where}", \
            target.id
    current = _segment_ids(net, rows)
    reaching_ids = {segment.id for segment in reaching}
    by_id = {segment.id: segment for segment in net.segments}
    if current <= reaching_ids:
        segment_id = sorted(s for s in current if s)[0] if any(current) else None
        return KEEP, f"{_describe(by_id[segment_id])} reaches {where}" if segment_id else \
            f"the port's addresses reach {where}", segment_id
    away = [by_id[s] for s in sorted(s for s in current if s) if s not in reaching_ids]
    lost = "; ".join(_describe(segment) for segment in away) or "its segment"
    if target is None:
        return BLOCKED, (f"the port's address is on {lost}, which does not reach {where}, "
                         f"and no segment of network {net.name or net.id} does"), None
    return READDRESS, (f"the port's address is on {lost}, which does not reach {where}; "
                       f"{_describe(target)} does"), target.id


class PortMoves:
    db_url: str
    cells: CellDirectory

    def check_ports_for_host(self, ctx: RequestContext, port_ids: list[str], host: str
                             ) -> list[dict[str, Any]]:
        """For each port, whether it works on ``host`` as it is ("keep"), needs an
        address in the host's cell ("readdress") or cannot go there ("blocked").
        Changes nothing; whether re-addressing is allowed is the caller's call."""
        scope.require_admin(ctx, "check_ports_for_host")
        if not isinstance(port_ids, list) or not all(isinstance(p, str) for p in port_ids):
            raise exception.Invalid("Invalid input for port_ids. Reason: a list of port ids "
                                    "is required.")
        host = attributes.string(255)("host", host)
        cell = self.cells.cell_of_host(host)
        result = []
        with session_for(self.db_url) as session:
            for port_id in port_ids:
                port = scope.load_port(session, ctx, port_id)
                net = session.get(Network, port.network_id)
                rows = routing.allocations(session, port.id)
                action, reason, segment = plan_port(net, rows, host, cell)
                result.append({"port_id": port.id, "action": action, "reason": reason,
                               "fixed_ips": routing.as_fixed_ips(rows), "segment": segment})
        return result

    def _locked(self, session: Session, ctx: RequestContext, port_id: str, action: str
                ) -> tuple[Port, Network]:
        scope.require_admin(ctx, action)
        if not isinstance(port_id, str) or not port_id:
            raise exception.PortNotFound(port_id=port_id)
        scope.lock_port(session, port_id)
        port = scope.load_port(session, ctx, port_id)
        return port, session.get(Network, port.network_id)

    def readdress_port(self, ctx: RequestContext, port_id: str, host: str
                       ) -> dict[str, Any]:
        """Give the port addresses that work on ``host``: same id and MAC, each address
        whose segment does not reach the host's cell replaced by one from a segment
        that does. Repeating it returns the first call's answer."""
        host = attributes.string(255)("host", host)
        cell = self.cells.cell_of_host(host)
        with session_for(self.db_url) as session:
            port, net = self._locked(session, ctx, port_id, "readdress_port")
            rows = routing.allocations(session, port.id)
            current = routing.as_fixed_ips(rows)
            action, reason, _segment = plan_port(net, rows, host, cell)
            if action == BLOCKED:
                raise exc.HostNotConnectedToAnySegment(
                    host=host, cell=cell or routing.NO_CELL, network_id=net.id,
                    reach=routing.reach(net))
            if action == KEEP:
                old = port.readdressed_from if port.readdressed_from is not None else current
                return {"port_id": port.id, "old_fixed_ips": old, "new_fixed_ips": current}
            reaching = routing.segments_reaching(net, cell)
            keep_ids = {segment.id for segment in reaching}
            subnets = {sub.id: sub for sub in net.subnets}
            leaving = [row for row in rows if subnets[row.subnet_id].segment_id not in keep_ids]
            versions = sorted({subnets[row.subnet_id].ip_version for row in leaving})
            for row in leaving:
                session.delete(row)
            session.flush()
            routing.allocate_from(session, port.id, net, reaching, versions)
            port.readdressed_from = current
            session.expire(port, ["fixed_ips"])
            new = routing.as_fixed_ips(routing.allocations(session, port.id))
            return {"port_id": port.id, "old_fixed_ips": current, "new_fixed_ips": new}

    def restore_port_addresses(self, ctx: RequestContext, port_id: str,
                               fixed_ips: list[dict[str, str]]) -> dict[str, Any]:
        """Put back the addresses a re-addressing replaced (a reverted move).

        Each must still be free or the port's own; if another port took one
        meanwhile this raises ``PortAddressTaken`` and changes nothing.
        Returns {"port_id", "old_fixed_ips" (replaced), "new_fixed_ips" (restored)}.
        """
        wanted = attributes.dict_list("subnet_id", "ip_address")("fixed_ips", fixed_ips)
        with session_for(self.db_url) as session:
            port, net = self._locked(session, ctx, port_id, "restore_port_addresses")
            rows = routing.allocations(session, port.id)
            current = routing.as_fixed_ips(rows)
            pairs = {(item["subnet_id"], str(ipam.parse_ip(item["ip_address"])))
                     for item in wanted}
            subnets = {sub.id: sub for sub in net.subnets}
            for subnet_id, address in sorted(pairs):
                if subnet_id not in subnets:
                    raise exc.InvalidInput(error_message=f"subnet {subnet_id} is not on "
                                                         f"network {net.id} of port {port.id}")
                holder = session.scalar(select(IPAllocation.port_id).where(
                    IPAllocation.subnet_id == subnet_id, IPAllocation.ip_address == address))
                if holder is not None and holder != port.id:
                    raise exc.PortAddressTaken(ip_address=address, port_id=port.id,
                                               holder=holder)
            held = {(row.subnet_id, row.ip_address) for row in rows}
            for row in rows:
                if (row.subnet_id, row.ip_address) not in pairs:
                    session.delete(row)
            session.flush()
            for subnet_id, address in sorted(pairs - held):
                try:
                    ipam.allocate(session, port.id, subnets[subnet_id], address)
                except exc.IpAddressAlreadyAllocated:
                    raise exc.PortAddressTaken(ip_address=address, port_id=port.id,
                                               holder="(another port)") from None
            port.readdressed_from = None
            session.expire(port, ["fixed_ips"])
            restored = routing.as_fixed_ips(routing.allocations(session, port.id))
            return {"port_id": port.id, "old_fixed_ips": current, "new_fixed_ips": restored}
