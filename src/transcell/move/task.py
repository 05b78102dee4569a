"""Resize and cold migration as a saga: the steps, their compensations, the flip.

The server's data travels one way only, through the global image store: the
source host uploads a snapshot, the target host rebuilds the disk from it.
Until the flip the source cell owns the server and everything can be undone;
the flip (target row visible, mapping moved, source row hidden) is the
point of no return, after which a resumed saga only ever finishes.

Events and faults of a move are written to the cell that owns the server at
that moment, and the current action's history is copied across at the flip,
so ``os-instance-actions`` shows the whole move wherever the server ends up.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transcell import cell as cells
from transcell import exception, notifications
from transcell import mapping as mappings
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.compute.virt import power_state
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.move import binding, copy, plan, precopy, reach, records, report
from transcell.move import saga as sagas
from transcell.move import volumes as volume_moves
from transcell.move.saga import Runner, Saga, Step
from transcell.move.saga_task import SagaTask
from transcell.registry import services

LOG = logging.getLogger(__name__)

CONDUCTOR_EVENT = "conductor_migrate_server"
PREP_DEST_EVENT = "compute_prep_snapshot_based_resize_at_dest"
PREP_SOURCE_EVENT = "compute_prep_snapshot_based_resize_at_source"
FINISH_DEST_EVENT = "compute_finish_snapshot_based_resize_at_dest"
READDRESS_EVENT = "conductor_readdress_ports"
PRECOPY_EVENT = "conductor_precopy_disk"


def source_cell(saga: Saga) -> cells.Cell:
    return cells.get_cell(saga.resources["source_cell"])


def target_cell(saga: Saga) -> cells.Cell:
    return cells.get_cell(saga.resources["target_cell"])


def both_cells(saga: Saga) -> list[cells.Cell]:
    found = [source_cell(saga)]
    if saga.resources.get("target_cell") and saga.resources["target_cell"] != found[0].uuid:
        found.append(target_cell(saga))
    return found


def is_cross_cell(saga: Saga) -> bool:
    return bool(saga.resources.get("target_cell")) and \
        saga.resources["target_cell"] != saga.resources["source_cell"]


def ctx_of(saga: Saga) -> RequestContext:
    return RequestContext.from_dict(saga.context)


def remap(saga: Saga, source: cells.Cell, owner: cells.Cell, fault_point: str) -> None:
    """Make the server's rows in ``owner`` the server: shown there, mapped there,
    the flip recorded, then hidden in ``source``.

    The mapping moves in the same transaction that records the flip, under the
    saga's generation check: a conductor overtaken while it was frozen in this
    step cannot point the server at a cell the new owner has cleaned up. A fault
    injected at ``fault_point`` lands in the worst place (visible at the target,
    the mapping and the flip about to be recorded), so it must be undone.
    """
    uuid = saga.instance_uuid
    records.set_hidden(owner, uuid, False)

    def switch(session) -> None:
        mappings.map_to(uuid, owner, session)
        sagas.check_fault(fault_point)

    saga.flipped = True
    try:
        saga.save(also=switch)
    except BaseException:
        saga.flipped = False
        raise
    records.set_hidden(source, uuid, True)


def unmap(saga: Saga) -> None:
    """Undo ``remap`` before the flip was recorded: the source's rows are the server."""
    uuid = saga.instance_uuid
    source = source_cell(saga)
    records.set_hidden(source, uuid, False)
    mappings.map_to(uuid, source)
    records.set_hidden(target_cell(saga), uuid, True)


class MoveTask(SagaTask):
    """Runs, rolls back and resumes moves; one instance serves the conductor."""

    noun = "move"
    interrupted = "The move was interrupted before its point of no return and was undone."

    def __init__(self) -> None:
        self.compute = ComputeAPI()
        self.runner = Runner([
            Step("allocations", self._claim, self._release),
            Step("target_db", self._copy_to_target, self._drop_target_copy),
            Step("prep_dest", self._prep_dest, self._unprep_dest),
            Step("precopy", self._precopy, self._abandon_precopy),
            Step("prep_source", self._prep_source, self._restore_source),
            Step("volumes", self._migrate_volumes, self._unmigrate_volumes),
            Step("finish_dest", self._finish_dest, self._clean_dest),
            Step("flip", self._flip, self._flip_back),
        ])
        assert tuple(step.name for step in self.runner.steps) == plan.STEP_NAMES

    # entry -------------------------------------------------------------------
    def start(self, saga: Saga) -> None:
        """Run a move the API recorded and this conductor has just claimed."""
        ctx = ctx_of(saga)
        cell = source_cell(saga)
        try:
            actions.start_event(ctx, cell, saga.instance_uuid, CONDUCTOR_EVENT)
            server = inst.get(cell, saga.instance_uuid)
            notifications.notify(ctx, "instance.resize.start", notifications.instance_payload(
                server, migration_uuid=saga.uuid))
        except Exception as exc:
            LOG.exception("Move %s of %s could not start", saga.uuid, saga.instance_uuid)
            self.roll_back(saga, exc)
            return
        self.run(saga)

    # rollback ---------------------------------------------------------------
    def _rolled_back(self, saga: Saga, error: BaseException) -> None:
        ctx = ctx_of(saga)
        cell = source_cell(saga)
        uuid = saga.instance_uuid
        saga.fence()
        records.update_migration(saga.uuid, [cell], status="error")
        server = inst.update(cell, uuid, expected_task_state=(None, *vm.MOVING_TASK_STATES),
                             task_state=None, progress=None)
        inst.add_fault(cell, uuid, error, host=saga.resources["source_host"])
        actions.finish_event(ctx, cell, uuid, CONDUCTOR_EVENT, error)
        saga.status = sagas.ROLLED_BACK
        saga.save()
        notifications.notify(ctx, "compute_task.migrate_server.error",
                             notifications.instance_payload(server, migration_uuid=saga.uuid,
                                                            reason=saga.error),
                             priority="ERROR")

    def _give_up(self, saga: Saga, error: BaseException) -> None:
        saga.status = sagas.FAILED
        saga.save()
        cell = cells.cell_of_instance(saga.instance_uuid)
        records.update_migration(saga.uuid, both_cells(saga), status="error")
        inst.update(cell, saga.instance_uuid, vm_state=vm.ERROR, task_state=None)
        inst.add_fault(cell, saga.instance_uuid, error)

    # step 1: allocations ----------------------------------------------------
    def _claim(self, saga: Saga) -> None:
        """The source allocation goes to the migration consumer; the instance claims the target.

        Both in the scheduler's one Placement write (``claim_moving``); a retried
        step whose migration already holds the source claims the target alone.
        """
        res = saga.resources
        server = inst.get(source_cell(saga), saga.instance_uuid)  # one read for both
        if res.get("dest_host"):
            if not _holds(saga.uuid):
                services.placement.move_allocations(saga.instance_uuid, saga.uuid)
            if "port_plan" not in res:
                self._check_reach(saga, server)
            return
        spec = self._move_spec(saga, server)
        from transcell.rpc.bus import get_bus
        from transcell.scheduler.rpcapi import SchedulerAPI
        selections = SchedulerAPI(get_bus(CONF.rpc.transport_url)).select_destinations(
            ctx_of(saga), spec, saga.instance_uuid, migration_uuid=saga.uuid)
        chosen, alternates = selections[0], selections[1:]
        saga.remember(dest_host=chosen["host"], dest_node=chosen["nodename"],
                      target_cell=chosen["cell_uuid"], alternates=alternates)
        records.update_migration(saga.uuid, [source_cell(saga)], dest_compute=chosen["host"],
                                 dest_node=chosen["nodename"], dest_host=chosen["host"])
        self._check_reach(saga, server)

    def _check_reach(self, saga: Saga, server: dict) -> None:
        """Refuse, before anything stops, a move its volumes or ports cannot follow.

        The same check as a move plan's (``move.reach``), on the host the
        scheduler chose; its answer is kept, so each later step knows which
        volumes to migrate and which ports to re-address.
        """
        res = saga.resources
        source = source_cell(saga)
        target = target_cell(saga)
        found = reach.check(ctx_of(saga), records.volume_ids(source, saga.instance_uuid),
                            records.port_ids(server), res["dest_host"], target.name,
                            bool(res.get("readdress")))
        if found["blockers"]:
            raise exception.MoveBlocked(target=f"{target.name}/{res['dest_host']}",
                                        reasons="; ".join(found["blockers"]))
        volume_moves.remember_plan(saga, found["volumes"], source)
        # what the later steps go by; undoing the claim needs none of it
        saga.note(port_plan=found["ports"], volume_backed=_volume_backed(source, server))

    def _move_spec(self, saga: Saga, server: dict) -> dict:
        res = saga.resources
        return plan.move_spec(server, res["source_cell"], res["new_flavor"],
                              res.get("requested_host"), bool(res["allow_cross_cell"]),
                              sorted({res["source_host"], *(res.get("ignore_hosts") or [])}),
                              any_zone=bool(res.get("drain")))

    def _release(self, saga: Saga) -> None:
        """Hand the source allocation back; this also drops the target claim."""
        if _holds(saga.uuid):
            services.placement.move_allocations(saga.uuid, saga.instance_uuid,
                                                consumer_type="INSTANCE")

    # step 2: the hidden copy in the target cell --------------------------------
    def _copy_to_target(self, saga: Saga) -> None:
        if not is_cross_cell(saga):
            return
        source = source_cell(saga)
        records.update_migration(saga.uuid, [source], cross_cell_move=True)
        copy.copy_instance(source, target_cell(saga), saga.instance_uuid, hidden=True)

    def _drop_target_copy(self, saga: Saga) -> None:
        if is_cross_cell(saga):
            copy.hard_delete(target_cell(saga), saga.instance_uuid, only_hidden=True)

    # step 3: the target host, then its ports -----------------------------------
    def _prep_dest(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        source = source_cell(saga)
        disk_gb = saga.resources["new_flavor"]["root_gb"]
        while True:
            host = saga.resources["dest_host"]
            try:
                with actions.event(ctx, source, saga.instance_uuid, PREP_DEST_EVENT, host):
                    self.compute.prep_move_at_dest(ctx, host, saga.instance_uuid, disk_gb)
                break
            except Exception as exc:
                if not self._next_alternate(saga, exc):
                    raise
        server = inst.get(source, saga.instance_uuid)
        ports = records.port_ids(server)
        saga.remember(ports=ports)
        host = saga.resources["dest_host"]
        # a port to be re-addressed is bound there only once it has an address there
        binding.bind(ctx, binding.kept(saga.resources.get("port_plan") or [], ports), host)
        volume_moves.attach_kept(ctx, saga, host)

    def _next_alternate(self, saga: Saga, error: BaseException) -> bool:
        """Claim the next alternate host in the target cell; False when none is left."""
        alternates = list(saga.resources.get("alternates") or [])
        failed = saga.resources["dest_host"]
        while alternates:
            alternate = alternates.pop(0)
            saga.remember(alternates=alternates)
            server = inst.get(source_cell(saga), saga.instance_uuid)
            if not services.placement.claim(saga.instance_uuid, alternate["allocation_request"],
                                            server["project_id"], server["user_id"]):
                continue
            LOG.info("Preparing %s for move %s failed (%s); trying alternate %s", failed,
                     saga.uuid, error, alternate["host"])
            saga.remember(dest_host=alternate["host"], dest_node=alternate["nodename"])
            records.update_migration(saga.uuid, both_cells(saga), dest_compute=alternate["host"],
                                     dest_node=alternate["nodename"], dest_host=alternate["host"])
            return True
        return False

    def _unprep_dest(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        volume_moves.detach_dest(ctx, saga, reach.KEEP)
        binding.unbind(ctx, saga.resources.get("ports") or [], saga.resources.get("dest_host"),
                       fallback_host=saga.resources["source_host"])

    # step 4: copy the disk while the guest still runs ---------------------------
    def _precopy(self, saga: Saga) -> None:
        if not precopy.wanted(saga):  # volume_backed is known since the allocations step
            return
        if precopy.skipped(self.compute, saga, ctx_of(saga)):
            return  # before the server is read or an event written: a skip costs one call
        source = source_cell(saga)
        server = inst.get(source, saga.instance_uuid)
        ctx = ctx_of(saga)
        with actions.event(ctx, source, saga.instance_uuid, PRECOPY_EVENT,
                           saga.resources["source_host"]):
            precopy.run(self.compute, saga, ctx,
                        {"uuid": server["uuid"], "image_ref": server.get("image_ref")},
                        lambda image_id: _create_snapshot(image_id, server, saga.uuid))

    def _abandon_precopy(self, saga: Saga) -> None:
        precopy.abandon(self.compute, saga, ctx_of(saga))

    # step 5: stop at the source, upload the snapshot ---------------------------
    def _prep_source(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        res = saga.resources
        source = source_cell(saga)
        uuid = saga.instance_uuid
        server = inst.update(source, uuid, task_state=vm.RESIZE_MIGRATING, full=False)
        inst.set_flavors(source, uuid, old=res["old_flavor"], new=res["new_flavor"])
        inst.set_system_metadata(source, uuid, "old_vm_state", res["old_vm_state"])
        records.update_migration(saga.uuid, both_cells(saga), status="migrating")
        snapshot_id = None
        if not res.get("volume_backed"):  # a volume-backed root travels as a volume
            snapshot_id = records.snapshot_id_for(saga.uuid)
            saga.remember(snapshot_id=snapshot_id)
            _create_snapshot(snapshot_id, server, saga.uuid)
        with actions.event(ctx, source, uuid, PREP_SOURCE_EVENT, res["source_host"]):
            result = self.compute.prep_move_at_source(ctx, res["source_host"], uuid, snapshot_id,
                                                      res.get("precopy_image"))
        saga.fence()  # the upload may have taken long: still ours before writing on
        self._readdress(saga, source)
        binding.activate(ctx, res.get("ports") or [], res["dest_host"])
        inst.update(source, uuid, task_state=vm.RESIZE_MIGRATED,
                    power_state=power_state.SHUTDOWN, full=False)
        records.update_migration(saga.uuid, both_cells(saga), status="post-migrating")
        # the snapshot's figures; restoring the source goes by snapshot_id, saved above
        saga.note(checksum=result["checksum"], disk_size=result["disk_size"],
                  bytes_uploaded=result["bytes_uploaded"], stopped_at=result["stopped_at"],
                  flatten_seconds=result.get("flatten_seconds"),
                  upload_seconds=result.get("upload_seconds"),
                  bytes_read=result.get("bytes_read"), delta=result.get("delta"),
                  final_chunks=result.get("final_chunks"))

    def _readdress(self, saga: Saga, source: cells.Cell) -> None:
        """The guest is stopped: ports that need it get their target cell's addresses."""
        ctx = ctx_of(saga)
        res = saga.resources
        wanted = [e for e in res.get("port_plan") or [] if e["action"] == reach.READDRESS]
        if not wanted:
            return
        actions.start_event(ctx, source, saga.instance_uuid, READDRESS_EVENT, res["dest_host"])
        try:
            done = binding.readdress(ctx, res["port_plan"], res["dest_host"])
            saga.remember(port_plan=done)
        except BaseException as exc:
            actions.finish_event(ctx, source, saga.instance_uuid, READDRESS_EVENT, exc)
            raise
        actions.finish_event(ctx, source, saga.instance_uuid, READDRESS_EVENT,
                             details=readdress_summary(done))

    def _restore_source(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        res = saga.resources
        source = source_cell(saga)
        uuid = saga.instance_uuid
        binding.restore_addresses(ctx, res.get("port_plan") or [])
        binding.activate(ctx, res.get("ports") or [], res["source_host"])
        server = inst.get(source, uuid, include_hidden=True)
        state = self.compute.restore_at_source(
            ctx, res["source_host"], self._guest(server, res["old_flavor"], source),
            power_on=bool(res["power_on"]))
        _delete_snapshot(res.get("snapshot_id"))
        inst.set_flavors(source, uuid, old=None, new=None)
        inst.set_system_metadata(source, uuid, "old_vm_state", None)
        inst.update(source, uuid, power_state=state, task_state=None, progress=None)

    @staticmethod
    def _guest(server: dict, flavor: dict, cell: cells.Cell,
               devices: list[dict] | None = None) -> dict:
        guest = records.guest_info(server, flavor)
        guest["block_devices"] = (devices if devices is not None
                                  else records.block_devices(cell, server["uuid"]))
        return guest

    # step 5: volumes the target cell cannot reach ---------------------------------
    def _migrate_volumes(self, saga: Saga) -> None:
        moved = volume_moves.migrate(ctx_of(saga), saga, saga.resources["dest_host"])
        saga.note(**moved)  # totals; each volume's own progress is remembered as it goes

    def _unmigrate_volumes(self, saga: Saga) -> None:
        volume_moves.unmigrate(ctx_of(saga), saga)

    # step 6: rebuild at the target from the snapshot ---------------------------
    def _finish_dest(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        res = saga.resources
        uuid = saga.instance_uuid
        source = source_cell(saga)
        server = inst.get(source, uuid, include_hidden=True)
        if is_cross_cell(saga):
            inst.update(target_cell(saga), uuid, task_state=vm.RESIZE_FINISH, full=False)
        with actions.event(ctx, source, uuid, FINISH_DEST_EVENT, res["dest_host"]) as said:
            result = self.compute.finish_move_at_dest(
                ctx, res["dest_host"], self._guest(
                    server, res["new_flavor"], source,
                    volume_moves.dest_block_devices(saga, source)),
                res.get("snapshot_id"), res["checksum"], res["new_flavor"]["root_gb"],
                bool(res["power_on"]))
            said["details"] = report.downtime_summary(res, result)
        saga.fence()
        if result.get("verified_checksum", res["checksum"]) != res["checksum"]:
            raise exception.ChecksumMismatch(what=f"disk of instance {uuid}",
                                             expected=res["checksum"],
                                             actual=result.get("verified_checksum"))
        _delete_snapshot(res.get("snapshot_id"))
        _delete_snapshot(res.get("precopy_image"))
        volume_moves.complete(ctx, saga)
        saga.note(running_at=result["running_at"],
                  bytes_downloaded=result.get("bytes_downloaded", 0),
                  bytes_taken=result.get("bytes_taken", 0),
                  download_seconds=result.get("download_seconds"),
                  verify_seconds=result.get("verify_seconds"))

    def _clean_dest(self, saga: Saga) -> None:
        res = saga.resources
        self.compute.cleanup_move_at_dest(ctx_of(saga), res["dest_host"], saga.instance_uuid)
        _delete_snapshot(res.get("snapshot_id"))

    # step 6: the flip -----------------------------------------------------------
    def _flip(self, saga: Saga) -> None:
        res = saga.resources
        uuid = saga.instance_uuid
        source = source_cell(saga)
        owner = target_cell(saga)
        new = res["new_flavor"]
        stats = _stats(saga)
        values = dict(records.flavor_columns(new), vm_state=vm.RESIZED, task_state=None,
                      host=res["dest_host"], node=res["dest_node"],
                      availability_zone=owner.name, progress=100,
                      power_state=(power_state.RUNNING if res["power_on"]
                                   else power_state.SHUTDOWN))
        saga.fence()
        if not is_cross_cell(saga):
            volume_moves.point_rows(saga, source, at_dest=True)
            inst.update(source, uuid, full=False, **values)
            inst.set_flavors(source, uuid, cur=new, old=res["old_flavor"], new=new)
            records.update_migration(saga.uuid, [source], status="finished", stats=stats)
            saga.flipped = True
            saga.save()
            return
        copy.copy_action(source, owner, uuid, saga.context["request_id"])
        volume_moves.point_rows(saga, owner, at_dest=True)
        inst.update(owner, uuid, full=False, **values)
        inst.set_flavors(owner, uuid, cur=new, old=res["old_flavor"], new=new)
        inst.set_system_metadata(owner, uuid, "old_vm_state", res["old_vm_state"])
        records.update_migration(saga.uuid, [source, owner], status="finished", stats=stats,
                                 dest_compute=res["dest_host"], dest_node=res["dest_node"],
                                 dest_host=res["dest_host"])
        remap(saga, source, owner, "flip")

    def _flip_back(self, saga: Saga) -> None:
        """Before the flip was recorded: the source owns the server again, as it did."""
        res = saga.resources
        uuid = saga.instance_uuid
        source = source_cell(saga)
        if is_cross_cell(saga):
            unmap(saga)
            return
        inst.update(source, uuid, **records.flavor_columns(res["old_flavor"]),
                    vm_state=res["old_vm_state"], host=res["source_host"],
                    node=res["source_node"], availability_zone=source.name)
        inst.set_flavors(source, uuid, cur=res["old_flavor"])
        volume_moves.point_rows(saga, source, at_dest=False)

    # after the flip -----------------------------------------------------------
    def _succeeded(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        owner = target_cell(saga)
        uuid = saga.instance_uuid
        mappings.set_spec_flavor(uuid, saga.resources["new_flavor"])
        actions.finish_event(ctx, owner, uuid, CONDUCTOR_EVENT)
        saga.status = sagas.MOVED
        saga.remember(moved_at=time.time())
        self.compute.refresh_usage(ctx, saga.resources["dest_host"])
        server = inst.get(owner, uuid)
        notifications.notify(ctx, "instance.resize.end", notifications.instance_payload(
            server, migration_uuid=saga.uuid))
        LOG.info("Move %s of %s reached VERIFY_RESIZE on %s", saga.uuid, uuid,
                 saga.resources["dest_host"])


def _holds(consumer: str) -> bool:
    return bool(services.placement.get_allocations(consumer).get("allocations"))


def _stats(saga: Saga) -> dict[str, Any]:
    res = saga.resources
    stats = {key: res.get(key) for key in (
        "disk_size", "bytes_uploaded", "bytes_downloaded", "bytes_read", "delta",
        "flatten_seconds", "upload_seconds", "download_seconds", "verify_seconds",
        "volume_bytes", "volume_bytes_sent", "final_chunks")}
    stats["precopy_rounds"] = res.get("precopy_rounds") or []
    stats["precopy_skipped"] = res.get("precopy_skipped")
    stats["volumes"] = [{k: v.get(k) for k in ("volume_id", "action", "from_backend",
                                                "to_backend", "bytes_sent")}
                        for v in res.get("volumes") or []]
    stats["readdressed_ports"] = [
        {"port_id": p["port_id"], "old_fixed_ips": p.get("old_fixed_ips"),
         "new_fixed_ips": p.get("new_fixed_ips")}
        for p in res.get("port_plan") or [] if p["action"] == reach.READDRESS]
    stats["phases"] = res.get("phases") or {}
    if (down := report.downtime_seconds(res)) is not None:
        stats["downtime_seconds"] = down
    stats["total_seconds"] = round(time.time() - res["started_at"], 3)
    return stats


def _create_snapshot(snapshot_id: str, server: dict, migration_uuid: str) -> None:
    admin = RequestContext.admin()
    try:
        services.image.get(admin, snapshot_id)
        return
    except exception.ImageNotFound:
        pass
    try:
        # owned by the server's project, so hosts acting for the user can write
        # and read it; hidden from image lists
        services.image.create(admin, id=snapshot_id, owner=server["project_id"],
                              name=f"{server['display_name']}-resize-temp",
                              disk_format="raw", container_format="bare", os_hidden=True,
                              transcell_migration=migration_uuid,
                              instance_uuid=server["uuid"])
    except exception.Conflict:
        pass  # created by an earlier attempt of this step


def _delete_snapshot(snapshot_id: str | None) -> None:
    if not snapshot_id:
        return
    try:
        services.image.delete(RequestContext.admin(), snapshot_id)
    except exception.ImageNotFound:
        pass


def _volume_backed(cell: cells.Cell, server: dict) -> bool:
    """A server whose root disk is a volume (booted from one): no local disk to send."""
    if server.get("image_ref"):
        return False
    return any(bd.get("boot_index") == 0 for bd in records.block_devices(cell, server["uuid"]))


def readdress_summary(plan: list[dict]) -> str:
    """Old and new addresses of each re-addressed port, for the instance action."""
    parts = []
    for entry in plan:
        if entry["action"] != reach.READDRESS:
            continue
        old = ",".join(ip.get("ip_address", "?") for ip in entry.get("old_fixed_ips") or [])
        new = ",".join(ip.get("ip_address", "?") for ip in entry.get("new_fixed_ips") or [])
        parts.append(f"port {entry['port_id']}: {old} -> {new}")
    return "; ".join(parts)
