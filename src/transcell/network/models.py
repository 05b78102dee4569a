"""The network service's own database: networks, subnets, ports and their bindings.

The network service keeps a database of its own (like Neutron beside Nova), so
it can run on its own and every cell reaches the same ports. IP uniqueness is
enforced by the database, not by a lock, so two API workers allocating from
one subnet at once can never hand out the same address.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from transcell.db.types import JSONText, utcnow

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
DOWN = "DOWN"


def new_id() -> str:
    return str(uuid.uuid4())


class NetworkBase(DeclarativeBase):
    pass


class StandardAttrMixin:
    """What Neutron calls standard attributes: every resource has them."""

    description: Mapped[str] = mapped_column(String(255), default="")
    tags: Mapped[list[str]] = mapped_column(JSONText, default=list)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow,
                                                            onupdate=utcnow)


class Network(StandardAttrMixin, NetworkBase):
    __tablename__ = "networks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="", index=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", lazy="selectin", order_by="[Subnet.created_at, Subnet.id]",
        cascade="all, delete-orphan", passive_deletes=True)
    segments: Mapped[list[Segment]] = relationship(
        lazy="selectin", order_by="[Segment.created_at, Segment.id]",
        cascade="all, delete-orphan", passive_deletes=True)


class Subnet(StandardAttrMixin, NetworkBase):
    __tablename__ = "subnets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the segment (of the same network) whose hosts can use the subnet; None on a
    #: network without segments
    segment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("segments.id"), nullable=True, index=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSONText, default=list)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSONText, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSONText, default=list)

    network: Mapped[Network] = relationship(back_populates="subnets")
    #: also orders a network's deletion: its subnets go before the segments they use
    segment: Mapped[Segment | None] = relationship(lazy="select")


class Port(StandardAttrMixin, NetworkBase):
    __tablename__ = "ports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32), unique=True)
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DOWN)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    security_groups: Mapped[list[str]] = mapped_column(JSONText, default=list)
    #: what the port asks of any binding while it has none (Neutron keeps these
    #: on an empty-host binding row; a column reads more plainly)
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    #: set when the compute side created the port for a server, so deallocation
    #: deletes it; ports the user brought are only detached
    created_for_instance: Mapped[bool] = mapped_column(Boolean, default=False)
    vif_tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vif_index: Mapped[int] = mapped_column(Integer, default=0)
    #: "immediate", or "deferred" for a port of a routed network created without
    #: a host: it gets its address when it is bound, from its host's segment
    ip_allocation: Mapped[str] = mapped_column(String(16), default="immediate")
    #: the fixed IPs the port had before its last re-addressing (a move to a cell
    #: its segment does not reach), so a repeated call answers the same and a
    #: revert knows what to put back; None once restored
    readdressed_from: Mapped[list[dict[str, str]] | None] = mapped_column(
        JSONText, nullable=True)

    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        lazy="selectin", order_by="IPAllocation.id", cascade="all, delete-orphan",
        passive_deletes=True)
    bindings: Mapped[list[PortBinding]] = relationship(
        lazy="selectin", order_by="PortBinding.id", cascade="all, delete-orphan",
        passive_deletes=True)

    def active_binding(self) -> PortBinding | None:
        for binding in self.bindings:
            if binding.status == ACTIVE:
                return binding
        return None


class IPAllocation(NetworkBase):
    __tablename__ = "ip_allocations"
    __table_args__ = (
        UniqueConstraint("subnet_id", "ip_address",
                         name="uniq_ip_allocations0subnet_id0ip_address"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"))
    ip_address: Mapped[str] = mapped_column(String(64))


class PortBinding(NetworkBase):
    """Where a port is plugged: one ACTIVE binding at most, others wait INACTIVE.

    A second, inactive binding on a target host is how a server's port follows
    it to another cell: created before the move, activated when it finishes.
    """

    __tablename__ = "port_bindings"
    __table_args__ = (
        UniqueConstraint("port_id", "host", name="uniq_port_bindings0port_id0host"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=INACTIVE)
    vif_type: Mapped[str] = mapped_column(String(64), default="ovs")
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    profile: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    vif_details: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow,
                                                            onupdate=utcnow)


class Segment(StandardAttrMixin, NetworkBase):
    """A part of a network with its own L2 domain, reaching only some cells.

    A routed network has one per cell: a port's address comes from a subnet of
    the segment its host's cell reaches, and is usable nowhere else.
    """

    __tablename__ = "segments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: names of the cells whose hosts this segment reaches
    cells: Mapped[list[str]] = mapped_column(JSONText, default=list)


class SecurityGroup(StandardAttrMixin, NetworkBase):
    """A project's group of rules; each project's "default" group is made on first use."""

    __tablename__ = "security_groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        lazy="selectin", order_by="[SecurityGroupRule.created_at, SecurityGroupRule.id]",
        foreign_keys="SecurityGroupRule.security_group_id", cascade="all, delete-orphan",
        passive_deletes=True)


class DefaultSecurityGroup(NetworkBase):
    """Which group is a project's default: one per project, by the primary key.

    Names are free (two groups of a project may share one), so the key, not
    the name, is what stops two concurrent first requests making two defaults.
    """

    __tablename__ = "default_security_groups"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), unique=True)


class SecurityGroupRule(StandardAttrMixin, NetworkBase):
    __tablename__ = "security_group_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=True)


class Router(StandardAttrMixin, NetworkBase):
    """A router as a record: its interfaces are ports whose device_id is its id.

    There is no data plane: nothing forwards packets between the subnets a
    router joins; clients (and Tempest) see the objects Neutron would show.
    """

    __tablename__ = "routers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    #: the external network of its gateway, None without one; a network that
    #: goes away takes the gateway with it
    gw_network_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="SET NULL"), nullable=True,
        index=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)


class SubnetPool(StandardAttrMixin, NetworkBase):
    """A pool of prefixes, recorded (subnets are not yet allocated from it)."""

    __tablename__ = "subnetpools"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSONText, default=list)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
