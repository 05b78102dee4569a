"""Server group request bodies: a ``policies`` list before 2.64, ``policy`` and
``rules`` from it; the soft policies exist from 2.15."""

from __future__ import annotations

from typing import Any

from transcell.api.compute.microversion import APIVersion
from transcell.api.compute.schemas.servers import NAME
from transcell.compute import server_groups as groups

POLICY_VERSION = "2.64"
SOFT_POLICIES_VERSION = "2.15"


def create(version: APIVersion) -> dict[str, Any]:
    if version.matches(POLICY_VERSION):
        group: dict[str, Any] = {
            "type": "object",
            "properties": {
                "name": NAME,
                "policy": {"type": "string", "enum": list(groups.POLICIES)},
                "rules": {"type": "object",
                          "properties": {"max_server_per_host": {
                              "type": ["integer", "string"], "pattern": "^[0-9]*$",
                              "minimum": 1}},
                          "additionalProperties": False},
            },
            "required": ["name", "policy"],
            "additionalProperties": False,
        }
    else:
        allowed = groups.POLICIES if version.matches(SOFT_POLICIES_VERSION) \
            else groups.HARD_POLICIES
        group = {
            "type": "object",
            "properties": {
                "name": NAME,
                "policies": {"type": "array",
                             "items": [{"type": "string", "enum": list(allowed)}],
                             "uniqueItems": True, "minItems": 1, "maxItems": 1,
                             "additionalItems": False},
            },
            "required": ["name", "policies"],
            "additionalProperties": False,
        }
    return {"type": "object", "properties": {"server_group": group},
            "required": ["server_group"], "additionalProperties": False}
