"""The only way into a compute host: its cell's bus, topic ``compute.<host>``."""

from __future__ import annotations

from transcell.cell import cell_of_host
from transcell.context import RequestContext
from transcell.rpc.bus import get_bus


def topic_for(host: str) -> str:
    return f"compute.{host}"


class ComputeAPI:
    VERSION = "1.0"  # what these messages are; the served side must accept it

    def __init__(self, cell=None):
        # A cell conductor addresses only its own cell's hosts and must not read the
        # API database to find their bus: it is given its cell.
        self._cell = cell

    def _bus(self, host: str):
        return get_bus((self._cell or cell_of_host(host)).transport_url)

    def build_and_run_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                               request_spec: dict, alternates: list[dict]) -> None:
        self._bus(host).cast(ctx, topic_for(host), "build_and_run_instance",
                             rpc_version=self.VERSION,
                             instance_uuid=instance_uuid, request_spec=request_spec,
                             alternates=alternates)

    def stop_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "stop_instance", rpc_version=self.VERSION,
                             instance_uuid=instance_uuid)

    def start_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "start_instance", rpc_version=self.VERSION,
                             instance_uuid=instance_uuid)

    def terminate_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "terminate_instance", rpc_version=self.VERSION,
                             instance_uuid=instance_uuid)

    def attach_volume(self, ctx: RequestContext, host: str, instance_uuid: str,
                      bdm_uuid: str) -> None:
        """Since 1.2: connect a volume the API reserved for the server (a cast, as Nova's:
        the API answers once the volume is reserved; the volume turns in-use when done)."""
        self._bus(host).cast(ctx, topic_for(host), "attach_volume", rpc_version="1.2",
                             instance_uuid=instance_uuid, bdm_uuid=bdm_uuid)

    def detach_volume(self, ctx: RequestContext, host: str, instance_uuid: str,
                      bdm_uuid: str) -> None:
        """Since 1.2: disconnect a volume and delete its attachment (a cast)."""
        self._bus(host).cast(ctx, topic_for(host), "detach_volume", rpc_version="1.2",
                             instance_uuid=instance_uuid, bdm_uuid=bdm_uuid)

    def cache_images(self, ctx: RequestContext, host: str, image_ids: list[str]) -> None:
        """Have the host fetch these images into its image cache (2.81): a cast, since a
        fetch can take long and the API answers 202 at once."""
        self._bus(host).cast(ctx, topic_for(host), "cache_images", rpc_version=self.VERSION,
                             image_ids=image_ids)

    def snapshot_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                          image_id: str, image_type: str = "snapshot",
                          backup_type: str | None = None, rotation: int | None = None) -> None:
        """Since 1.3: upload the guest's root disk into the queued image (createImage,
        createBackup with its rotation); a cast, the API answers once both are recorded."""
        self._bus(host).cast(ctx, topic_for(host), "snapshot_instance", rpc_version="1.3",
                             instance_uuid=instance_uuid, image_id=image_id,
                             image_type=image_type, backup_type=backup_type, rotation=rotation)

    def rebuild_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                         image_id: str, preserve_ephemeral: bool = False) -> None:
        """Since 1.3: replace the guest's root disk with one made from ``image_id`` (a cast)."""
        self._bus(host).cast(ctx, topic_for(host), "rebuild_instance", rpc_version="1.3",
                             instance_uuid=instance_uuid, image_id=image_id,
                             preserve_ephemeral=preserve_ephemeral)

    # moves: calls, since the conductor's saga must know each step finished
    def _long(self) -> dict[str, float]:
        """A call that moves disk data: the long timeout while the host works on it, but
        given up within ``call_monitor_timeout`` once the host stops heartbeating (its
        process died), so the saga can undo or resume the move without waiting that out."""
        from transcell.conf import CONF
        return {"timeout": float(CONF.rpc.long_rpc_timeout),
                "rpc_call_monitor_timeout": float(CONF.rpc.call_monitor_timeout)}

    def describe_disk(self, ctx: RequestContext, host: str, instance_uuid: str) -> dict:
        """Since 1.1: what a move of the guest's root disk would read (a move plan)."""
        return self._bus(host).call(ctx, topic_for(host), "describe_disk", rpc_version="1.1",
                                    instance_uuid=instance_uuid)

    def prep_move_at_dest(self, ctx: RequestContext, host: str, instance_uuid: str,
                          disk_gb: int) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "prep_move_at_dest",
                                    rpc_version=self.VERSION,
                                    instance_uuid=instance_uuid, disk_gb=disk_gb)

    def prep_move_at_source(self, ctx: RequestContext, host: str, instance_uuid: str,
                            snapshot_id: str | None, previous_id: str | None = None) -> dict:
        extra = {"previous_id": previous_id} if previous_id else {}
        return self._bus(host).call(ctx, topic_for(host), "prep_move_at_source",
                                    rpc_version="1.5" if extra else self.VERSION,
                                    **self._long(), instance_uuid=instance_uuid,
                                    snapshot_id=snapshot_id, **extra)

    def precopy_round(self, ctx: RequestContext, host: str, instance_uuid: str,
                      snapshot_id: str, previous_id: str | None) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "precopy_round", rpc_version="1.5",
                                    **self._long(), instance_uuid=instance_uuid,
                                    snapshot_id=snapshot_id, previous_id=previous_id)

    def prebuild_at_dest(self, ctx: RequestContext, host: str, instance: dict,
                         snapshot_id: str) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "prebuild_at_dest", rpc_version="1.5",
                                    **self._long(), instance=instance, snapshot_id=snapshot_id)

    def precopy_pending(self, ctx: RequestContext, host: str, instance_uuid: str,
                        chunk_size: int) -> int:
        return self._bus(host).call(ctx, topic_for(host), "precopy_pending",
                                    rpc_version="1.5", instance_uuid=instance_uuid,
                                    chunk_size=chunk_size)

    def precopy_measure(self, ctx: RequestContext, host: str, instance_uuid: str,
                        chunk_size: int) -> dict:
        """Since 1.6: what a first pre-copy round would send, measured without a freeze."""
        return self._bus(host).call(ctx, topic_for(host), "precopy_measure",
                                    rpc_version="1.6", instance_uuid=instance_uuid,
                                    chunk_size=chunk_size)

    def end_precopy(self, ctx: RequestContext, host: str, instance_uuid: str) -> bool:
        return self._bus(host).call(ctx, topic_for(host), "end_precopy", rpc_version="1.5",
                                    **self._long(), instance_uuid=instance_uuid)

    def finish_move_at_dest(self, ctx: RequestContext, host: str, instance: dict,
                            snapshot_id: str, checksum: str, disk_gb: int,
                            power_on: bool) -> dict:
        return self._bus(host).call(ctx, topic_for(host), "finish_move_at_dest",
                                    rpc_version=self.VERSION,
                                    **self._long(), instance=instance,
                                    snapshot_id=snapshot_id, checksum=checksum,
                                    disk_gb=disk_gb, power_on=power_on)

    def cleanup_move_at_dest(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._bus(host).call(ctx, topic_for(host), "cleanup_move_at_dest", rpc_version=self.VERSION,
                             instance_uuid=instance_uuid)

    def restore_at_source(self, ctx: RequestContext, host: str, instance: dict,
                          power_on: bool) -> int:
        return self._bus(host).call(ctx, topic_for(host), "restore_at_source",
                                    rpc_version=self.VERSION, instance=instance, power_on=power_on)

    def confirm_move_at_source(self, ctx: RequestContext, host: str,
                               instance_uuid: str) -> None:
        self._bus(host).call(ctx, topic_for(host), "confirm_move_at_source",
                             rpc_version=self.VERSION, instance_uuid=instance_uuid)

    def refresh_usage(self, ctx: RequestContext, host: str) -> None:
        self._bus(host).cast(ctx, topic_for(host), "refresh_usage", rpc_version=self.VERSION)
