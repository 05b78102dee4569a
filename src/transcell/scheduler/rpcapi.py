"""The scheduler's only way in."""

from __future__ import annotations

from transcell.context import RequestContext

TOPIC = "scheduler"


class SchedulerAPI:
    VERSION = "1.0"  # what these messages are; the served side must accept it

    def __init__(self, bus):
        self.bus = bus

    def select_destinations(self, ctx: RequestContext, request_spec: dict,
                            instance_uuid: str, claim: bool = True) -> list[dict]:
        """Hosts for one server, best first: the first is claimed in Placement
        (when ``claim``), the rest are unclaimed alternates in the same cell.

        A move's ``request_spec`` adds, next to ``flavor``, ``project_id`` and
        ``user_id``: ``ignore_hosts: [source host]``, ``requested_destination:
        {"host": name} | None`` (a host of any cell) and ``move:
        {"source_cell_uuid": str, "allow_cross_cell": bool}``. A malformed
        ``move`` is refused (Invalid); a move that cannot be placed raises
        NoValidHost with the reason."""
        return self.bus.call(ctx, TOPIC, "select_destinations", rpc_version=self.VERSION,
                             request_spec=request_spec,
                             instance_uuid=instance_uuid, claim=claim)
