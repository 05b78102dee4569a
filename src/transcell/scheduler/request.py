"""Turning a request spec into a Placement query."""

from __future__ import annotations

import math
from dataclasses import dataclass

from transcell import exception


def resources(flavor: dict, volume_backed: bool = False) -> dict[str, int]:
    """What a server of ``flavor`` claims; a volume-backed one (a spec's ``is_bfv``) has
    its root disk on the volume service, so its flavor's root disk claims nothing here."""
    disk = (0 if volume_backed else (flavor.get("root_gb") or 0)) + \
        (flavor.get("ephemeral_gb") or 0)
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


@dataclass(frozen=True)
class Move:
    """What a move adds to a request spec, under its ``move`` key.

    ``{"source_cell_uuid": <uuid of the cell the server is in>,
    "allow_cross_cell": <bool>}``. A spec without ``move`` is a build. With
    ``allow_cross_cell`` false only hosts of the source cell are candidates;
    with it true every cell is, and the cross-cell weigher prefers the source.
    """

    source_cell_uuid: str
    allow_cross_cell: bool


MOVE_KEYS = frozenset({"source_cell_uuid", "allow_cross_cell"})


def move(spec: dict) -> Move | None:
    """The spec's move, checked strictly: a misspelt key must not silently turn a
    cross-cell move into a same-cell one (or the reverse)."""
    raw = spec.get("move")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise exception.Invalid("Request spec 'move' must be an object with "
                                "source_cell_uuid and allow_cross_cell.")
    unknown = sorted(set(raw) - MOVE_KEYS)
    if unknown:
        raise exception.Invalid(f"Request spec 'move' has unknown keys: {', '.join(unknown)}; "
                                f"expected {', '.join(sorted(MOVE_KEYS))}.")
    source = raw.get("source_cell_uuid")
    if not isinstance(source, str) or not source:
        raise exception.Invalid("Request spec 'move' needs source_cell_uuid, the uuid of the "
                                "server's current cell.")
    allow = raw.get("allow_cross_cell")
    if not isinstance(allow, bool):
        raise exception.Invalid("Request spec 'move' needs allow_cross_cell, a boolean.")
    return Move(source, allow)
