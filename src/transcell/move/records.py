"""Small writes a move makes to the cells and the API DB, each safe to repeat."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow

SNAPSHOT_NAMESPACE = uuidlib.UUID("1d2e6f0a-4a3b-5c6d-8e9f-0a1b2c3d4e5f")


def snapshot_id_for(migration_uuid: str) -> str:
    """The temporary snapshot's id, derived from the move so a retry finds the same one."""
    return str(uuidlib.uuid5(SNAPSHOT_NAMESPACE, migration_uuid))


def create_migration(cell: cells.Cell, **values: Any) -> None:
    with cell_session(cell) as s:
        found = s.scalar(select(cm.Migration).where(cm.Migration.uuid == values["uuid"]))
        if found is None:
            s.add(cm.Migration(**values))


def update_migration(migration_uuid: str, in_cells: list[cells.Cell], **values: Any) -> None:
    """Update every copy of the migration: a cross-cell move keeps one per cell."""
    for cell in in_cells:
        with cell_session(cell) as s:
            row = s.scalar(select(cm.Migration).where(cm.Migration.uuid == migration_uuid))
            if row is None:
                continue
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()


def get_migration(cell: cells.Cell, migration_uuid: str) -> dict[str, Any] | None:
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Migration).where(cm.Migration.uuid == migration_uuid))
        return {c.key: getattr(row, c.key) for c in row.__table__.columns} if row else None


def set_hidden(cell: cells.Cell, instance_uuid: str, hidden: bool) -> None:
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == instance_uuid,
                                                 cm.Instance.deleted == 0))
        if row is not None:
            row.hidden = hidden


def flavor_columns(flavor: dict) -> dict[str, Any]:
    """The instance columns that mirror its current flavor."""
    return {"instance_type_id": flavor.get("id"), "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"], "root_gb": flavor["root_gb"],
            "ephemeral_gb": flavor.get("ephemeral_gb", 0)}


def guest_info(server: dict, flavor: dict) -> dict[str, Any]:
    """What a compute host needs to define the guest: never a whole DB row."""
    return {"uuid": server["uuid"], "display_name": server["display_name"],
            "vcpus": flavor["vcpus"], "memory_mb": flavor["memory_mb"],
            "image_ref": server.get("image_ref")}


def port_ids(server: dict) -> list[str]:
    return [vif["uuid"] for vif in server.get("vifs") or []]
