"""The only way into a compute host: its cell's bus, topic ``compute.<host>``."""

from __future__ import annotations

from transcell.cell import cell_of_host
from transcell.context import RequestContext
from transcell.rpc.bus import get_bus


def topic_for(host: str) -> str:
    return f"compute.{host}"


class ComputeAPI:
    def _bus(self, host: str):
        return get_bus(cell_of_host(host).transport_url)

    def build_and_run_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                               request_spec: dict, alternates: list[dict]) -> None:
        self._bus(host).cast(ctx, topic_for(host), "build_and_run_instance",
                             instance_uuid=instance_uuid, request_spec=request_spec,
                             alternates=alternates)

    def stop_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "stop_instance", instance_uuid=instance_uuid)

    def start_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "start_instance",
                             instance_uuid=instance_uuid)

    def terminate_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "terminate_instance",
                             instance_uuid=instance_uuid)
