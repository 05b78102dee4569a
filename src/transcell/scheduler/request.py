"""Turning a request spec into a Placement query."""

from __future__ import annotations

import math


def resources(flavor: dict) -> dict[str, int]:
    disk = (flavor.get("root_gb") or 0) + (flavor.get("ephemeral_gb") or 0)
    disk += math.ceil((flavor.get("swap") or 0) / 1024)
    wanted = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["memory_mb"]}
    if disk:
        wanted["DISK_GB"] = disk
    return wanted


def traits(flavor: dict) -> tuple[list[str], list[str]]:
    """Required and forbidden traits from ``trait:NAME=required|forbidden`` extra specs."""
    required, forbidden = [], []
    for key, value in (flavor.get("extra_specs") or {}).items():
        if not key.startswith("trait:"):
            continue
        name = key.split(":", 1)[1]
        if value == "required":
            required.append(name)
        elif value == "forbidden":
            forbidden.append(name)
    return sorted(required), sorted(forbidden)
