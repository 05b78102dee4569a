"""Segments (Neutron's routed provider networks) and the cells they reach.

A segment is a part of one network; its subnets' addresses work only on the
hosts it reaches. Neutron learns that from agents; transcell says it
directly: each segment lists the cells whose hosts it reaches
(``transcell:cells``), and a host's cell comes from the API database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.context import RequestContext
from transcell.db.session import session_for
from transcell.network import attributes, scope, views
from transcell.network import exceptions as exc
from transcell.network.cells import CellDirectory
from transcell.network.models import Network, Segment, Subnet, new_id

CELLS = "transcell:cells"
NETWORK_TYPES = ("flat", "vlan", "vxlan", "geneve", "gre", "local")
#: the segmentation ids each type may use
ID_RANGES = {"vlan": (1, 4094), "vxlan": (1, 2**24 - 1), "geneve": (1, 2**24 - 1),
             "gre": (1, 2**32 - 1)}


def cell_names(name: str, value: Any) -> list[str]:
    return attributes.string_list(name, value)


SEGMENT: Mapping[str, attributes.Attr] = {
    "id": attributes.Attr(attributes.uuid_like),
    "network_id": attributes.Attr(attributes.string(36), required=True),
    "name": attributes.Attr(attributes.optional(attributes.string(255)), put=True),
    "description": attributes.Attr(attributes.string(255), put=True),
    "network_type": attributes.Attr(attributes.choice(*NETWORK_TYPES), required=True),
    "physical_network": attributes.Attr(attributes.optional(attributes.string(64))),
    "segmentation_id": attributes.Attr(attributes.optional(attributes.integer(0, 2**32 - 1))),
    CELLS: attributes.Attr(cell_names, put=True, admin=True, default=[]),
}


def _check_geometry(values: dict[str, Any]) -> None:
    """Neutron's type rules: which types need a physical network and an id."""
    kind = values["network_type"]
    physnet = values.get("physical_network")
    seg_id = values.get("segmentation_id")
    if kind in ("flat", "vlan") and not physnet:
        raise exc.InvalidInput(error_message=f"physical_network is required for a {kind} "
                                             "segment")
    if kind not in ("flat", "vlan") and physnet:
        raise exc.InvalidInput(error_message=f"a {kind} segment cannot have a "
                                             "physical_network")
    if kind in ("flat", "local") and seg_id is not None:
        raise exc.InvalidInput(error_message=f"a {kind} segment cannot have a "
                                             "segmentation_id")
    if kind in ID_RANGES and seg_id is not None:
        low, high = ID_RANGES[kind]
        if not low <= seg_id <= high:
            raise exc.InvalidInput(error_message=f"segmentation_id {seg_id} is out of the "
                                                 f"{kind} range {low}-{high}")


def _same_wire(session: Session, values: dict[str, Any]) -> Any:
    """A query for the segments that would share the new one's wire."""
    query = select(Segment.id).where(Segment.network_type == values["network_type"])
    if values.get("physical_network") is not None:
        query = query.where(Segment.physical_network == values["physical_network"])
    if values["network_type"] != "flat":
        query = query.where(Segment.segmentation_id == values.get("segmentation_id"))
    return query


def _allocate_id(session: Session, values: dict[str, Any]) -> None:
    """The lowest free segmentation id when a vlan or tunnel segment names none."""
    kind = values["network_type"]
    if kind not in ID_RANGES or values.get("segmentation_id") is not None:
        return
    query = select(Segment.segmentation_id).where(Segment.network_type == kind)
    if values.get("physical_network") is not None:
        query = query.where(Segment.physical_network == values["physical_network"])
    used = {seg_id for seg_id in session.scalars(query) if seg_id is not None}
    low, high = ID_RANGES[kind]
    values["segmentation_id"] = next(
        (number for number in range(low, min(high, low + len(used)) + 1)
         if number not in used), None)
    if values["segmentation_id"] is None:
        raise exception.Conflict(f"No free segmentation id is left for {kind} segments.")


def check_cells(directory: CellDirectory, cells: list[str]) -> list[str]:
    known = directory.names()
    if known is None:
        return cells
    unknown = [name for name in cells if name not in known]
    if unknown:
        raise exception.Invalid(f"Invalid input for {CELLS}. Reason: no cell is named "
                                f"{', '.join(repr(n) for n in unknown)} (the cells are "
                                f"{', '.join(known) or 'none'}).")
    return cells


def load_segment(session: Session, ctx: RequestContext, segment_id: str) -> Segment:
    row = session.get(Segment, segment_id) if isinstance(segment_id, str) else None
    if row is None:
        raise exc.SegmentNotFound(segment_id=segment_id)
    return row


class Segments:
    db_url: str
    cells: CellDirectory

    def create_segment(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        scope.require_admin(ctx, "create_segment")
        values = attributes.check("segment", SEGMENT, body, ctx, creating=True)
        _check_geometry(values)
        cells = check_cells(self.cells, values.pop(CELLS, []))
        with session_for(self.db_url) as session:
            net = scope.load_network(session, ctx, values["network_id"])
            # written first so that concurrent creators of one wire queue here
            net.revision_number += 1
            session.flush()
            _allocate_id(session, values)
            taken = (session.scalar(_same_wire(session, values))
                     if values["network_type"] != "local" else None)
            if taken is not None:
                raise exception.Conflict(
                    f"Segment {taken} already uses {values['network_type']} "
                    f"{values.get('physical_network') or ''}"
                    f"{values.get('segmentation_id') or ''}".rstrip() + ".")
            row = Segment(id=values.pop("id", None) or new_id(), cells=cells)
            attributes.apply(row, values)
            session.add(row)
            session.flush()
            session.refresh(row)
            return views.segment(row)

    def get_segment(self, ctx: RequestContext, segment_id: str) -> dict[str, Any]:
        if not ctx.is_admin:  # what one may not see does not exist
            raise exc.SegmentNotFound(segment_id=segment_id)
        with session_for(self.db_url) as session:
            return views.segment(load_segment(session, ctx, segment_id))

    def list_segments(self, ctx: RequestContext, filters: scope.Filters | None = None
                      ) -> list[dict[str, Any]]:
        if not ctx.is_admin:
            return []
        wanted = scope.normalize(filters)
        query = select(Segment).order_by(Segment.created_at, Segment.id)
        query = scope.sql_prefilter(query, Segment, wanted, ("id", "network_id"))
        with session_for(self.db_url) as session:
            bodies = [views.segment(row) for row in session.scalars(query)]
        return [body for body in bodies if scope.matches(body, wanted)]

    def update_segment(self, ctx: RequestContext, segment_id: str, body: dict[str, Any]
                       ) -> dict[str, Any]:
        if not ctx.is_admin:
            raise exc.SegmentNotFound(segment_id=segment_id)
        values = attributes.check("segment", SEGMENT, body, ctx, creating=False)
        if CELLS in values:
            values["cells"] = check_cells(self.cells, values.pop(CELLS))
        with session_for(self.db_url) as session:
            row = load_segment(session, ctx, segment_id)
            row.revision_number += 1
            attributes.apply(row, values)
            session.flush()
            return views.segment(row)

    def delete_segment(self, ctx: RequestContext, segment_id: str) -> None:
        if not ctx.is_admin:
            raise exc.SegmentNotFound(segment_id=segment_id)
        with session_for(self.db_url) as session:
            row = load_segment(session, ctx, segment_id)
            # the update takes the row (and on SQLite the database) before the count
            row.revision_number += 1
            session.flush()
            used = session.scalar(select(func.count()).select_from(Subnet).where(
                Subnet.segment_id == row.id))
            if used:
                raise exc.SegmentInUse(segment_id=row.id,
                                       reason=f"{used} subnet(s) are associated with it")
            session.delete(row)


def check_subnet_segment(session: Session, net: Network, segment_id: str | None) -> None:
    """A new subnet's segment: of its network, and named whenever the network has any."""
    if segment_id is not None:
        segment = session.get(Segment, segment_id)
        if segment is None:
            raise exc.SegmentNotFound(segment_id=segment_id)
        if segment.network_id != net.id:
            raise exc.NetworkIdsDontMatch(segment_id=segment_id,
                                          segment_network=segment.network_id,
                                          subnet_network=net.id)
    associated = {sub.segment_id is not None for sub in net.subnets}
    if segment_id is None and net.segments:
        raise exc.SubnetsNotAllAssociatedWithSegments(network_id=net.id)
    if segment_id is not None and False in associated:
        raise exc.SubnetsNotAllAssociatedWithSegments(network_id=net.id)


def change_subnet_segment(session: Session, sub: Subnet, segment_id: str | None) -> None:
    """Neutron lets an existing subnet join the only segment of its network, nothing more."""
    if segment_id == sub.segment_id:
        return
    if sub.segment_id is not None:
        raise exc.SubnetSegmentAssociationChangeNotAllowed(subnet_id=sub.id,
                                                           segment_id=sub.segment_id)
    net = sub.network
    if len(net.segments) > 1:
        raise exc.NoUpdateSubnetWhenMultipleSegmentsOnNetwork(network_id=net.id)
    segment = session.get(Segment, segment_id) if segment_id else None
    if segment is None:
        raise exc.SegmentNotFound(segment_id=segment_id)
    if segment.network_id != net.id:
        raise exc.NetworkIdsDontMatch(segment_id=segment_id,
                                      segment_network=segment.network_id,
                                      subnet_network=net.id)
    sub.segment_id = segment_id
