"""What the API writes down for a move before it answers 202.

A move is promised the moment the API accepts it, so the promise is a saga
record (every step pending, no conductor owning it yet) plus the migration
record users follow, both written before the response leaves. A conductor
takes the saga when the cast reaches it; if the process dies first, the
conductor's next pass finds the unowned saga and runs it, so an accepted
move is never lost and never leaves the server in ``resize_prep``.
"""

from __future__ import annotations

import time

from sqlalchemy import delete

from transcell import cell as cells
from transcell import mapping as mappings
from transcell.compute import vm_states as vm
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.move import reach, records
from transcell.move.saga import Saga

#: The saga's steps, in order; ``MoveTask`` implements one forward and one undo for each.
STEP_NAMES = ("allocations", "target_db", "prep_dest", "precopy", "prep_source", "volumes",
              "finish_dest", "flip")


def record_move(ctx: RequestContext, cell: cells.Cell, server: dict, migration_uuid: str,
                kind: str, new_flavor: dict, requested_host: str | None,
                allow_cross_cell: bool, readdress: bool | None = None,
                ignore_hosts: list[str] | None = None, drain: str | None = None) -> Saga:
    """Write the migration record and the unowned saga for a move the API accepts.

    ``ignore_hosts`` are hosts the scheduler must not choose (a cell drain keeps
    the cell it empties, full target hosts and hosts that failed this server out);
    ``drain`` names the drain that asked for the move."""
    old_flavor = server["flavor"] or {}
    records.create_migration(
        cell, uuid=migration_uuid, instance_uuid=server["uuid"],
        source_compute=server["host"], source_node=server["node"],
        old_instance_type_id=old_flavor.get("id"), new_instance_type_id=new_flavor.get("id"),
        status="pre-migrating", migration_type=kind, user_id=ctx.user_id,
        project_id=ctx.project_id, stats={})
    return Saga.create(
        migration_uuid, server["uuid"], kind, list(STEP_NAMES),
        {"source_cell": cell.uuid, "source_host": server["host"],
         "source_node": server["node"], "old_flavor": old_flavor, "new_flavor": new_flavor,
         "old_vm_state": server["vm_state"], "power_on": server["vm_state"] == vm.ACTIVE,
         "project_id": server["project_id"], "requested_host": requested_host,
         "allow_cross_cell": allow_cross_cell, "started_at": time.time(),
         "ignore_hosts": sorted(ignore_hosts or []), "drain": drain,
         # the request's choice, else the operator's option as it stood at acceptance
         "readdress": reach.readdress_wanted(readdress)},
        ctx.to_dict(), owner=None)


def forget_move(cell: cells.Cell, migration_uuid: str) -> None:
    """Drop a move the API refused after recording it (its quota recheck failed)."""
    with api_session() as s:
        s.execute(delete(am.MoveSaga).where(am.MoveSaga.uuid == migration_uuid,
                                            am.MoveSaga.owner.is_(None)))
    with cell_session(cell) as s:
        s.execute(delete(cm.Migration).where(cm.Migration.uuid == migration_uuid))


def move_spec(server: dict, source_cell_uuid: str, flavor: dict, requested_host: str | None,
              allow_cross_cell: bool, ignore_hosts: list[str], any_zone: bool = False) -> dict:
    """What the scheduler is asked for a move: the server's build request, the new
    flavor, the hosts it may not land on, the host asked for, the cell it leaves.

    ``any_zone``: the move of a cell drain, which like an admin's chosen host
    overrides the zone the server was built in (where zones are cells, a
    server built in the drained cell's zone could go nowhere else)."""
    spec = mappings.request_spec(server["uuid"]) or {
        "project_id": server["project_id"], "user_id": server["user_id"]}
    spec.update(
        instance_uuid=server["uuid"], flavor=flavor, ignore_hosts=ignore_hosts,
        requested_destination={"host": requested_host} if requested_host else None,
        move={"source_cell_uuid": source_cell_uuid, "allow_cross_cell": allow_cross_cell})
    if requested_host or any_zone:
        # a host chosen by the admin overrides the zone the server was built in
        spec["availability_zone"] = None
    return spec


def request_refusals(server: dict, flavor: dict | None, host: str | None) -> list[str]:
    """Why a resize to ``flavor`` (or a migration to ``host``) of ``server`` is refused
    as asked, in Nova's words: the API answers 400 with the first, a move plan lists
    them all."""
    refusals = []
    current = server["flavor"] or {}
    if flavor is not None:
        if flavor["flavorid"] == current.get("flavorid"):
            refusals.append("When resizing, instances must change flavor!")
        if flavor["root_gb"] < current.get("root_gb", 0):
            refusals.append(
                f"Resize error: unable to resize disk down: flavor {flavor['flavorid']} has "
                f"a {flavor['root_gb']} GB root disk, the server's is "
                f"{current.get('root_gb')} GB.")
    if host is not None and host == server["host"]:
        refusals.append(f"The target host can't be the same one: {host}.")
    return refusals
