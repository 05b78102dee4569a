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

    def cache_images(self, ctx: RequestContext, host: str, image_ids: list[str]) -> None:
        """Have the host fetch these images into its image cache (2.81): a cast, since a
        fetch can take long and the API answers 202 at once."""
        self._bus(host).cast(ctx, topic_for(host), "cache_images", image_ids=image_ids)

    # moves: calls, since the conductor's saga must know each step finished
    def _long(self) -> float:
        from transcell.conf import CONF
        return float(CONF.rpc.long_rpc_timeout)

    def prep_move_at_dest(self, ctx: RequestContext, host: str, instance_uuid: str,
                          disk_gb: int) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "prep_move_at_dest",
                                    instance_uuid=instance_uuid, disk_gb=disk_gb)

    def prep_move_at_source(self, ctx: RequestContext, host: str, instance_uuid: str,
                            snapshot_id: str) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "prep_move_at_source",
                                    timeout=self._long(), instance_uuid=instance_uuid,
                                    snapshot_id=snapshot_id)

    def finish_move_at_dest(self, ctx: RequestContext, host: str, instance: dict,
                            snapshot_id: str, checksum: str, disk_gb: int,
                            power_on: bool) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "finish_move_at_dest",
                                    timeout=self._long(), instance=instance,
                                    snapshot_id=snapshot_id, checksum=checksum,
                                    disk_gb=disk_gb, power_on=power_on)

    def cleanup_move_at_dest(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).call(ctx, topic_for(host), "cleanup_move_at_dest",
                             instance_uuid=instance_uuid)

    def restore_at_source(self, ctx: RequestContext, host: str, instance: dict,
                          power_on: bool) -> int:
        return self._bus(host).call(ctx, topic_for(host), "restore_at_source",
                                    instance=instance, power_on=power_on)

    def confirm_move_at_source(self, ctx: RequestContext, host: str,
                               instance_uuid: str) -> None:
        self._bus(host).call(ctx, topic_for(host), "confirm_move_at_source",
                             instance_uuid=instance_uuid)

    def refresh_usage(self, ctx: RequestContext, host: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "refresh_usage")
