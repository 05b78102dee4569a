"""The conductor's only way in."""

from __future__ import annotations

from transcell.context import RequestContext

TOPIC = "conductor"


class ConductorAPI:
    VERSION = "1.0"  # what these messages are; the served side must accept it

    def __init__(self, bus):
        self.bus = bus

    def schedule_and_build(self, ctx: RequestContext, request_spec: dict,
                           instance: dict) -> dict:
        """Schedule, create the server in its cell, map it, and start the build.

        A call, not a cast: once it returns the server is readable in its
        cell (or in cell0 in ERROR when no host fits), so the API needs no
        separate build-request record to show a server that is still being
        placed.
        """
        return self.bus.call(ctx, TOPIC, "schedule_and_build", rpc_version=self.VERSION,
                             request_spec=request_spec,
                             instance=instance)

    def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_uuid: str,
                       kind: str, flavor: dict, host: str | None,
                       allow_cross_cell: bool) -> None:
        """A cast, as Nova's: the user gets 202 and follows the move in the server's
        status, its migration record and its instance actions."""
        self.bus.cast(ctx, TOPIC, "migrate_server", rpc_version=self.VERSION,
                      instance_uuid=instance_uuid,
                      migration_uuid=migration_uuid, kind=kind, flavor=flavor, host=host,
                      allow_cross_cell=allow_cross_cell)

    def confirm_move(self, ctx: RequestContext, instance_uuid: str, wait: bool = False) -> None:
        """Cast normally; a delete in VERIFY_RESIZE waits, since it must confirm first."""
        if wait:
            from transcell.conf import CONF
            self.bus.call(ctx, TOPIC, "confirm_move", rpc_version=self.VERSION,
                          timeout=CONF.rpc.long_rpc_timeout,
                          instance_uuid=instance_uuid)
        else:
            self.bus.cast(ctx, TOPIC, "confirm_move", rpc_version=self.VERSION,
                          instance_uuid=instance_uuid)

    def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self.bus.cast(ctx, TOPIC, "revert_move", rpc_version=self.VERSION,
                      instance_uuid=instance_uuid)

    def unshelve_instance(self, ctx: RequestContext, instance_uuid: str,
                          saga_uuid: str) -> None:
        """Since 1.1: a cast; the saga the API recorded says everything the unshelve needs."""
        self.bus.cast(ctx, TOPIC, "unshelve_instance", rpc_version="1.1",
                      instance_uuid=instance_uuid, saga_uuid=saga_uuid)
