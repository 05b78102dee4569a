"""os-volume_attachments request bodies and queries, by microversion."""

from __future__ import annotations

from typing import Any

from transcell.api.compute.common import BOOLEAN
from transcell.api.compute.microversion import APIVersion
from transcell.api.compute.schemas.servers import TAG

#: A volume id as Nova takes it: a uuid, with or without its dashes.
VOLUME_ID = {"type": "string",
             "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                        "[0-9a-fA-F]{12}$"}
#: Nova's device path: /dev/ then an optional x, a letter, an optional d, then letters and
#: digits (vdb, sdc, xvdd1); null or absent lets the server choose.
DEVICE = {"type": ["string", "null"],
          "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}


def _envelope(attachment: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"volumeAttachment": attachment},
            "required": ["volumeAttachment"], "additionalProperties": False}


def create(version: APIVersion) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": VOLUME_ID, "device": DEVICE}
    if version.matches("2.49"):
        props["tag"] = TAG
    if version.matches("2.79"):
        props["delete_on_termination"] = BOOLEAN
    return _envelope({"type": "object", "properties": props, "required": ["volumeId"],
                      "additionalProperties": False})


def update(version: APIVersion) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": VOLUME_ID}
    if version.matches("2.85"):
        props.update({"device": DEVICE, "id": VOLUME_ID, "serverId": VOLUME_ID,
                      "tag": TAG, "delete_on_termination": BOOLEAN})
    return _envelope({"type": "object", "properties": props, "required": ["volumeId"],
                      "additionalProperties": False})


def index_query_keys(version: APIVersion) -> tuple[str, ...] | None:
    """Query parameters a list takes; None while unknown ones are still ignored (< 2.75)."""
    return ("limit", "offset") if version.matches("2.75") else None
