"""The embedded cloud's routed network: one segment, and one subnet, per cell.

"private" spans every cell; "routed" shows what a network whose addresses are
tied to a cell does when servers move. Its pieces are found by name, so a
restart finds them again, and a cell added since gets its own segment.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from transcell.context import RequestContext
from transcell.network.cells import CellDirectory

LOG = logging.getLogger(__name__)

ROUTED_NETWORK = "routed"
#: each cell's subnet is the next free /24 of this range
ROUTED_RANGE = ipaddress.ip_network("10.10.0.0/16")


def subnet_name(cell: str) -> str:
    return f"{ROUTED_NETWORK}-{cell}"


class RoutedDefault:
    db_url: str
    cells: CellDirectory

    # provided by the other parts of the service
    list_networks: Any
    create_network: Any
    list_segments: Any
    create_segment: Any
    list_subnets: Any
    create_subnet: Any
    get_network: Any

    def ensure_routed_network(self, admin: RequestContext, project_id: str,
                              cells: list[str] | None = None) -> dict[str, Any] | None:
        """The shared "routed" network with a segment and a subnet for each cell.

        ``cells`` defaults to the cells of the API database; without them
        (no API database here) there is no routed network, and None is returned.
        """
        if cells is None:
            cells = self.cells.names()
        if cells is None:
            LOG.warning("The cells are unknown here: no %r network", ROUTED_NETWORK)
            return None
        found = self.list_networks(admin, {"name": ROUTED_NETWORK, "shared": True})
        net = found[0] if found else self.create_network(admin, {
            "name": ROUTED_NETWORK, "shared": True, "project_id": project_id,
            "description": "One segment per cell: an address works in its cell only"})
        segments = {seg["name"]: seg for seg in self.list_segments(
            admin, {"network_id": net["id"]})}
        subnets = self.list_subnets(admin, {"network_id": net["id"]})
        used = [ipaddress.ip_network(sub["cidr"]) for sub in subnets]
        on_segment = {sub["segment_id"] for sub in subnets}
        for cell in cells:
            segment = segments.get(cell) or self.create_segment(admin, {
                "network_id": net["id"], "name": cell, "network_type": "flat",
                "physical_network": cell, "transcell:cells": [cell],
                "description": f"The hosts of {cell}"})
            if segment["id"] in on_segment:
                continue
            cidr = next(block for block in ROUTED_RANGE.subnets(new_prefix=24)
                        if block.network_address.packed[2] != 0
                        and not any(block.overlaps(other) for other in used))
            used.append(cidr)
            self.create_subnet(admin, {
                "network_id": net["id"], "name": subnet_name(cell), "ip_version": 4,
                "cidr": str(cidr), "segment_id": segment["id"], "project_id": project_id})
        return self.get_network(admin, net["id"])
