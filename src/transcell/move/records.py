"""Small writes a move makes to the cells and the API DB, each safe to repeat."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell.compute import bdm
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


def _volumes(cell: cells.Cell, instance_uuid: str) -> list[dict[str, Any]]:
    """The server's live volume mappings in ``cell`` that name a volume."""
    return [b for b in bdm.volumes_of(cell, instance_uuid) if b["volume_id"]]


def volume_ids(cell: cells.Cell, instance_uuid: str) -> list[str]:
    """The volumes attached to the server, as the cell that holds these rows sees them."""
    return [b["volume_id"] for b in _volumes(cell, instance_uuid)]


def block_devices(cell: cells.Cell, instance_uuid: str) -> list[dict[str, Any]]:
    """The server's volume mappings in one cell, as a compute host needs them."""
    return [{"volume_id": b["volume_id"], "attachment_id": b["attachment_id"],
             "device_name": b["device_name"], "boot_index": b["boot_index"],
             "connection_info": b["connection_info"] or None}
            for b in _volumes(cell, instance_uuid)]


def set_attachment(cell: cells.Cell, instance_uuid: str, volume_id: str,
                   attachment_id: str | None, connection_info: dict | None) -> None:
    """Point the server's mapping of ``volume_id`` in ``cell`` at another attachment."""
    for found in _volumes(cell, instance_uuid):
        if found["volume_id"] == volume_id:
            bdm.set_fields(cell, found["uuid"], attachment_id=attachment_id,
                           connection_info=connection_info)


def forget_volume(cell: cells.Cell, instance_uuid: str, volume_id: str) -> None:
    """Soft-delete the server's mapping of a volume that was detached elsewhere."""
    for found in _volumes(cell, instance_uuid):
        if found["volume_id"] == volume_id:
            bdm.destroy(cell, found["uuid"])


def copy_volume_row(source: cells.Cell, target: cells.Cell, instance_uuid: str,
                    volume_id: str) -> None:
    """Give ``target`` the server's mapping of a volume attached while it lived in
    ``source`` (kept if ``target`` has it already)."""
    values = next((dict(b) for b in _volumes(source, instance_uuid)
                   if b["volume_id"] == volume_id), None)
    if values is None or any(b["volume_id"] == volume_id
                             for b in _volumes(target, instance_uuid)):
        return
    values.pop("id")
    with cell_session(target) as s:
        exists = s.scalar(select(cm.BlockDeviceMapping).where(
            cm.BlockDeviceMapping.uuid == values["uuid"]))
        if exists is not None:  # a soft-deleted copy of the same mapping: live again
            for key, value in values.items():
                setattr(exists, key, value)
            return
        s.add(cm.BlockDeviceMapping(**values))
