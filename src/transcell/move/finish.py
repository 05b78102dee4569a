"""Ending a move that reached VERIFY_RESIZE: confirm keeps it, revert undoes it.

Both are resumable the same way the move is: every write converges, and the
saga's status says which ending was chosen, so a conductor that dies midway
finishes the same ending on its next pass.
"""

from __future__ import annotations

import logging

from transcell import cell as cells
from transcell import mapping as mappings
from transcell import notifications
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.compute.virt import power_state
from transcell.context import RequestContext
from transcell.move import binding, copy, records
from transcell.move import saga as sagas
from transcell.move import volumes as volume_moves
from transcell.move.saga import Saga
from transcell.move.task import both_cells, is_cross_cell, source_cell, target_cell
from transcell.registry import services

LOG = logging.getLogger(__name__)

CONFIRM_EVENT = "conductor_confirm_snapshot_based_resize"
CONFIRM_SOURCE_EVENT = "compute_confirm_snapshot_based_resize_at_source"
REVERT_EVENT = "conductor_revert_snapshot_based_resize"
REVERT_DEST_EVENT = "compute_revert_snapshot_based_resize_at_dest"
REVERT_SOURCE_EVENT = "compute_finish_revert_snapshot_based_resize_at_source"


class FinishTask:
    def __init__(self) -> None:
        self.compute = ComputeAPI()

    # confirm -------------------------------------------------------------------
    def confirm(self, ctx: RequestContext, saga: Saga) -> None:
        """Destroy what the source kept, free its allocation, keep the target."""
        res = saga.resources
        uuid = saga.instance_uuid
        owner = target_cell(saga)
        if saga.status != sagas.CONFIRMING:
            saga.status = sagas.CONFIRMING
            saga.remember(confirm_context=ctx.to_dict())
        server = inst.get(owner, uuid)
        notifications.notify(ctx, "instance.resize_confirm.start",
                             notifications.instance_payload(server, migration_uuid=saga.uuid))
        with actions.event(ctx, owner, uuid, CONFIRM_EVENT):
            with actions.event(ctx, owner, uuid, CONFIRM_SOURCE_EVENT, res["source_host"]):
                self.compute.confirm_move_at_source(ctx, res["source_host"], uuid)
                binding.unbind(ctx, res.get("ports") or [], res["source_host"])
                volume_moves.confirm(ctx, saga)
                services.placement.delete_allocations(saga.uuid)
            saga.fence()
            if is_cross_cell(saga):
                copy.hard_delete(source_cell(saga), uuid, only_hidden=True)
            records.update_migration(saga.uuid, both_cells(saga), status="confirmed")
            inst.set_flavors(owner, uuid, old=None, new=None)
            inst.set_system_metadata(owner, uuid, "old_vm_state", None)
            row = inst.get(owner, uuid)
            inst.update(owner, uuid, task_state=None, progress=None, vm_state=(
                vm.STOPPED if row["power_state"] == power_state.SHUTDOWN else vm.ACTIVE))
        self.compute.refresh_usage(ctx, res["source_host"])
        saga.status = sagas.CONFIRMED
        saga.save()
        notifications.notify(ctx, "instance.resize_confirm.end", notifications.instance_payload(
            inst.get(owner, uuid), migration_uuid=saga.uuid))

    # revert --------------------------------------------------------------------
    def revert(self, ctx: RequestContext, saga: Saga) -> None:
        """Give the server back to its source: mapping first, then clean the target."""
        res = saga.resources
        uuid = saga.instance_uuid
        source = source_cell(saga)
        cross = is_cross_cell(saga)
        if saga.status != sagas.REVERTING:
            saga.status = sagas.REVERTING
            saga.remember(revert_context=ctx.to_dict())
        current = cells.cell_of_instance(uuid)
        server = inst.get(current, uuid)
        notifications.notify(ctx, "instance.resize_revert.start",
                             notifications.instance_payload(server, migration_uuid=saga.uuid))
        if cross and current.uuid != source.uuid:
            # History recorded in the target since the move: the move's own action,
            # finished there, and the revert itself.
            copy.copy_action(current, source, uuid, saga.context["request_id"])
            copy.copy_action(current, source, uuid, ctx.request_id)
            inst.update(source, uuid, task_state=vm.RESIZE_REVERTING)
            saga.fence()
            records.set_hidden(source, uuid, False)
            mappings.map_to(uuid, source)
            records.set_hidden(current, uuid, True)
        records.update_migration(saga.uuid, both_cells(saga), status="reverting")
        actions.start_event(ctx, source, uuid, REVERT_EVENT)
        with actions.event(ctx, source, uuid, REVERT_DEST_EVENT, res["dest_host"]):
            binding.restore_addresses(ctx, res.get("port_plan") or [])
            binding.activate(ctx, res.get("ports") or [], res["source_host"])
            self.compute.cleanup_move_at_dest(ctx, res["dest_host"], uuid)
            binding.unbind(ctx, res.get("ports") or [], res["dest_host"])
            # the target's rows say what was attached while resized; read before they go
            volume_moves.revert(ctx, saga, target_cell(saga) if cross else source, source,
                                res["source_host"])
        notifications.notify(ctx, "instance.exists", notifications.instance_payload(
            server, migration_uuid=saga.uuid))
        if cross:
            copy.hard_delete(target_cell(saga), uuid, only_hidden=True)
        with actions.event(ctx, source, uuid, REVERT_SOURCE_EVENT, res["source_host"]):
            row = inst.get(source, uuid)
            guest = records.guest_info(row, res["old_flavor"])
            guest["block_devices"] = records.block_devices(source, uuid)
            state = self.compute.restore_at_source(ctx, res["source_host"], guest,
                                                   power_on=bool(res["power_on"]))
            if services.placement.get_allocations(saga.uuid).get("allocations"):
                services.placement.move_allocations(saga.uuid, uuid, consumer_type="INSTANCE")
        old = res["old_flavor"]
        saga.fence()
        inst.set_flavors(source, uuid, cur=old, old=None, new=None)
        inst.set_system_metadata(source, uuid, "old_vm_state", None)
        inst.update(source, uuid, **records.flavor_columns(old), host=res["source_host"],
                    node=res["source_node"], availability_zone=source.name,
                    vm_state=res["old_vm_state"], task_state=None, power_state=state,
                    progress=None)
        records.update_migration(saga.uuid, [source], status="reverted")
        mappings.set_spec_flavor(uuid, old)
        actions.finish_event(ctx, source, uuid, REVERT_EVENT)
        self.compute.refresh_usage(ctx, res["source_host"])
        self.compute.refresh_usage(ctx, res["dest_host"])
        saga.status = sagas.REVERTED
        saga.save()
        notifications.notify(ctx, "instance.resize_revert.end", notifications.instance_payload(
            inst.get(source, uuid), migration_uuid=saga.uuid))
