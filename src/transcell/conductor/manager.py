"""The conductor service: the RPC endpoint that delegates to one task per concern."""

from __future__ import annotations

from transcell.conductor.build import BuildTask
from transcell.context import RequestContext


class ConductorManager:
    def __init__(self) -> None:
        self.build = BuildTask()

    def schedule_and_build(self, ctx: RequestContext, request_spec: dict,
                           instance: dict) -> dict:
        return self.build.schedule_and_build(ctx, request_spec, instance)

    def reschedule(self, ctx: RequestContext, instance_uuid: str, alternates: list[dict],
                   failed_host: str, reason: str) -> None:
        self.build.reschedule(ctx, instance_uuid, alternates, failed_host, reason)
