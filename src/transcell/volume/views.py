"""Cinder-shaped bodies of volumes and attachments, as every caller receives them.

The service hands out the full body (the API hides what policy keeps from a
caller: the backend host, the migration status); connection info is built
from the volume's current backend each time it is read, so after a migration a
host is pointed at the file the volume now lives in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from transcell.volume import backends as vb
from transcell.volume import models as vm


def timestamp(value: dt.datetime | None) -> str | None:
    """Cinder's format: ISO 8601 with microseconds and no zone."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def volume_attachment(att: vm.VolumeAttachment) -> dict[str, Any]:
    """An entry of a volume's ``attachments`` (only attachments that are attached)."""
    return {
        "id": att.volume_id,  # Cinder repeats the volume id here
        "attachment_id": att.id,
        "volume_id": att.volume_id,
        "server_id": att.instance_uuid,
        "host_name": att.attached_host,
        "device": att.mountpoint,
        "attached_at": timestamp(att.attached_at),
    }


def volume(row: vm.Volume, attachments: list[vm.VolumeAttachment]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "size": row.size,
        "status": row.status,
        "migration_status": row.migration_status,
        "attach_status": row.attach_status,
        "bootable": "true" if row.bootable else "false",
        "multiattach": row.multiattach,
        "encrypted": False,
        "volume_type": row.volume_type,
        "availability_zone": row.availability_zone,
        "source_volid": row.source_volid,
        "snapshot_id": row.snapshot_id,
        "consistencygroup_id": None,
        "replication_status": None,
        "user_id": row.user_id,
        "metadata": {**(row.metadata_ or {}), **(row.admin_metadata or {})},
        "attachments": [volume_attachment(att) for att in attachments
                        if att.status == vm.ATTACHED],
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "os-vol-tenant-attr:tenant_id": row.project_id,
        "os-vol-host-attr:host": vb.HOST_PREFIX + f"@{row.backend}#{row.backend}",
        "os-vol-mig-status-attr:migstat": row.migration_status,
        "os-vol-mig-status-attr:name_id": None,
    }
    if row.image_metadata:
        body["volume_image_metadata"] = {key: str(value) if value is not None else None
                                         for key, value in row.image_metadata.items()}
    return body


def connection_info(row: vm.Volume, att: vm.VolumeAttachment) -> dict[str, Any]:
    return {"driver_volume_type": "file",
            "data": {"device_path": vb.backend(row.backend).path(row.id),
                     "volume_id": row.id, "backend": row.backend,
                     "access_mode": "ro" if row.readonly or att.attach_mode == "ro"
                     else "rw"}}


def attachment(row: vm.Volume, att: vm.VolumeAttachment,
               info: dict[str, Any] | None) -> dict[str, Any]:
    """An attachment as Cinder 3.27+ shows it (connection info when it has one)."""
    return {
        "id": att.id,
        "volume_id": att.volume_id,
        "instance": att.instance_uuid,
        "status": att.status,
        "attach_mode": att.attach_mode,
        "attached_at": timestamp(att.attached_at),
        "detached_at": None,
        "connection_info": info or {},
        "connector": att.connector,
        "host_name": att.attached_host,
        "device": att.mountpoint,
    }
