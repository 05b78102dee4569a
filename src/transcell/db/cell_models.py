"""One cell's database: its servers and everything they own, its hosts and services.

Every table a server owns is keyed by the instance *uuid* (never by a cell-local
integer id), so a server can be copied into another cell row for row.
Soft delete follows Nova: ``deleted`` is 0 for live rows and the row id once
deleted, so unique constraints still hold for live rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transcell.db.types import JSONText, utcnow


class CellBase(DeclarativeBase):
    pass


class SoftDeleteMixin:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, onupdate=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    deleted: Mapped[int] = mapped_column(Integer, default=0)


class Instance(SoftDeleteMixin, CellBase):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("uuid", name="uniq_instances0uuid"),
        Index("instances_project_id_deleted_idx", "project_id", "deleted"),
        Index("instances_host_deleted_idx", "host", "deleted"),
        # lists read each cell's first page in creation order (see compute.server_list)
        Index("instances_deleted_created_at_idx", "deleted", "created_at"),
        # and a project's first page likewise (see migration 0004)
        Index("instances_project_id_deleted_created_at_idx", "project_id", "deleted",
              "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    display_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    hostname: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance_type_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    launched_on: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vm_state: Mapped[str | None] = mapped_column(String(255), nullable=True)
    task_state: Mapped[str | None] = mapped_column(String(255), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int | None] = mapped_column(Integer, nullable=True)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    access_ip_v4: Mapped[str | None] = mapped_column(String(39), nullable=True)
    access_ip_v6: Mapped[str | None] = mapped_column(String(39), nullable=True)
    config_drive: Mapped[str | None] = mapped_column(String(255), nullable=True)
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reservation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    root_device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    cleaned: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceExtra(SoftDeleteMixin, CellBase):
    """Structured data a server carries with it: its flavors and keypairs by value."""

    __tablename__ = "instance_extra"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), unique=True)
    # {"cur": {...}, "old": {...} | None, "new": {...} | None}: full copies, so a
    # server keeps its flavor after the flavor itself is deleted.
    flavor: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    keypairs: Mapped[list | None] = mapped_column(JSONText, nullable=True)
    migration_context: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    request_networks: Mapped[list | None] = mapped_column(JSONText, nullable=True)


class InstanceMetadata(SoftDeleteMixin, CellBase):
    __tablename__ = "instance_metadata"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255), nullable=True)


class InstanceSystemMetadata(SoftDeleteMixin, CellBase):
    __tablename__ = "instance_system_metadata"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(Text, nullable=True)


class Tag(CellBase):
    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)


class BlockDeviceMapping(SoftDeleteMixin, CellBase):
    """A disk of a server: its image root disk, or a volume of the volume service.

    A volume row carries the attachment id the volume service knows it by and
    the connection info that service handed the server's host, so a move or
    a delete can act on the attachment without asking anyone else. Device
    names are unique among a server's live rows, which is what settles two
    attaches racing for the same name.
    """

    __tablename__ = "block_device_mapping"
    __table_args__ = (
        UniqueConstraint("instance_uuid", "device_name", "deleted",
                         name="uniq_block_device_mapping0instance_uuid0device_name0deleted"),
        Index("block_device_mapping_volume_id_idx", "volume_id"),
        Index("block_device_mapping_attachment_id_idx", "attachment_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    source_type: Mapped[str] = mapped_column(String(255))
    destination_type: Mapped[str] = mapped_column(String(255))
    device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    volume_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    volume_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volume_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_bus: Mapped[str | None] = mapped_column(String(255), nullable=True)
    device_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    guest_format: Mapped[str | None] = mapped_column(String(255), nullable=True)
    no_device: Mapped[bool] = mapped_column(Boolean, default=False)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attachment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # {"driver_volume_type": "file", "data": {"device_path", "volume_id", "backend", ...}}
    connection_info: Mapped[dict | None] = mapped_column(JSONText, nullable=True)


class VirtualInterface(SoftDeleteMixin, CellBase):
    __tablename__ = "virtual_interfaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))  # the port id
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    network_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # fixed ips and network name as Neutron reported them at bind time
    info: Mapped[dict | None] = mapped_column(JSONText, nullable=True)


class InstanceAction(SoftDeleteMixin, CellBase):
    __tablename__ = "instance_actions"
    __table_args__ = (Index("instance_actions_uuid_req_idx", "instance_uuid", "request_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(255))
    instance_uuid: Mapped[str] = mapped_column(String(36))
    request_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    message: Mapped[str | None] = mapped_column(String(255), nullable=True)


class InstanceActionEvent(SoftDeleteMixin, CellBase):
    __tablename__ = "instance_actions_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(255), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


class InstanceFault(SoftDeleteMixin, CellBase):
    __tablename__ = "instance_faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Migration(SoftDeleteMixin, CellBase):
    __tablename__ = "migrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    source_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_instance_type_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_instance_type_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(255))
    migration_type: Mapped[str] = mapped_column(String(32))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    cross_cell_move: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # bytes moved, disk size and phase durations, filled in as the move runs
    stats: Mapped[dict | None] = mapped_column(JSONText, nullable=True)


class Service(SoftDeleteMixin, CellBase):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary", "deleted"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(255), nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ComputeNode(SoftDeleteMixin, CellBase):
    __tablename__ = "compute_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(255), default="fake")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=1000)
    host_ip: Mapped[str | None] = mapped_column(String(39), nullable=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    service_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


#: Tables that belong to a server and travel with it between cells.
INSTANCE_OWNED = (InstanceExtra, InstanceMetadata, InstanceSystemMetadata, Tag,
                  BlockDeviceMapping, VirtualInterface, InstanceAction, InstanceFault,
                  Migration)
