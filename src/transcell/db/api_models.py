"""The global API database: where things are, and what is shared by all cells."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from transcell.db.types import JSONText, utcnow


class APIBase(DeclarativeBase):
    pass


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class CellMapping(TimestampMixin, APIBase):
    __tablename__ = "cell_mappings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    database_connection: Mapped[str] = mapped_column(Text)
    transport_url: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    CELL0_UUID = "00000000-0000-0000-0000-000000000000"

    @property
    def is_cell0(self) -> bool:
        return self.uuid == self.CELL0_UUID


class HostMapping(TimestampMixin, APIBase):
    __tablename__ = "host_mappings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cell_mappings.id"))
    cell: Mapped[CellMapping] = relationship(lazy="joined")


class InstanceMapping(TimestampMixin, APIBase):
    """The single authority on which cell a server lives in."""

    __tablename__ = "instance_mappings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cell_mappings.id"), nullable=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    queued_for_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    cell: Mapped[CellMapping | None] = relationship(lazy="joined")


class RequestSpec(TimestampMixin, APIBase):
    """What was asked for when a server was built; moves re-read it."""

    __tablename__ = "request_specs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    spec: Mapped[dict] = mapped_column(JSONText)


class Flavor(TimestampMixin, APIBase):
    __tablename__ = "flavors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_specs: Mapped[list[FlavorExtraSpec]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")
    projects: Mapped[list[FlavorProject]] = relationship(
        lazy="selectin", cascade="all, delete-orphan")


class FlavorExtraSpec(TimestampMixin, APIBase):
    __tablename__ = "flavor_extra_specs"
    __table_args__ = (UniqueConstraint("flavor_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class FlavorProject(TimestampMixin, APIBase):
    __tablename__ = "flavor_projects"
    __table_args__ = (UniqueConstraint("flavor_id", "project_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(255))


class KeyPair(TimestampMixin, APIBase):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32), default="ssh")


class MoveSaga(TimestampMixin, APIBase):
    """A server move's durable plan: which steps ran, what each created, how far it got.

    Kept in the API DB because it spans two cells and must outlive either
    cell's view of the server. ``owner`` holds it through a lease that runs
    out at ``lease_expires_at`` unless renewed, so another conductor can take
    over a saga whose owner died or froze; ``generation`` counts the
    takeovers, and every write names the generation it holds, so a writer
    that was overtaken changes nothing.
    """

    __tablename__ = "move_sagas"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)  # the migration uuid
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # resize | migration
    # moving -> undoing -> rolled_back | failed ; moving -> moved -> confirming/reverting
    # -> confirmed/reverted
    status: Mapped[str] = mapped_column(String(32), index=True)
    steps: Mapped[list] = mapped_column(JSONText)
    resources: Mapped[dict] = mapped_column(JSONText)
    flipped: Mapped[bool] = mapped_column(Boolean, default=False)
    context: Mapped[dict] = mapped_column(JSONText)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Aggregate(TimestampMixin, APIBase):
    """A host aggregate: a named set of compute hosts with key/value metadata.

    Rows are deleted outright rather than soft-deleted: nothing refers to a
    deleted aggregate, and a plain unique index on ``name`` then enforces
    "unique among live aggregates" in the database itself, race-free.
    """

    __tablename__ = "aggregates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    hosts: Mapped[list[AggregateHost]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="AggregateHost.id")
    # ``metadata`` is reserved by SQLAlchemy's declarative base.
    metadata_items: Mapped[list[AggregateMetadata]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="AggregateMetadata.id")


class AggregateHost(TimestampMixin, APIBase):
    __tablename__ = "aggregate_hosts"
    __table_args__ = (UniqueConstraint("host", "aggregate_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"))


class AggregateMetadata(TimestampMixin, APIBase):
    __tablename__ = "aggregate_metadata"
    __table_args__ = (UniqueConstraint("aggregate_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class InstanceGroup(TimestampMixin, APIBase):
    """A server group: where its members may run relative to each other.

    It lives in the API database, not a cell's, because its members may sit in
    several cells at once (an anti-affinity group spanning cells, a member
    moving between them) and every cell's scheduling must see the whole group.
    """

    __tablename__ = "instance_groups"
    __table_args__ = (UniqueConstraint("uuid", name="uniq_instance_groups0uuid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    #: affinity, anti-affinity, soft-affinity or soft-anti-affinity
    policy: Mapped[str] = mapped_column(String(255))
    #: 2.64 rules, e.g. {"max_server_per_host": 2}
    rules: Mapped[dict | None] = mapped_column(JSONText, nullable=True)


class InstanceGroupMember(TimestampMixin, APIBase):
    __tablename__ = "instance_group_member"
    __table_args__ = (UniqueConstraint("group_id", "instance_uuid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), index=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)


class Quota(TimestampMixin, APIBase):
    """A project's (or, with user_id, one of its users') limit on one resource."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    #: '' for the project's own limit (a NULL would defeat the unique constraint)
    user_id: Mapped[str] = mapped_column(String(255), default="")
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(TimestampMixin, APIBase):
    """A limit of a quota class; class ``default`` overrides the configured defaults."""

    __tablename__ = "quota_classes"
    __table_args__ = (UniqueConstraint("class_name", "resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_name: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class CellDrain(TimestampMixin, APIBase):
    """A drain of one cell: every server moved off it in waves, and how each fared.

    In the API DB so a restarted conductor continues it. ``servers`` maps each
    server's uuid to its state in the drain; ``version`` is bumped by every
    write, and every write is conditional on the version it read, so the
    runner and a pause or resume from the API never overwrite each other.
    ``owner`` holds the drain through a lease like a move saga's.
    """

    __tablename__ = "cell_drains"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    cell_uuid: Mapped[str] = mapped_column(String(36), index=True)
    to_cell_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # running <-> paused -> done
    status: Mapped[str] = mapped_column(String(32), index=True)
    #: the cell while the drain is unfinished, then NULL: a unique key, so two
    #: drains of one cell cannot both be accepted, however they race
    active_cell: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    settings: Mapped[dict] = mapped_column(JSONText)
    servers: Mapped[dict] = mapped_column(JSONText)
    context: Mapped[dict] = mapped_column(JSONText)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
