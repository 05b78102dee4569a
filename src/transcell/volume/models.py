"""The volume service's own database: volumes, their attachments and their copies.

Like Cinder beside Nova, the volume service keeps a database of its own so it
can run on its own and every cell reaches the same volumes. A volume's state
only ever changes through a conditional UPDATE naming the state it expects
(``transcell.volume.volumes.cas``), so two requests racing on one volume
cannot both win.

``volume_copies`` records every file a migration wrote besides a volume's live
file, and every source file a move keeps until it is confirmed: ``transcell
audit`` finds stray copies there, and a repeated move step finds its own work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transcell.db.types import JSONText, utcnow

# volume status (Cinder's words)
CREATING = "creating"
AVAILABLE = "available"
RESERVED = "reserved"
ATTACHING = "attaching"
IN_USE = "in-use"
DETACHING = "detaching"
DELETING = "deleting"
EXTENDING = "extending"
UPLOADING = "uploading"
MAINTENANCE = "maintenance"
ERROR = "error"
ERROR_EXTENDING = "error_extending"
ERROR_DELETING = "error_deleting"

# migration_status
MIGRATING = "migrating"
SUCCESS = "success"

# attachment status / attach_status
ATTACHED = "attached"
DETACHED = "detached"

# volume copy roles and states
TARGET = "target"       # written by a move on the backend the volume goes to
MIGRATION = "migration"  # written by an administrator's os-migrate_volume
SOURCE = "source"       # the volume's former file, kept until the move is confirmed
COPYING = "copying"
COPIED = "copied"
LIVE = "live"
RETAINED = "retained"


def new_id() -> str:
    return str(uuid.uuid4())


class VolumeBase(DeclarativeBase):
    pass


class Volume(VolumeBase):
    __tablename__ = "volumes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default=CREATING, index=True)
    attach_status: Mapped[str] = mapped_column(String(32), default=DETACHED)
    migration_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    volume_type: Mapped[str] = mapped_column(String(255))
    backend: Mapped[str] = mapped_column(String(255), index=True)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    source_volid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: the snapshot whose bytes the volume was made from
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSONText, default=dict)
    #: what an administrator or the service set (Cinder's admin metadata: "readonly"),
    #: shown merged into ``metadata`` but never changed through it
    admin_metadata: Mapped[dict[str, str]] = mapped_column(JSONText, default=dict)
    image_metadata: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    #: what the volume's last migration carried ({"bytes", "bytes_sent", "checksum", ...})
    last_transfer: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class VolumeAttachment(VolumeBase):
    __tablename__ = "volume_attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(32), default=RESERVED)
    attach_mode: Mapped[str] = mapped_column(String(8), default="rw")
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    attached_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class VolumeCopy(VolumeBase):
    """A file of a volume other than its live one, or the live one a move wrote."""

    __tablename__ = "volume_copies"
    __table_args__ = (UniqueConstraint("volume_id", "move_id", "role",
                                       name="uniq_volume_copies0volume0move0role"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    move_id: Mapped[str] = mapped_column(String(36), index=True)
    role: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Snapshot(VolumeBase):
    """A copy of a volume's bytes at one moment, in its own file on the volume's backend.

    ``volume_id`` is no foreign key with a cascade: a volume with snapshots
    cannot be deleted (Cinder's rule), so a snapshot never outlives its record.
    """

    __tablename__ = "snapshots"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default=CREATING, index=True)
    backend: Mapped[str] = mapped_column(String(255))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSONText, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
