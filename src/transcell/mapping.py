"""Instance mappings and request specs: the API database's record of where each server
lives and what it was asked to be.

Every write of these two records is here, so the rules about them are written once:
a build is recorded (mapping to no cell yet, and its spec) before a cell is chosen; the
mapping names a cell only once the server's rows exist there; a server that never got a
cell is forgotten whole. Reads of a mapping for routing stay in ``cell.py``.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from transcell.cell import Cell
from transcell.db import api_models as am
from transcell.db.session import api_session


def record_build(instance_uuid: str, project_id: str, user_id: str, spec: dict) -> None:
    """A server the API accepted, mapped to no cell until the conductor places it."""
    with api_session() as s:
        s.add(am.InstanceMapping(instance_uuid=instance_uuid, cell_id=None,
                                 project_id=project_id, user_id=user_id))
        s.add(am.RequestSpec(instance_uuid=instance_uuid, spec=spec))


def map_to(instance_uuid: str, cell: Cell, session: Session | None = None) -> None:
    """Point the mapping at ``cell``: the one authority on where the server lives.

    With ``session`` the write joins that API database transaction (a move's
    flip commits it together with the saga it is fenced by).
    """
    if session is not None:
        session.execute(update(am.InstanceMapping)
                        .where(am.InstanceMapping.instance_uuid == instance_uuid)
                        .values(cell_id=cell.id).execution_options(synchronize_session=False))
        return
    with api_session() as s:
        map_to(instance_uuid, cell, s)


def queue_for_delete(instance_uuid: str) -> None:
    with api_session() as s:
        s.execute(update(am.InstanceMapping)
                  .where(am.InstanceMapping.instance_uuid == instance_uuid)
                  .values(queued_for_delete=True).execution_options(synchronize_session=False))


def forget(instance_uuid: str, only_unplaced: bool = False) -> None:
    """Remove the mapping and the spec of a server that never came to exist.

    With ``only_unplaced`` a mapping that already names a cell is kept: the
    server exists there, and forgetting it would lose it.
    """
    with api_session() as s:
        if only_unplaced:
            placed = s.scalar(select(am.InstanceMapping.cell_id)
                              .where(am.InstanceMapping.instance_uuid == instance_uuid))
            if placed is not None:
                return
        s.execute(delete(am.InstanceMapping)
                  .where(am.InstanceMapping.instance_uuid == instance_uuid))
        s.execute(delete(am.RequestSpec).where(am.RequestSpec.instance_uuid == instance_uuid))


def request_spec(instance_uuid: str) -> dict | None:
    with api_session() as s:
        row = s.scalar(select(am.RequestSpec).where(am.RequestSpec.instance_uuid == instance_uuid))
        return dict(row.spec) if row is not None else None


def set_spec_flavor(instance_uuid: str, flavor: dict) -> None:
    """The flavor a move ended on, so a later move or a down-cell read starts from it."""
    with api_session() as s:
        row = s.scalar(select(am.RequestSpec).where(am.RequestSpec.instance_uuid == instance_uuid))
        if row is not None:
            row.spec = {**row.spec, "flavor": flavor}


def set_spec_image(instance_uuid: str, image: dict) -> None:
    """The image a rebuild put under the server, so a later move, unshelve or down-cell
    read checks and shows that one."""
    with api_session() as s:
        row = s.scalar(select(am.RequestSpec).where(am.RequestSpec.instance_uuid == instance_uuid))
        if row is not None:
            row.spec = {**row.spec, "image": {k: image.get(k) for k in (
                "id", "name", "size", "min_disk", "disk_format", "os_hash_value")}}
