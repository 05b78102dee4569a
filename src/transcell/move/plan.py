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
from transcell.compute import vm_states as vm
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.move import records
from transcell.move.saga import Saga

#: The saga's steps, in order; ``MoveTask`` implements one forward and one undo for each.
STEP_NAMES = ("allocations", "target_db", "prep_dest", "prep_source", "finish_dest", "flip")


def record_move(ctx: RequestContext, cell: cells.Cell, server: dict, migration_uuid: str,
                kind: str, new_flavor: dict, requested_host: str | None,
                allow_cross_cell: bool) -> Saga:
    """Write the migration record and the unowned saga for a move the API accepts."""
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
         "allow_cross_cell": allow_cross_cell, "started_at": time.time()},
        ctx.to_dict(), owner=None)


def forget_move(cell: cells.Cell, migration_uuid: str) -> None:
    """Drop a move the API refused after recording it (its quota recheck failed)."""
    with api_session() as s:
        s.execute(delete(am.MoveSaga).where(am.MoveSaga.uuid == migration_uuid,
                                            am.MoveSaga.owner.is_(None)))
    with cell_session(cell) as s:
        s.execute(delete(cm.Migration).where(cm.Migration.uuid == migration_uuid))
