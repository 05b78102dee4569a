"""Unshelving an offloaded server into any cell, as a saga.

An offloaded server has no host: only rows in the cell it was shelved in, its
snapshot in the global image store, its ports and its volumes. The scheduler
picks a host in any cell (each cell is an availability zone); when that host
is in another cell, the server's rows travel there exactly as a cross-cell
move carries them (a hidden copy, then a flip of the instance mapping in the
transaction that records the flip, then the old rows go), so the server keeps
its uuid, ports and volumes. The disk is rebuilt from the snapshot with every
chunk verified; the snapshot is deleted only once the guest runs and the flip
is recorded.

The API records the saga (kind ``unshelve``, every step pending, no owner)
before its 202. Until the flip every step has a compensation, and a failure or
a crash before it leaves the server SHELVED_OFFLOADED in its old cell, ready to
be unshelved again; after the flip a resumed saga only ever finishes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from transcell import cell as cells
from transcell import exception
from transcell import mapping as mappings
from transcell.compute import actions, shelve_rpcapi, shelving
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.compute.shelve_ops import delete_snapshot
from transcell.compute.virt import power_state
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow
from transcell.faults import hold_point
from transcell.move import binding, copy, reach, records
from transcell.move import saga as sagas
from transcell.move import volumes as volume_moves
from transcell.move.saga import Runner, Saga, Step
from transcell.move.saga_task import SagaTask
from transcell.move.task import (
    ctx_of,
    is_cross_cell,
    remap,
    source_cell,
    target_cell,
    unmap,
)
from transcell.registry import services

LOG = logging.getLogger(__name__)

KIND = shelving.SAGA_KIND
STEP_NAMES = ("schedule", "target_db", "ports", "volumes", "spawn", "flip")

#: Functions ``(server, spec) -> spec`` applied to the scheduler request of every
#: unshelve, in order, for placement constraints beyond the scheduler's own. Server
#: groups need none: the scheduler honours the group of the spec's ``instance_uuid``,
#: a requested host included (see scheduler.groups).
SPEC_HOOKS: list[Callable[[dict, dict], dict]] = []


def record(ctx: RequestContext, cell: cells.Cell, server: dict, image_id: str | None,
           zone: Any, requested_host: str | None) -> Saga:
    """The API's promise, written before its 202: an unowned saga a conductor will run.

    ``zone`` is the request's ``availability_zone``: ``...`` (Ellipsis) when
    the request did not name one (the server keeps the zone it was built
    in), None to unpin it (2.91), or a zone's name.
    """
    import uuid as uuidlib
    return Saga.create(
        str(uuidlib.uuid4()), server["uuid"], KIND, list(STEP_NAMES),
        {"source_cell": cell.uuid, "source_host": None, "image_id": image_id,
         "zone_given": zone is not ..., "availability_zone": None if zone is ... else zone,
         "requested_host": requested_host, "project_id": server["project_id"],
         "unshelve_started_at": time.time()},
        ctx.to_dict(), owner=None)


def unshelve_spec(server: dict, res: dict[str, Any]) -> dict:
    """What the scheduler is asked for: the server's build request with its current
    flavor, the zone and host the unshelve asked for, and no move constraints."""
    spec = mappings.request_spec(server["uuid"]) or {
        "project_id": server["project_id"], "user_id": server["user_id"]}
    spec.pop("move", None)
    spec.update(instance_uuid=server["uuid"], flavor=server["flavor"], ignore_hosts=[],
                num_instances=1, requested_destination=(
                    {"host": res["requested_host"]} if res.get("requested_host") else None))
    if res.get("zone_given"):
        spec["availability_zone"] = res.get("availability_zone")
    for hook in SPEC_HOOKS:
        spec = hook(server, spec)
    return spec


class UnshelveTask(SagaTask):
    """Runs, rolls back and resumes unshelves; one instance serves the conductor."""

    noun = "unshelve"
    interrupted = "The unshelve was interrupted and undone."

    def __init__(self) -> None:
        self.compute = ComputeAPI()
        self.runner = Runner([
            Step("schedule", self._schedule, self._unschedule),
            Step("target_db", self._copy_to_target, self._drop_target_copy),
            Step("ports", self._bind_ports, self._unbind_ports),
            Step("volumes", self._attach_volumes, self._detach_volumes),
            Step("spawn", self._spawn, self._unspawn),
            Step("flip", self._flip, self._flip_back),
        ])
        assert tuple(step.name for step in self.runner.steps) == STEP_NAMES

    # entry ----------------------------------------------------------------------
    def start(self, saga: Saga) -> None:
        try:
            actions.start_event(ctx_of(saga), source_cell(saga), saga.instance_uuid,
                                shelving.CONDUCTOR_EVENT)
        except Exception as exc:
            LOG.exception("Unshelve %s of %s could not start", saga.uuid, saga.instance_uuid)
            self.roll_back(saga, exc)
            return
        self.run(saga)

    def _give_up(self, saga: Saga, error: BaseException) -> None:
        saga.status = sagas.FAILED
        saga.save()
        self._rolled_back(saga, error)

    def _rolled_back(self, saga: Saga, error: BaseException) -> None:
        """The server is SHELVED_OFFLOADED where it was, with the reason as its fault."""
        ctx = ctx_of(saga)
        cell = source_cell(saga)
        uuid = saga.instance_uuid
        saga.fence()
        inst.update(cell, uuid, task_state=None)
        inst.add_fault(cell, uuid, error)
        actions.finish_event(ctx, cell, uuid, shelving.CONDUCTOR_EVENT, error)
        if saga.status != sagas.FAILED:
            saga.status = sagas.ROLLED_BACK
            saga.save()

    # step: schedule ----------------------------------------------------------------
    def _schedule(self, saga: Saga) -> None:
        """Pick and claim a host in any cell, then check the server's ports and volumes
        can follow it there, before anything is built."""
        ctx = ctx_of(saga)
        res = saga.resources
        source = source_cell(saga)
        uuid = saga.instance_uuid
        server = inst.get(source, uuid)
        if res.get("image_id") and not res.get("checksum"):
            image = services.image.get(RequestContext.admin(), res["image_id"])
            saga.remember(checksum=image.get("os_hash_value"))
        if not res.get("dest_host"):
            from transcell.rpc.bus import get_bus
            from transcell.scheduler.rpcapi import SchedulerAPI
            selections = SchedulerAPI(get_bus(CONF.rpc.transport_url)).select_destinations(
                ctx, unshelve_spec(server, res), uuid)
            chosen = selections[0]
            saga.remember(dest_host=chosen["host"], dest_node=chosen["nodename"],
                          target_cell=chosen["cell_uuid"])
        target = target_cell(saga)
        ports = records.port_ids(server)
        found = reach.check(ctx, records.volume_ids(source, uuid), ports,
                            saga.resources["dest_host"], target.name,
                            reach.readdress_wanted(None))
        if found["blockers"]:
            raise exception.MoveBlocked(target=f"{target.name}/{saga.resources['dest_host']}",
                                        reasons="; ".join(found["blockers"]))
        volume_moves.remember_plan(saga, found["volumes"], source)
        saga.remember(ports=ports, port_plan=found["ports"])

    def _unschedule(self, saga: Saga) -> None:
        """An offloaded server holds nothing in Placement: whatever it holds is this claim."""
        services.placement.delete_allocations(saga.instance_uuid)

    # step: the hidden copy in the target cell ------------------------------------------
    def _copy_to_target(self, saga: Saga) -> None:
        if is_cross_cell(saga):
            copy.copy_instance(source_cell(saga), target_cell(saga), saga.instance_uuid,
                               hidden=True)

    def _drop_target_copy(self, saga: Saga) -> None:
        if is_cross_cell(saga):
            copy.hard_delete(target_cell(saga), saga.instance_uuid, only_hidden=True)

    # step: ports ------------------------------------------------------------------
    def _bind_ports(self, saga: Saga) -> None:
        """The same ports, bound to the chosen host; re-addressed first where the
        target cell does not reach their segment (when that is allowed)."""
        ctx = ctx_of(saga)
        res = saga.resources
        host = res["dest_host"]
        ports = res.get("ports") or []
        plan = res.get("port_plan") or []
        binding.bind(ctx, binding.kept(plan, ports), host)
        if any(entry["action"] == reach.READDRESS for entry in plan):
            saga.remember(port_plan=binding.readdress(ctx, plan, host))
        binding.activate(ctx, ports, host)

    def _unbind_ports(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        res = saga.resources
        binding.restore_addresses(ctx, res.get("port_plan") or [])
        binding.unbind(ctx, res.get("ports") or [], res.get("dest_host"))

    # step: volumes ----------------------------------------------------------------
    def _attach_volumes(self, saga: Saga) -> None:
        """An attachment for the chosen host of every volume; a volume on a backend the
        target cell cannot reach is copied to one it can first (the guest is off)."""
        ctx = ctx_of(saga)
        host = saga.resources["dest_host"]
        volume_moves.attach_kept(ctx, saga, host)
        saga.remember(**volume_moves.migrate(ctx, saga, host))

    def _detach_volumes(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        volume_moves.unmigrate(ctx, saga)
        volume_moves.detach_dest(ctx, saga, reach.KEEP)

    # step: the guest ------------------------------------------------------------
    def _spawn(self, saga: Saga) -> None:
        ctx = ctx_of(saga)
        res = saga.resources
        source = source_cell(saga)
        uuid = saga.instance_uuid
        server = inst.get(source, uuid)
        guest = records.guest_info(server, server["flavor"])
        guest["block_devices"] = volume_moves.dest_block_devices(saga, source)
        with actions.event(ctx, source, uuid, shelving.UNSHELVE_EVENT, res["dest_host"]):
            result = shelve_rpcapi.unshelve_instance(
                ctx, res["dest_host"], guest, res.get("image_id"), res.get("checksum"),
                (server["flavor"] or {}).get("root_gb", 0))
        saga.fence()
        if res.get("checksum") and result.get("verified_checksum") not in (
                None, res["checksum"]):
            raise exception.ChecksumMismatch(what=f"unshelved disk of instance {uuid}",
                                             expected=res["checksum"],
                                             actual=result.get("verified_checksum"))
        volume_moves.complete(ctx, saga)
        saga.remember(unshelve_stats=result)

    def _unspawn(self, saga: Saga) -> None:
        host = saga.resources.get("dest_host")
        if host:
            self.compute.cleanup_move_at_dest(ctx_of(saga), host, saga.instance_uuid)

    # step: the flip --------------------------------------------------------------
    def _flip(self, saga: Saga) -> None:
        res = saga.resources
        uuid = saga.instance_uuid
        source = source_cell(saga)
        owner = target_cell(saga)
        running = (res.get("unshelve_stats") or {}).get("power_state", power_state.RUNNING)
        # the task state stays until the old cell's rows and the snapshot are gone, so
        # no other action interleaves with the end of the unshelve
        values = dict(vm_state=vm.ACTIVE, task_state=shelving.UNSHELVING, host=res["dest_host"],
                      node=res["dest_node"], availability_zone=owner.name,
                      power_state=running, launched_at=utcnow())
        saga.fence()
        if not is_cross_cell(saga):
            volume_moves.point_rows(saga, source, at_dest=True)
            inst.update(source, uuid, expected_task_state=shelving.UNSHELVING, **values)
            saga.flipped = True
            saga.save()
            return
        copy.copy_action(source, owner, uuid, saga.context["request_id"])
        volume_moves.point_rows(saga, owner, at_dest=True)
        inst.update(owner, uuid, **values)
        remap(saga, source, owner, "unshelve-flip")

    def _flip_back(self, saga: Saga) -> None:
        """Before the flip was recorded: the old cell's offloaded row is the server."""
        uuid = saga.instance_uuid
        source = source_cell(saga)
        if is_cross_cell(saga):
            unmap(saga)
            return
        inst.update(source, uuid, vm_state=shelving.SHELVED_OFFLOADED, host=None, node=None,
                    power_state=power_state.NOSTATE)
        volume_moves.point_rows(saga, source, at_dest=False)

    # after the flip ---------------------------------------------------------------
    def _succeeded(self, saga: Saga) -> None:
        """Past the flip: drop what the offloaded server kept (its old cell's rows, the
        parked volume attachments, the snapshot); each write converges when repeated."""
        ctx = ctx_of(saga)
        res = saga.resources
        uuid = saga.instance_uuid
        owner = target_cell(saga)
        if is_cross_cell(saga):
            copy.hard_delete(source_cell(saga), uuid, only_hidden=True)
        volume_moves.confirm(ctx, saga)
        for key in (shelving.IMAGE_KEY, shelving.AT_KEY, shelving.HOST_KEY):
            inst.set_system_metadata(owner, uuid, key, None)
        if res.get("zone_given"):
            _set_spec_zone(uuid, res.get("availability_zone"))
        delete_snapshot(res.get("image_id"))
        hold_point("unshelve-finish", uuid)
        actions.finish_event(ctx, owner, uuid, shelving.CONDUCTOR_EVENT)
        saga.fence()
        with contextlib.suppress(inst.UnexpectedTaskState):  # a repeated pass did it
            inst.update(owner, uuid, expected_task_state=shelving.UNSHELVING, task_state=None)
        saga.status = sagas.CONFIRMED
        saga.remember(unshelved_at=time.time())
        self.compute.refresh_usage(ctx, res["dest_host"])
        LOG.info("Unshelved %s on %s (cell %s)", uuid, res["dest_host"], owner.name)


def _set_spec_zone(instance_uuid: str, zone: str | None) -> None:
    """The zone the server is pinned to from now on, as Nova records an unshelve's."""
    from sqlalchemy import select
    with api_session() as s:
        row = s.scalar(select(am.RequestSpec).where(am.RequestSpec.instance_uuid ==
                                                    instance_uuid))
        if row is not None:
            row.spec = {**row.spec, "availability_zone": zone}


TASK = UnshelveTask()


def release_stranded(older_than: float) -> list[str]:
    """Give back offloaded servers a dead API process left in ``unshelving``.

    The API takes the task state, then records the saga; a process that dies
    between the two never answered 202 but left the server looking busy with no
    unshelve behind it. Only rows untouched for ``older_than`` seconds are
    taken, by a conditional update, so a request still between its two writes
    is never overtaken.
    """
    import datetime as dt

    from sqlalchemy import select

    from transcell.db import cell_models as cm
    from transcell.db.session import cell_session
    busy = {saga.instance_uuid for saga in Saga.with_status(*sagas.ACTIVE)}
    cutoff = utcnow() - dt.timedelta(seconds=older_than)
    released = []
    for cell in cells.list_cells(include_cell0=False):
        with cell_session(cell) as s:
            found = s.scalars(select(cm.Instance.uuid).where(
                cm.Instance.task_state == shelving.UNSHELVING,
                cm.Instance.vm_state == shelving.SHELVED_OFFLOADED,
                cm.Instance.deleted == 0, cm.Instance.hidden.is_(False),
                cm.Instance.updated_at < cutoff)).all()
        for uuid in found:
            if uuid in busy:
                continue
            try:
                inst.update(cell, uuid, expected_task_state=shelving.UNSHELVING,
                            expected_vm_state=shelving.SHELVED_OFFLOADED, task_state=None)
            except (exception.Conflict, exception.NotFound):
                continue
            LOG.warning("Server %s was left unshelving with no unshelve behind it; released "
                        "it", uuid)
            released.append(uuid)
    return released


def accept(moves: Any, instance_uuid: str, saga_uuid: str) -> None:
    """The conductor's RPC entry: run the unshelve the API recorded, if no resume pass
    took it first. ``moves`` is the conductor's ``MoveTasks``, whose per-server guard
    and lease keeping this shares, so a move and an unshelve never run at once."""
    hold_point("accepted-unshelve-offloaded", instance_uuid)
    while not moves._claim(instance_uuid):
        time.sleep(0.05)
    try:
        saga = Saga.claim(saga_uuid, (sagas.MOVING,), from_owner=None, owner=moves.owner)
        if saga is not None:
            moves._work(saga, lambda: TASK.start(saga))
    finally:
        moves._release(instance_uuid)
