"""The conductor service: the RPC endpoint that delegates to one task per concern."""

from __future__ import annotations

from transcell.conductor import unshelve
from transcell.conductor.build import BuildTask
from transcell.conductor.moves import MoveTasks
from transcell.context import RequestContext


class ConductorManager:
    RPC_API_VERSION = "1.1"  # messages of major 1 up to this minor are accepted
    # 1.1: unshelve_instance

    def __init__(self) -> None:
        self.build = BuildTask()
        self.moves = MoveTasks()

    def schedule_and_build(self, ctx: RequestContext, request_spec: dict,
                           instance: dict) -> dict:
        return self.build.schedule_and_build(ctx, request_spec, instance)

    def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_uuid: str,
                       kind: str, flavor: dict, host: str | None,
                       allow_cross_cell: bool) -> None:
        self.moves.migrate_server(ctx, instance_uuid, migration_uuid, kind, flavor, host,
                                  allow_cross_cell)

    def confirm_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self.moves.confirm_move(ctx, instance_uuid)

    def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self.moves.revert_move(ctx, instance_uuid)

    def unshelve_instance(self, ctx: RequestContext, instance_uuid: str,
                          saga_uuid: str) -> None:
        """Since 1.1: run the unshelve of an offloaded server the API recorded."""
        unshelve.accept(self.moves, instance_uuid, saga_uuid)
