"""Server metadata request bodies: a whole ``metadata`` object, or one ``meta`` item."""

from __future__ import annotations

from typing import Any

from transcell.api.compute.schemas.servers import METADATA

#: POST (merge) and PUT (replace all) of /servers/{id}/metadata.
METADATA_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"metadata": METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}

#: PUT /servers/{id}/metadata/{key}: exactly one item, whose key is the URL's.
META_ITEM_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"meta": {**METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"],
    "additionalProperties": False,
}
