"""The conductor's only way in."""

from __future__ import annotations

from transcell.context import RequestContext

TOPIC = "conductor"


class ConductorAPI:
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
        return self.bus.call(ctx, TOPIC, "schedule_and_build", request_spec=request_spec,
                             instance=instance)

    def reschedule(self, ctx: RequestContext, instance_uuid: str, alternates: list[dict],
                   failed_host: str, reason: str) -> None:
        self.bus.cast(ctx, TOPIC, "reschedule", instance_uuid=instance_uuid,
                      alternates=alternates, failed_host=failed_host, reason=reason)
