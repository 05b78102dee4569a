"""How the API and the conductor reach a compute host for shelving (RPC 1.3)."""

from __future__ import annotations

from transcell.cell import cell_of_host
from transcell.compute.rpcapi import topic_for
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.rpc.bus import get_bus

VERSION = "1.3"


def _bus(host: str):
    return get_bus(cell_of_host(host).transport_url)


def shelve_instance(ctx: RequestContext, host: str, instance_uuid: str, image_id: str | None,
                    offload: bool) -> None:
    """A cast: the API answers 202 once the task state and the image record exist."""
    _bus(host).cast(ctx, topic_for(host), "shelve_instance", rpc_version=VERSION,
                    instance_uuid=instance_uuid, image_id=image_id, offload=offload)


def shelve_offload_instance(ctx: RequestContext, host: str, instance_uuid: str) -> None:
    _bus(host).cast(ctx, topic_for(host), "shelve_offload_instance", rpc_version=VERSION,
                    instance_uuid=instance_uuid)


def unshelve_on_host(ctx: RequestContext, host: str, instance_uuid: str) -> None:
    """A shelved server not yet offloaded starts again where it is."""
    _bus(host).cast(ctx, topic_for(host), "unshelve_on_host", rpc_version=VERSION,
                    instance_uuid=instance_uuid)


def unshelve_instance(ctx: RequestContext, host: str, instance: dict, image_id: str | None,
                      checksum: str | None, disk_gb: int) -> dict:
    """A call: the conductor's saga must know the guest runs before it flips the server.
    Long, since it fetches a disk; given up early once the host stops heartbeating."""
    return _bus(host).call(ctx, topic_for(host), "unshelve_instance", rpc_version=VERSION,
                           timeout=float(CONF.rpc.long_rpc_timeout),
                           rpc_call_monitor_timeout=float(CONF.rpc.call_monitor_timeout),
                           instance=instance, image_id=image_id, checksum=checksum,
                           disk_gb=disk_gb)
