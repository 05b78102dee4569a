"""Rows as the plain dicts Neutron clients read; the service returns nothing else.

Keeping results JSON-shaped at the service boundary is what lets the same
calls travel over RPC unchanged.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from transcell.db.types import isotime
from transcell.network.models import (
    ACTIVE,
    Network,
    Port,
    PortBinding,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Segment,
    Subnet,
    SubnetPool,
)

#: port attributes only administrators see (Neutron's default policy)
ADMIN_ONLY_PORT_FIELDS = ("binding:host_id", "binding:profile", "binding:vif_details",
                          "transcell:created_for_instance", "transcell:vif_tag",
                          "transcell:vif_index")

#: network attributes only administrators see (Neutron's provider and multi-provider)
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
ADMIN_ONLY_NETWORK_FIELDS = (*PROVIDER, "segments")


def _standard(row: Any) -> dict[str, Any]:
    return {
        "description": row.description or "",
        "tags": list(row.tags or []),
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at or row.created_at),
        "revision_number": row.revision_number,
    }


def _provider(segment: Segment | None) -> dict[str, Any]:
    return {
        "provider:network_type": segment.network_type if segment else None,
        "provider:physical_network": segment.physical_network if segment else None,
        "provider:segmentation_id": segment.segmentation_id if segment else None,
    }


def _segments(net: Network) -> dict[str, Any]:
    """One segment shows as provider attributes, several as a "segments" list."""
    if len(net.segments) > 1:
        return {"segments": [_provider(segment) for segment in net.segments]}
    return _provider(net.segments[0] if net.segments else None)


def network(net: Network) -> dict[str, Any]:
    return {
        "id": net.id,
        "name": net.name,
        "tenant_id": net.project_id,
        "project_id": net.project_id,
        "status": net.status,
        "admin_state_up": net.admin_state_up,
        "shared": net.shared,
        "subnets": [subnet.id for subnet in net.subnets],
        "mtu": net.mtu,
        "router:external": net.router_external,
        "port_security_enabled": net.port_security_enabled,
        "availability_zones": [],
        "availability_zone_hints": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "l2_adjacency": len(net.segments) < 2,
        **_segments(net),
        **_standard(net),
    }


def public_network(body: dict[str, Any], is_admin: bool) -> dict[str, Any]:
    if is_admin:
        return body
    return {key: value for key, value in body.items() if key not in ADMIN_ONLY_NETWORK_FIELDS}


def segment(row: Segment) -> dict[str, Any]:
    return {
        "id": row.id,
        "network_id": row.network_id,
        "name": row.name,
        "network_type": row.network_type,
        "physical_network": row.physical_network,
        "segmentation_id": row.segmentation_id,
        "transcell:cells": list(row.cells),
        **_standard(row),
    }


def subnet(sub: Subnet) -> dict[str, Any]:
    return {
        "id": sub.id,
        "name": sub.name,
        "tenant_id": sub.project_id,
        "project_id": sub.project_id,
        "network_id": sub.network_id,
        "cidr": sub.cidr,
        "ip_version": sub.ip_version,
        "gateway_ip": sub.gateway_ip,
        "allocation_pools": [dict(pool) for pool in sub.allocation_pools],
        "enable_dhcp": sub.enable_dhcp,
        "dns_nameservers": list(sub.dns_nameservers),
        "host_routes": [dict(route) for route in sub.host_routes],
        "subnetpool_id": None,
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "service_types": [],
        "segment_id": sub.segment_id,
        **_standard(sub),
    }


def port(row: Port) -> dict[str, Any]:
    active = row.active_binding()
    return {
        "id": row.id,
        "name": row.name,
        "network_id": row.network_id,
        "tenant_id": row.project_id,
        "project_id": row.project_id,
        "mac_address": row.mac_address,
        "fixed_ips": [{"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}
                      for ip in row.fixed_ips],
        "device_id": row.device_id,
        "device_owner": row.device_owner,
        "status": row.status,
        "admin_state_up": row.admin_state_up,
        "binding:host_id": active.host if active else "",
        "binding:vif_type": active.vif_type if active else "unbound",
        "binding:vnic_type": active.vnic_type if active else row.vnic_type,
        "binding:profile": dict(active.profile if active else row.binding_profile),
        "binding:vif_details": dict(active.vif_details) if active else {},
        "security_groups": list(row.security_groups),
        "port_security_enabled": row.port_security_enabled,
        "ip_allocation": row.ip_allocation,
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "transcell:created_for_instance": row.created_for_instance,
        "transcell:vif_tag": row.vif_tag,
        "transcell:vif_index": row.vif_index,
        **_standard(row),
    }


def public_port(body: dict[str, Any], is_admin: bool) -> dict[str, Any]:
    if is_admin:
        return body
    return {key: value for key, value in body.items() if key not in ADMIN_ONLY_PORT_FIELDS}


def binding(row: PortBinding) -> dict[str, Any]:
    return {
        "host": row.host,
        "status": row.status,
        "vif_type": row.vif_type,
        "vif_details": dict(row.vif_details),
        "vnic_type": row.vnic_type,
        "profile": dict(row.profile),
    }


def security_group(group: SecurityGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "tenant_id": group.project_id,
        "project_id": group.project_id,
        "security_group_rules": [security_group_rule(rule) for rule in group.rules],
        "stateful": True,
        "shared": False,
        **_standard(group),
    }


def security_group_rule(rule: SecurityGroupRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "security_group_id": rule.security_group_id,
        "tenant_id": rule.project_id,
        "project_id": rule.project_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": None,
        "normalized_cidr": (str(ipaddress.ip_network(rule.remote_ip_prefix, strict=False))
                            if rule.remote_ip_prefix else None),
        **_standard(rule),
    }


def vif(row: Port, network_name: str) -> dict[str, Any]:
    """What the compute side needs of a port to plug and describe a server's NIC."""
    active = row.active_binding()
    return {
        "id": row.id,
        "address": row.mac_address,
        "network_id": row.network_id,
        "network_name": network_name,
        "fixed_ips": [{"ip_address": ip.ip_address, "subnet_id": ip.subnet_id,
                       "version": ipaddress.ip_address(ip.ip_address).version}
                      for ip in row.fixed_ips],
        "tag": row.vif_tag,
        "preexisting": not row.created_for_instance,
        "host": active.host if active else None,
        "active": row.status == ACTIVE,
        "vif_type": active.vif_type if active else "unbound",
        "vnic_type": active.vnic_type if active else row.vnic_type,
        "devname": f"tap{row.id[:11]}",
    }


def router(row: Router) -> dict[str, Any]:
    gateway = None
    if row.gw_network_id is not None:
        gateway = {"network_id": row.gw_network_id, "enable_snat": row.enable_snat,
                   "external_fixed_ips": []}
    return {
        "id": row.id,
        "name": row.name,
        "tenant_id": row.project_id,
        "project_id": row.project_id,
        "admin_state_up": row.admin_state_up,
        "status": row.status,
        "external_gateway_info": gateway,
        "routes": [],
        **_standard(row),
    }


def subnetpool(row: SubnetPool) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "tenant_id": row.project_id,
        "project_id": row.project_id,
        "ip_version": row.ip_version,
        "prefixes": list(row.prefixes),
        "min_prefixlen": row.min_prefixlen,
        "max_prefixlen": row.max_prefixlen,
        "default_prefixlen": row.default_prefixlen,
        "default_quota": row.default_quota,
        "shared": row.shared,
        "is_default": row.is_default,
        "address_scope_id": None,
        **_standard(row),
    }
