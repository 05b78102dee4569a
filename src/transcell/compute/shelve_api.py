"""The compute API's shelve, shelveOffload and unshelve: checks, records, then RPC.

Each action takes the server's task state by one conditional update from the
states it may start in, so of two racing requests exactly one proceeds and
the other gets 409. What the 202 promises is on disk before it is sent: the
task state, the instance action, the snapshot's image record (shelve) or the
unshelve saga (an offloaded server), so a restarted host or conductor carries
out an accepted request.
"""

from __future__ import annotations

import contextlib
import logging
import uuid as uuidlib
from typing import Any

from transcell import cell as cells
from transcell import exception, quota
from transcell import mapping as mappings
from transcell.compute import actions, shelve_rpcapi, shelving, volumes
from transcell.compute import instance as inst
from transcell.compute.power_api import check_not_locked
from transcell.compute.shelve_ops import delete_snapshot
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)

#: ``zone`` of ``unshelve`` when the request named none (the server keeps its zone).
KEEP_ZONE: Any = ...


def _require(server: dict, action: str, vm_states: tuple[str, ...]) -> None:
    if server["vm_state"] not in vm_states or server["task_state"] is not None:
        attr, state = (("task_state", server["task_state"]) if server["task_state"]
                       else ("vm_state", server["vm_state"]))
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr=attr, state=state)


def _is_volume_backed(server: dict) -> bool:
    return not server.get("image_ref")


class ShelveAPI:
    def __init__(self, compute_api: Any) -> None:
        #: the compute API, for reading a server through its instance mapping
        self.compute_api = compute_api

    # shelve -------------------------------------------------------------------
    def shelve(self, ctx: RequestContext, server_id: str) -> str | None:
        """Stop the server and snapshot its disk; offload at once when
        ``[compute] shelved_offload_time`` is 0. Returns the snapshot's id (None for a
        volume-backed server, which has no disk of its own)."""
        cell, server = self.compute_api.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require(server, shelving.SHELVE, shelving.SHELVABLE)
        server = inst.update(cell, server_id, expected_task_state=None,
                             expected_vm_state=shelving.SHELVABLE, task_state=shelving.SHELVING)
        image_id = None
        try:
            actions.record_action(ctx, cell, server_id, shelving.SHELVE)
            if not _is_volume_backed(server):
                image_id = str(uuidlib.uuid4())
                _create_snapshot(ctx, server, image_id)
                inst.set_system_metadata(cell, server_id, shelving.IMAGE_KEY, image_id)
        except Exception:
            delete_snapshot(image_id)
            with contextlib.suppress(exception.NotFound, exception.Conflict):
                inst.update(cell, server_id, expected_task_state=shelving.SHELVING,
                            task_state=None)
            raise
        shelve_rpcapi.shelve_instance(ctx, server["host"], server_id, image_id,
                                      offload=CONF.compute.shelved_offload_time == 0)
        return image_id

    def shelve_offload(self, ctx: RequestContext, server_id: str) -> None:
        cell, server = self.compute_api.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require(server, shelving.SHELVE_OFFLOAD, (shelving.SHELVED,))
        server = inst.update(cell, server_id, expected_task_state=None,
                             expected_vm_state=shelving.SHELVED,
                             task_state=shelving.SHELVING_OFFLOADING)
        try:
            actions.record_action(ctx, cell, server_id, shelving.SHELVE_OFFLOAD)
        except Exception:
            inst.update(cell, server_id, expected_task_state=shelving.SHELVING_OFFLOADING,
                        task_state=None)
            raise
        shelve_rpcapi.shelve_offload_instance(ctx, server["host"], server_id)

    # unshelve -----------------------------------------------------------------
    def unshelve(self, ctx: RequestContext, server_id: str, zone: Any = KEEP_ZONE,
                 host: str | None = None) -> None:
        """Start a shelved server again; an offloaded one goes wherever the scheduler
        (or, with ``host``, the administrator) puts it, in any cell.

        ``zone``: ``KEEP_ZONE`` when the request named none, None to unpin the
        server from its zone (2.91), else a zone's name. A zone or a host is
        only for an offloaded server (409 otherwise, as Nova); an unknown one,
        or a host outside the zone asked for, is 400.
        """
        from transcell.conductor import unshelve as unshelve_task
        cell, server = self.compute_api.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require(server, shelving.UNSHELVE, (shelving.SHELVED, shelving.SHELVED_OFFLOADED))
        offloaded = server["vm_state"] == shelving.SHELVED_OFFLOADED
        if (zone is not KEEP_ZONE or host) and not offloaded:
            raise exception.Conflict(
                f"Instance {server_id} is shelved but not offloaded: an availability zone "
                "or a host can only be given to unshelve an offloaded server.")
        if offloaded:
            _check_destination(server_id, zone, host)
        if offloaded:  # it takes its cores and RAM back: refused (403) over the limits
            quota.check_unshelve(ctx, server)
        server = inst.update(cell, server_id, expected_task_state=None,
                             expected_vm_state=server["vm_state"],
                             task_state=shelving.UNSHELVING)
        saga = None
        try:
            actions.record_action(ctx, cell, server_id, shelving.UNSHELVE)
            if offloaded:
                saga = unshelve_task.record(
                    ctx, cell, server, server["system_metadata"].get(shelving.IMAGE_KEY),
                    zone, host)
        except Exception:
            with contextlib.suppress(exception.NotFound, exception.Conflict):
                inst.update(cell, server_id, expected_task_state=shelving.UNSHELVING,
                            task_state=None)
            raise
        if saga is None:
            shelve_rpcapi.unshelve_on_host(ctx, server["host"], server_id)
            return
        from transcell.compute.api import _conductor
        _conductor().unshelve_instance(ctx, server_id, saga.uuid)


def _check_destination(server_id: str, zone: Any, host: str | None) -> None:
    zones = {c.name for c in cells.list_cells(include_cell0=False)}
    if zone not in (KEEP_ZONE, None) and zone not in zones:
        raise exception.Invalid(f"The requested availability zone is not available: {zone}")
    if not host:
        return
    try:
        host_cell = cells.cell_of_host(host)
    except exception.NotFound:
        raise exception.Invalid(f"Compute host {host} could not be found.") from None
    pinned = zone if zone is not KEEP_ZONE else (
        mappings.request_spec(server_id) or {}).get("availability_zone")
    if pinned and pinned != host_cell.name:
        raise exception.Invalid(f"Host {host} is not in availability zone {pinned}.")


def _create_snapshot(ctx: RequestContext, server: dict, image_id: str) -> None:
    """The snapshot's image record, queued until the host uploads the disk: owned by the
    server's project and listed under Nova's name, so users (and Tempest) find it."""
    flavor = server.get("flavor") or {}
    services.image.create(
        RequestContext.admin(), id=image_id, owner=server["project_id"],
        name=shelving.image_name(server), disk_format="raw", container_format="bare",
        min_disk=int(flavor.get("root_gb") or 0), min_ram=int(flavor.get("memory_mb") or 0),
        instance_uuid=server["uuid"], image_type="snapshot",
        base_image_ref=server.get("image_ref") or "", user_id=server["user_id"])


def delete_shelved(ctx: RequestContext, cell: cells.Cell, server: dict) -> bool:
    """A delete of a shelved server also drops its snapshot; an offloaded one has no host
    to do the rest, so its ports, volumes and rows go here. True when nothing is left
    for a compute host to do."""
    if server["vm_state"] not in (shelving.SHELVED, shelving.SHELVED_OFFLOADED):
        return False
    delete_snapshot(server["system_metadata"].get(shelving.IMAGE_KEY))
    if server["vm_state"] == shelving.SHELVED and server["host"]:
        return False
    try:
        services.network.deallocate_for_instance(ctx, server["uuid"])
    except Exception:
        LOG.exception("Could not release the ports of offloaded server %s", server["uuid"])
    volumes.cleanup_volumes(ctx, server["bdms"])
    with contextlib.suppress(exception.NotFound):
        services.placement.delete_allocations(server["uuid"])
    inst.soft_delete(cell, server["uuid"])
    return True
