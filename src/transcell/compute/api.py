"""The compute API's business logic, between the HTTP layer and the services.

It validates what can be validated without a host, records the user's
action, and hands work to the conductor or the server's compute host over
RPC. It reads a single server only through its instance mapping.
"""

from __future__ import annotations

import json
import re
import time
import uuid as uuidlib
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception, quota
from transcell import mapping as mappings
from transcell.compute import actions, port_groups, server_groups, server_list, shelve_api, volumes
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.power_api import PowerAPI, check_not_locked
from transcell.compute.rpcapi import ComputeAPI
from transcell.conductor.rpcapi import ConductorAPI
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.move import plan
from transcell.move import saga as sagas
from transcell.rpc.bus import get_bus


def _conductor() -> ConductorAPI:
    from transcell.conf import CONF
    return ConductorAPI(get_bus(CONF.rpc.transport_url))


def sanitize_hostname(name: str) -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return host[:63] or "server"


def unavailable_server(mapping: dict) -> dict:
    """A server whose cell is down, as shown alone: its instance mapping and the request
    spec it was built from (flavor, image, requested zone, owner), as Nova shows it
    from 2.69. Being deleted, or without a spec, it is as good as gone: 404.
    """
    uuid = mapping["instance_uuid"]
    if mapping["queued_for_delete"]:
        raise exception.InstanceNotFound(instance_id=uuid)
    spec = mappings.request_spec(uuid)
    if spec is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return {"uuid": uuid, "unavailable": True, "project_id": mapping["project_id"],
            "created_at": mapping["created_at"],
            "user_id": spec.get("user_id") or mapping["user_id"],
            "flavor": spec.get("flavor"), "image_ref": (spec.get("image") or {}).get("id"),
            "availability_zone": spec.get("availability_zone"), "power_state": 0}


def _unavailable_in(down: list[cells.Cell], project_id: str | None, known: set[str],
                    limit: int | None) -> list[dict]:
    """What a list shows of the servers of cells that are down: one record per instance
    mapping there (of ``project_id``, or of every project when None), with only what the
    mapping knows. A server some cell did answer for is not listed twice."""
    records: list[dict] = []
    for cell in down:
        if limit is not None and len(records) >= limit:
            break
        for mapping in cells.mappings_in_cell(cell, project_id):
            if mapping["uuid"] not in known:
                records.append({**mapping, "unavailable": True})
    return records if limit is None else records[:limit]


def _check_destination(host: str | None, node: str | None) -> None:
    """A requested host must be mapped to a cell, and a requested hypervisor must be a
    compute node (of that host, when both are given); Nova's 400 otherwise."""
    if host:
        try:
            cell = cells.cell_of_host(host)
        except exception.ComputeHostNotFound:
            raise exception.Invalid(f"Compute host {host} could not be found.") from None
        if node and not cells.read_one(cell, lambda c: _nodes_named(c, node, host)):
            raise exception.Invalid(f"Compute host {host} could not be found.")
        return
    found = cells.gather(cells.list_cells(include_cell0=False),
                         lambda c: _nodes_named(c, node))
    if not any(found.results.values()):
        raise exception.Invalid(f"Compute host {node} could not be found.")


def _nodes_named(cell: cells.Cell, node: str | None, host: str | None = None) -> int:
    with cell_session(cell) as s:
        query = select(cm.ComputeNode.id).where(cm.ComputeNode.hypervisor_hostname == node,
                                                cm.ComputeNode.deleted == 0)
        if host is not None:
            query = query.where(cm.ComputeNode.host == host)
        return len(s.scalars(query).all())


class API:
    def __init__(self) -> None:
        self.compute = ComputeAPI()

    # reads -------------------------------------------------------------
    def get(self, ctx: RequestContext, server_id: str, read_deleted: bool = False,
            cell_down_support: bool = False) -> tuple[cells.Cell, dict]:
        """The server and its cell; 404 for unknown ids and other projects' servers.

        The read follows the mapping across a move's flip (``read_where_mapped``).
        When the server's cell is down, ``cell_down_support`` (microversion
        2.69) answers with what the API database knows of it (see
        ``unavailable_server``); without it the read fails with
        ``CellUnavailable``, as Nova's does.
        """
        mapping = cells.instance_mapping(server_id)
        if mapping is None or mapping["cell"] is None or (
                not ctx.is_admin and mapping["project_id"] != ctx.project_id):
            raise exception.InstanceNotFound(instance_id=server_id)

        def read(cell: cells.Cell) -> dict | None:
            try:
                return cells.read_one(
                    cell, lambda c: inst.get(c, server_id, read_deleted=read_deleted))
            except exception.InstanceNotFound:
                return None

        try:
            mapping, server = cells.read_where_mapped(server_id, read, mapping)
        except cells.CellUnavailable:
            if not cell_down_support:
                raise
            return mapping["cell"], unavailable_server(mapping)
        if server is None:
            raise exception.InstanceNotFound(instance_id=server_id)
        return mapping["cell"], server

    def list(self, ctx: RequestContext, filters: dict[str, Any], limit: int,
             marker: str | None, cell_down_support: bool = False,
             sort: list[tuple[str, bool]] | None = None,
             checks: list[server_list.Check] | None = None) -> list[dict]:
        """A page of servers across cells, in ``sort`` order (Nova's default: newest
        first), after ``marker``, each passing ``filters`` and ``checks``.

        Every cell is read at once and cut to ``limit`` rows before the merge (see
        ``server_list``). A cell that is down is left out, or, with
        ``cell_down_support`` (microversion 2.69, only for lists neither filtered
        beyond the project nor sorted nor paged), stands for its servers by what
        their instance mappings know: records marked ``unavailable``, placed before
        the others and filling only the room the page has left, as Nova places them.
        """
        query = server_list.ListQuery(dict(filters), list(sort or server_list.DEFAULT_SORT),
                                      limit, list(checks or ()), marker)
        listed = server_list.list_servers(ctx, query)
        servers = listed.servers
        if cell_down_support and listed.down:
            room = max(0, limit - len(servers))
            servers = _unavailable_in(listed.down, filters.get("project_id") or None,
                                      listed.seen, room) + servers
        return servers

    # create ------------------------------------------------------------
    def create(self, ctx: RequestContext, *, name: str, flavor: dict, image: dict,
               requested_networks: Any, key_pair: dict | None = None,
               metadata: dict | None = None, tags: list[str] | None = None,
               availability_zone: str | None = None, description: str | None = None,
               access_ip_v4: str | None = None, access_ip_v6: str | None = None,
               config_drive: bool = False, auto_disk_config: bool = False,
               bdms: list[dict] | None = None, requested_host: str | None = None,
               requested_node: str | None = None, volume_backed: bool = False,
               volume_cells: set[str] | None = None, reservation_id: str | None = None,
               group: server_groups.Group | None = None,
               hints: dict[str, list[str]] | None = None,
               hostname: str | None = None,
               security_groups: list[dict[str, str]] | None = None) -> dict:
        """Check, record and hand the build to the conductor.

        ``bdms`` are checked mappings (``volumes.normalize``); existing volumes
        among them are reserved for the new server before it is recorded, and
        released if the build is not accepted. A volume-backed server has no
        image of its own (``image_ref`` "") and claims no DISK_GB (``is_bfv``
        in its request spec). ``volume_cells``, the cells that reach every
        existing volume, pin this build to that cell when there is only one
        (the recorded spec stays unpinned, so a later move may leave it).

        ``requested_host`` and ``requested_node`` (2.74) must name a compute
        host and hypervisor that exist, else 400 as in Nova; they become the
        request spec's ``requested_destination``, which the scheduler holds
        the build to (no other host, and the zone, if given, must agree).

        ``security_groups`` (``{"id", "name"}`` each) are the groups the ports the
        build creates get instead of the default one; they are kept in the server's
        system metadata, so a build resumed after a restart still knows them.
        """
        if requested_host or requested_node:
            _check_destination(requested_host, requested_node)
        quota.check_deltas(ctx, ctx.project_id, instances=1, cores=flavor["vcpus"],
                           ram=flavor["memory_mb"])
        if availability_zone:
            zones = {c.name for c in cells.list_cells(include_cell0=False)}
            if availability_zone not in zones:
                raise exception.Invalid(f"The requested availability zone is not available: "
                                        f"{availability_zone}")
        if volume_cells is not None and availability_zone and \
                availability_zone not in volume_cells:
            raise exception.Invalid(f"The requested volumes are on backends that availability "
                                    f"zone {availability_zone} cannot reach; they reach "
                                    f"{', '.join(sorted(volume_cells))}.")
        instance_uuid = str(uuidlib.uuid4())
        bdms = bdms or []
        volumes.reserve_existing(ctx, instance_uuid, bdms)
        instance = {
            "uuid": instance_uuid,
            "display_name": name,
            "display_description": description,
            # 2.90: the hostname asked for, else one made from the name
            "hostname": hostname or sanitize_hostname(name),
            "user_id": ctx.user_id,
            "project_id": ctx.project_id,
            "image_ref": "" if volume_backed else image["id"],
            "key_name": key_pair["name"] if key_pair else None,
            "key_data": key_pair["public_key"] if key_pair else None,
            "keypairs": [key_pair] if key_pair else [],
            "metadata": metadata or {},
            "tags": tags or [],
            "access_ip_v4": access_ip_v4,
            "access_ip_v6": access_ip_v6,
            "config_drive": "True" if config_drive else "",
            "auto_disk_config": auto_disk_config,
            "reservation_id": reservation_id or "r-" + uuidlib.uuid4().hex[:8],
            "requested_networks": requested_networks,
            "bdms": bdms,
            "system_metadata": ({port_groups.REQUESTED_KEY: json.dumps(security_groups)}
                                if security_groups else {}),
        }
        request_spec = {
            "instance_uuid": instance_uuid,
            "project_id": ctx.project_id,
            "user_id": ctx.user_id,
            "flavor": flavor,
            "image": {k: image.get(k) for k in ("id", "name", "size", "min_disk",
                                                 "disk_format", "os_hash_value")},
            "requested_networks": requested_networks,
            "availability_zone": availability_zone,
            "ignore_hosts": [],
            "requested_destination": ({"host": requested_host, "node": requested_node}
                                      if requested_host or requested_node else None),
            "num_instances": 1,
            "is_bfv": volume_backed,
            "scheduler_hints": {**(hints or {}),
                                **({"group": group.uuid} if group is not None else {})},
        }
        build_spec = request_spec
        if volume_cells is not None and len(volume_cells) == 1 and not availability_zone:
            build_spec = {**request_spec, "availability_zone": next(iter(volume_cells))}
        try:
            mappings.record_build(instance_uuid, ctx.project_id, ctx.user_id, request_spec)
            try:
                if group is not None:  # a member before it is placed: see scheduler.groups
                    server_groups.add_member(group, instance_uuid)
                return _conductor().schedule_and_build(ctx, build_spec, instance)
            except Exception:
                # nothing was mapped to a cell: forget the mapping rather than leak it
                server_groups.remove_member(instance_uuid)
                mappings.forget(instance_uuid, only_unplaced=True)
                raise
        except BaseException:
            volumes.release_reserved(ctx, bdms)
            raise

    # update ------------------------------------------------------------
    def update(self, ctx: RequestContext, server_id: str, **values: Any) -> dict:
        cell, _ = self.get(ctx, server_id)
        return inst.update(cell, server_id, **values)

    # power -------------------------------------------------------------
    def stop(self, ctx: RequestContext, server_id: str) -> None:
        self._power(ctx, server_id, "stop", vm.ACTIVE, vm.POWERING_OFF,
                    self.compute.stop_instance)

    def start(self, ctx: RequestContext, server_id: str) -> None:
        self._power(ctx, server_id, "start", vm.STOPPED, vm.POWERING_ON,
                    self.compute.start_instance)

    def _power(self, ctx, server_id, action, from_state, task_state, cast) -> None:
        cell, server = self.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require_state(server, action, vm_states=(from_state,))
        inst.update(cell, server_id, expected_task_state=None, expected_vm_state=from_state,
                    task_state=task_state)
        actions.record_action(ctx, cell, server_id, action)
        cast(ctx, server["host"], server_id)

    # moves -------------------------------------------------------------
    def resize(self, ctx: RequestContext, server_id: str, flavor: dict,
               allow_cross_cell: bool, readdress: bool | None = None,
               auto_disk_config: bool | None = None,
               found: tuple[cells.Cell, dict] | None = None) -> str:
        """Check what can be checked here, then hand the move to the conductor.

        ``auto_disk_config`` (the body's ``OS-DCF:diskConfig``) is set with the
        update that takes the server for the move, so the move carries it and a
        refused resize leaves it as it was. ``found`` is the server as the caller
        has just read it (for its policy check), so it is not read twice."""
        cell, server = self._movable(ctx, server_id, "resize", found)
        current = server["flavor"] or {}
        refusals = plan.request_refusals(server, flavor, None)
        if refusals:
            raise exception.Invalid(refusals[0])
        quota.check_deltas(ctx, server["project_id"], user_id=server.get("user_id"),
                           cores=max(0, flavor["vcpus"] - current.get("vcpus", 0)),
                           ram=max(0, flavor["memory_mb"] - current.get("memory_mb", 0)))
        return self._start_move(ctx, cell, server, "resize", flavor, None, allow_cross_cell,
                                readdress, auto_disk_config)

    def migrate(self, ctx: RequestContext, server_id: str, host: str | None,
                allow_cross_cell: bool, readdress: bool | None = None,
                ignore_hosts: list[str] | None = None, drain: str | None = None,
                found: tuple[cells.Cell, dict] | None = None) -> str:
        cell, server = self._movable(ctx, server_id, "migrate", found)
        if host is not None:
            try:
                cells.cell_of_host(host)
            except exception.NotFound:
                raise exception.Invalid(f"Compute host {host} could not be found.") from None
            refusals = plan.request_refusals(server, None, host)
            if refusals:
                raise exception.Invalid(refusals[0])
        return self._start_move(ctx, cell, server, "migration", server["flavor"], host,
                                allow_cross_cell, readdress, ignore_hosts=ignore_hosts,
                                drain=drain)

    def _movable(self, ctx: RequestContext, server_id: str, action: str,
                 found: tuple[cells.Cell, dict] | None = None) -> tuple[cells.Cell, dict]:
        """The server, if its state allows a move now. The state read here only makes
        the error clear; the update that takes the server for the move is conditional on
        it, so a read a moment old (``found``) decides nothing on its own."""
        cell, server = found if found is not None else self.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require_state(server, action, vm_states=(vm.ACTIVE, vm.STOPPED))
        return cell, server

    def _start_move(self, ctx: RequestContext, cell: cells.Cell, server: dict, kind: str,
                    flavor: dict, host: str | None, allow_cross_cell: bool,
                    readdress: bool | None = None, auto_disk_config: bool | None = None,
                    ignore_hosts: list[str] | None = None, drain: str | None = None
                    ) -> str:
        """Take the server for one move, record the move, recheck quota, then cast.

        The task state is taken with one conditional update, so of many moves
        asked for at once exactly one gets here; the saga and the migration
        record exist before the 202, so a restart runs the move the user was
        promised. The quota is counted again once this move is on record
        (``quota.usage`` counts a moving server at its larger flavor), so two
        resizes of one project racing for the last cores cannot both pass.
        """
        server_id = server["uuid"]
        disk = {} if auto_disk_config is None else {"auto_disk_config": auto_disk_config}
        undo_disk = {} if auto_disk_config is None else \
            {"auto_disk_config": server["auto_disk_config"]}
        server = inst.update(cell, server_id, expected_task_state=None,
                             expected_vm_state=(vm.ACTIVE, vm.STOPPED),
                             task_state=vm.RESIZE_PREP, progress=0, **disk)
        migration_uuid = str(uuidlib.uuid4())
        try:
            actions.record_action(ctx, cell, server_id,
                                  actions.RESIZE if kind == "resize" else actions.MIGRATE)
            plan.record_move(ctx, cell, server, migration_uuid, kind, flavor, host,
                             allow_cross_cell, readdress, ignore_hosts, drain)
            try:
                quota.recheck(server["project_id"], **_growth(server["flavor"] or {}, flavor))
            except exception.OverQuota:
                plan.forget_move(cell, migration_uuid)
                raise
        except Exception:
            inst.update(cell, server_id, expected_task_state=vm.RESIZE_PREP, task_state=None,
                        progress=None, **undo_disk)
            raise
        _conductor().migrate_server(ctx, server_id, migration_uuid, kind, flavor, host,
                                    allow_cross_cell)
        return migration_uuid

    def confirm_resize(self, ctx: RequestContext, server_id: str) -> None:
        cell, _ = self._resized(ctx, server_id, "confirmResize")
        self._end_move(ctx, server_id, sagas.CONFIRMING, "confirm_context")
        actions.record_action(ctx, cell, server_id, actions.CONFIRM_RESIZE)
        _conductor().confirm_move(ctx, server_id)

    def revert_resize(self, ctx: RequestContext, server_id: str) -> None:
        """The old flavor comes back: refused (403) if the project's limits, lowered
        since the resize began, no longer hold it (``quota.check_revert``)."""
        cell, server = self._resized(ctx, server_id, "revertResize")
        moving = sagas.Saga.in_flight_for(server_id)
        if moving is not None:
            quota.check_revert(ctx, server, moving.resources.get("old_flavor") or {},
                               moving.resources.get("new_flavor") or {})
        self._end_move(ctx, server_id, sagas.REVERTING, "revert_context")
        try:
            inst.update(cell, server_id, expected_task_state=None, expected_vm_state=vm.RESIZED,
                        task_state=vm.RESIZE_REVERTING)
        except (exception.Conflict, exception.InstanceNotFound):
            pass  # a conductor's pass took the chosen revert already and shows its own state
        actions.record_action(ctx, cell, server_id, actions.REVERT_RESIZE)
        _conductor().revert_move(ctx, server_id)

    @staticmethod
    def _end_move(ctx: RequestContext, server_id: str, ending: str, context_key: str) -> None:
        """Choose how the server's one move in VERIFY_RESIZE ends; 409 if another
        request already chose (confirm and revert racing: exactly one wins)."""
        saga = sagas.Saga.in_flight_for(server_id)
        deadline = time.monotonic() + FINISHING_WAIT
        while saga is not None and saga.status == sagas.MOVING and saga.flipped and \
                time.monotonic() < deadline:
            # past its flip the server already shows VERIFY_RESIZE while the conductor
            # records the move's end: a moment, worth waiting for rather than a 409
            time.sleep(0.05)
            saga = sagas.Saga.load(saga.uuid)
        if saga is None or saga.status != sagas.MOVED:
            state = saga.status if saga is not None else "none"
            raise exception.Conflict(
                f"Instance {server_id} has no move waiting to be confirmed or reverted "
                f"(its move is {state}).")
        if sagas.Saga.transition(saga.uuid, sagas.MOVED, ending,
                                 **{context_key: ctx.to_dict()}) is None:
            raise exception.Conflict(f"Instance {server_id}'s move is already being confirmed "
                                     "or reverted by another request.")

    def _resized(self, ctx: RequestContext, server_id: str, action: str
                 ) -> tuple[cells.Cell, dict]:
        cell, server = self.get(ctx, server_id)
        check_not_locked(ctx, server)
        _require_state(server, action, vm_states=(vm.RESIZED,))
        return cell, server

    # delete ------------------------------------------------------------
    def delete(self, ctx: RequestContext, server_id: str, force: bool = False) -> None:
        """Delete now, or once the server's move in VERIFY_RESIZE is confirmed; softly
        (restorable) with ``[compute] reclaim_instance_interval`` unless ``force``.

        The task state goes to ``deleting`` by one conditional update from the
        states a delete may interrupt (none, power changes, a build), so a
        delete never overtakes a move that owns the server, and the compute
        host finishes an accepted delete after a restart.
        """
        cell, server = self.get(ctx, server_id)
        check_not_locked(ctx, server)
        if server["task_state"] == vm.DELETING:
            return
        if server["task_state"] in vm.MOVING_TASK_STATES:
            raise exception.Conflict(f"Instance {server_id} is being moved "
                                     f"({server['task_state']}); delete it once the move "
                                     "has finished or been undone.")
        if server["vm_state"] == vm.RESIZED:
            # Both cells and both hosts hold a copy: keep the live one, then delete it.
            self._end_move(ctx, server_id, sagas.CONFIRMING, "confirm_context")
            actions.record_action(ctx, cell, server_id, actions.CONFIRM_RESIZE)
            _conductor().confirm_move(ctx, server_id, wait=True)
            cell, server = self.get(ctx, server_id)
        if not force and PowerAPI(self).soft_delete(ctx, cell, server, DELETABLE_TASK_STATES):
            return
        try:
            server = inst.update(cell, server_id, expected_task_state=DELETABLE_TASK_STATES,
                                 task_state=vm.DELETING)
        except inst.UnexpectedTaskState as exc:
            if exc.kwargs.get("actual") == vm.DELETING:
                return  # a delete sent at the same moment won: this one is done too
            raise
        actions.record_action(ctx, cell, server_id, actions.DELETE)
        mappings.queue_for_delete(server_id)
        server_groups.remove_member(server_id)
        if shelve_api.delete_shelved(ctx, cell, server):
            return
        if server["host"] is None or cell.is_cell0:
            # never got a host: nothing to tear down beyond the rows and the volumes
            volumes.cleanup_volumes(ctx, server["bdms"])
            inst.soft_delete(cell, server_id)
            return
        self.compute.terminate_instance(ctx, server["host"], server_id)


#: Seconds a confirm, revert or delete waits for a move past its flip to be recorded as
#: ended, before answering 409.
FINISHING_WAIT = 5.0

#: A delete may interrupt these; a move (which owns the server) it may not.
DELETABLE_TASK_STATES = (None, vm.POWERING_OFF, vm.POWERING_ON, vm.SCHEDULING, vm.NETWORKING,
                         vm.SPAWNING) + vm.IMAGE_TASK_STATES + vm.REBUILD_TASK_STATES + \
    vm.GUEST_TASK_STATES


def _require_state(server: dict, action: str, vm_states: tuple[str, ...]) -> None:
    """Nova's 409 for an action the server's current state does not allow: a friendly
    early answer; the conditional update that follows is what actually decides."""
    if server["vm_state"] not in vm_states or server["task_state"] is not None:
        attr, state = (("task_state", server["task_state"]) if server["task_state"]
                       else ("vm_state", server["vm_state"]))
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr=attr, state=state)


def _growth(old: dict, new: dict) -> dict[str, int]:
    """How much a move from ``old`` to ``new`` flavor grows each quota resource."""
    return {resource: max(0, new.get(key, 0) - old.get(key, 0))
            for resource, key in (("cores", "vcpus"), ("ram", "memory_mb"))}
