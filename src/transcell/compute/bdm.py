"""A server's block device mappings in its cell: read, reserved, changed and dropped.

Every change is one statement conditional on what the caller last saw of the
row (still live, still holding the attachment it holds), so a detach racing
an attach, or a move racing either, never overwrites the other's result.
"""

from __future__ import annotations

import string
import uuid as uuidlib
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from transcell import exception
from transcell.cell import Cell
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow

#: Where the guest sees its disks: the root disk is vda, volumes follow.
DEVICE_PREFIX = "/dev/vd"


class VolumeBDMNotFound(exception.NotFound):
    msg_fmt = "Instance %(instance_uuid)s is not attached to volume %(volume_id)s."


class DevicePathInUse(exception.Conflict):
    msg_fmt = "The supplied device path (%(path)s) is in use."


def _columns(row: cm.BlockDeviceMapping) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def _live(instance_uuid: str):
    return select(cm.BlockDeviceMapping).where(
        cm.BlockDeviceMapping.instance_uuid == instance_uuid,
        cm.BlockDeviceMapping.deleted == 0)


def list_for(cell: Cell, instance_uuid: str) -> list[dict[str, Any]]:
    """The server's live mappings in the order they were made (boot disk first)."""
    with cell_session(cell) as s:
        return [_columns(r) for r in s.scalars(_live(instance_uuid)
                                               .order_by(cm.BlockDeviceMapping.id))]


def volumes_of(cell: Cell, instance_uuid: str) -> list[dict[str, Any]]:
    return [b for b in list_for(cell, instance_uuid) if b["destination_type"] == "volume"]


def get_by_uuid(cell: Cell, bdm_uuid: str) -> dict[str, Any] | None:
    with cell_session(cell) as s:
        row = s.scalar(select(cm.BlockDeviceMapping).where(
            cm.BlockDeviceMapping.uuid == bdm_uuid, cm.BlockDeviceMapping.deleted == 0))
        return _columns(row) if row is not None else None


def get_by_volume(cell: Cell, instance_uuid: str, volume_id: str) -> dict[str, Any]:
    with cell_session(cell) as s:
        row = s.scalar(_live(instance_uuid).where(cm.BlockDeviceMapping.volume_id == volume_id)
                       .order_by(cm.BlockDeviceMapping.id))
        if row is None:
            raise VolumeBDMNotFound(instance_uuid=instance_uuid, volume_id=volume_id)
        return _columns(row)


def is_volume_backed(bdms: list[dict[str, Any]]) -> bool:
    """Whether the boot disk (boot index 0) is a volume: then no local root disk exists."""
    return any(b.get("boot_index") in (0, "0") and b.get("destination_type") == "volume"
               for b in bdms)


def device_names(count: int, taken: set[str]) -> list[str]:
    """The next ``count`` free names after vda, in the order a guest would enumerate them."""
    found = []
    for name in _candidates():
        if name not in taken:
            found.append(name)
            if len(found) == count:
                return found
    raise exception.Invalid("No free device name is left on this server.")


def _candidates():
    letters = string.ascii_lowercase
    for first in letters[1:]:
        yield DEVICE_PREFIX + first
    for first in letters:
        for second in letters:
            yield DEVICE_PREFIX + first + second


def reserve_volume(cell: Cell, instance_uuid: str, volume_id: str, *,
                   device: str | None = None, tag: str | None = None,
                   delete_on_termination: bool = False, volume_size: int | None = None
                   ) -> dict[str, Any]:
    """A new volume mapping on the server with a device name no live mapping has.

    The unique index on (server, device name, deleted) decides two attaches
    picking the same free name at once: the loser takes the next name, or,
    when the caller asked for that name, gets ``DevicePathInUse``.
    """
    for _ in range(30):
        with cell_session(cell) as s:
            taken = {r for r in s.scalars(select(cm.BlockDeviceMapping.device_name).where(
                cm.BlockDeviceMapping.instance_uuid == instance_uuid,
                cm.BlockDeviceMapping.deleted == 0)) if r}
        if device and device in taken:
            raise DevicePathInUse(path=device)
        name = device or device_names(1, taken)[0]
        row = cm.BlockDeviceMapping(
            uuid=str(uuidlib.uuid4()), instance_uuid=instance_uuid, source_type="volume",
            destination_type="volume", device_name=name, volume_id=volume_id,
            volume_size=volume_size, delete_on_termination=bool(delete_on_termination),
            tag=tag, device_type="disk", disk_bus="virtio", boot_index=None)
        try:
            with cell_session(cell) as s:
                s.add(row)
                s.flush()
                return _columns(row)
        except IntegrityError:
            if device:
                raise DevicePathInUse(path=device) from None
    raise exception.Conflict(f"Could not reserve a device name on server {instance_uuid}: "
                             "too many concurrent attaches.")


def earliest_for_volume(cell: Cell, instance_uuid: str, volume_id: str) -> str | None:
    """Uuid of the oldest live mapping of this volume on the server (the one that stands)."""
    with cell_session(cell) as s:
        return s.scalar(select(cm.BlockDeviceMapping.uuid).where(
            cm.BlockDeviceMapping.instance_uuid == instance_uuid,
            cm.BlockDeviceMapping.volume_id == volume_id,
            cm.BlockDeviceMapping.deleted == 0).order_by(cm.BlockDeviceMapping.id).limit(1))


def set_fields(cell: Cell, bdm_uuid: str, expected: dict[str, Any] | None = None,
               **values: Any) -> bool:
    """Change a live mapping, only if its ``expected`` columns still hold; False otherwise."""
    with cell_session(cell) as s:
        stmt = update(cm.BlockDeviceMapping).where(cm.BlockDeviceMapping.uuid == bdm_uuid,
                                                   cm.BlockDeviceMapping.deleted == 0)
        for key, value in (expected or {}).items():
            column = getattr(cm.BlockDeviceMapping, key)
            stmt = stmt.where(column.is_(None) if value is None else column == value)
        result = s.execute(stmt.values(**values, updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        return result.rowcount == 1


def destroy(cell: Cell, bdm_uuid: str, expected: dict[str, Any] | None = None) -> bool:
    """Soft-delete a mapping (deleted = its id, as every cell table); False if already gone."""
    with cell_session(cell) as s:
        row = s.scalar(select(cm.BlockDeviceMapping).where(
            cm.BlockDeviceMapping.uuid == bdm_uuid, cm.BlockDeviceMapping.deleted == 0))
        if row is None:
            return False
        for key, value in (expected or {}).items():
            if getattr(row, key) != value:
                return False
        stmt = update(cm.BlockDeviceMapping).where(cm.BlockDeviceMapping.id == row.id,
                                                   cm.BlockDeviceMapping.deleted == 0)
        result = s.execute(stmt.values(deleted=row.id, deleted_at=utcnow())
                           .execution_options(synchronize_session=False))
        return result.rowcount == 1


def add_build_mappings(session, instance_uuid: str, bdms: list[dict[str, Any]]) -> None:
    """The mappings a new server is built with, in the session creating its rows.

    ``bdms`` come checked from the API (``volumes.check_boot_mappings``); each
    gets its device name here, the boot disk vda and the others in order.
    """
    taken = {b["device_name"] for b in bdms if b.get("device_name")}
    free = iter(device_names(len(bdms), taken | {DEVICE_PREFIX + "a"}))
    for bdm in bdms:
        boot = bdm.get("boot_index")
        name = bdm.get("device_name") or (DEVICE_PREFIX + "a" if boot == 0 else next(free))
        session.add(cm.BlockDeviceMapping(
            uuid=str(uuidlib.uuid4()), instance_uuid=instance_uuid,
            source_type=bdm["source_type"], destination_type=bdm["destination_type"],
            image_id=bdm.get("image_id"), volume_id=bdm.get("volume_id"),
            snapshot_id=bdm.get("snapshot_id"),
            volume_size=bdm.get("volume_size"), volume_type=bdm.get("volume_type"),
            boot_index=boot, device_name=name,
            delete_on_termination=bool(bdm.get("delete_on_termination")),
            attachment_id=bdm.get("attachment_id"), tag=bdm.get("tag"),
            disk_bus=bdm.get("disk_bus") or "virtio", device_type=bdm.get("device_type") or "disk",
            guest_format=bdm.get("guest_format")))
