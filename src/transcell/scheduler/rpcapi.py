"""The scheduler's only way in."""

from __future__ import annotations

from transcell.context import RequestContext

TOPIC = "scheduler"


class SchedulerAPI:
    VERSION = "1.0"  # what these messages are; the served side must accept it
    #: a move's claim that also hands the source allocation to the migration
    MOVE_CLAIM_VERSION = "1.1"

    def __init__(self, bus):
        self.bus = bus

    def select_destinations(self, ctx: RequestContext, request_spec: dict,
                            instance_uuid: str, claim: bool = True,
                            migration_uuid: str | None = None) -> list[dict]:
        """Hosts for one server, best first: the first is claimed in Placement
        (when ``claim``), the rest are unclaimed alternates in the same cell.

        A move's ``request_spec`` adds, next to ``flavor``, ``project_id`` and
        ``user_id``: ``ignore_hosts: [source host]``, ``requested_destination:
        {"host": name} | None`` (a host of any cell) and ``move:
        {"source_cell_uuid": str, "allow_cross_cell": bool}``. A malformed
        ``move`` is refused (Invalid); a move that cannot be placed raises
        NoValidHost with the reason.

        With ``migration_uuid`` (a move's start) the claim also hands whatever
        the server holds to that migration consumer, in the same Placement
        write; once the migration holds something, the claim is the server's
        alone."""
        if migration_uuid is None:
            return self.bus.call(ctx, TOPIC, "select_destinations", rpc_version=self.VERSION,
                                 request_spec=request_spec,
                                 instance_uuid=instance_uuid, claim=claim)
        return self.bus.call(ctx, TOPIC, "select_destinations",
                             rpc_version=self.MOVE_CLAIM_VERSION, request_spec=request_spec,
                             instance_uuid=instance_uuid, claim=claim,
                             migration_uuid=migration_uuid)
