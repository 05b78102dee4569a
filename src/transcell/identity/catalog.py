"""Service catalog entries in Keystone's v3 shape.

Clients find every API through the catalog in their token, so its entries must
look exactly like Keystone's: ``region`` as well as ``region_id`` (Tempest
reads the former), an ``id`` on each endpoint, a ``name`` on each service.
Ids are derived from the URL so the catalog is the same on every request and
every restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from transcell.conf import CONF

INTERFACES = ("public", "internal", "admin")

#: service type -> (service name, path below the server root)
SERVICES = {
    "identity": ("keystone", "/identity"),
    "compute": ("nova", "/compute/v2.1"),
    "image": ("glance", "/image"),
    "network": ("neutron", "/network"),
    "placement": ("placement", "/placement"),
    "block-storage": ("cinder", "/volume/v3"),
    # the older type name many clients (and Nova's cinder client) still look up
    "volumev3": ("cinderv3", "/volume/v3"),
}

DEFAULT_SERVICES = ("identity", "compute", "image", "network", "placement", "block-storage",
                    "volumev3")


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "|".join(parts)).hex


def service_entry(service_type: str, name: str, url: str,
                  region: str | None = None) -> dict[str, Any]:
    """One catalog service with the same URL on all three interfaces."""
    region = region or CONF.region_name
    return {
        "id": _stable_id("service", service_type, name),
        "type": service_type,
        "name": name,
        "endpoints": [{"id": _stable_id(service_type, interface, url),
                       "interface": interface, "region": region, "region_id": region,
                       "url": url}
                      for interface in INTERFACES],
    }


def default_catalog(base_url: str, services: Iterable[str] = DEFAULT_SERVICES,
                    region: str | None = None) -> list[dict[str, Any]]:
    """The catalog of APIs mounted at transcell's standard prefixes under ``base_url``."""
    base = base_url.rstrip("/")
    entries = []
    for service_type in services:
        name, path = SERVICES[service_type]
        entries.append(service_entry(service_type, name, base + path, region))
    return entries


def build_catalog(base_url: str, region: str | None = None) -> list[dict[str, Any]]:
    """The standard catalog of the embedded cloud (every API on one port)."""
    return default_catalog(base_url, region=region)
