"""Image bodies as Glance v2 shows them: core fields, links, extra properties flattened."""

from __future__ import annotations

from typing import Any

from transcell.image.service import extra_properties

_CORE = ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
         "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_disk",
         "min_ram", "disk_format", "container_format", "created_at", "updated_at", "tags")


def image(record: dict[str, Any]) -> dict[str, Any]:
    body = {key: record.get(key) for key in _CORE}
    body["os_hidden"] = bool(record.get("os_hidden", False))
    body["tags"] = list(record.get("tags") or [])
    body["self"] = f"/v2/images/{record['id']}"
    body["file"] = f"/v2/images/{record['id']}/file"
    body["schema"] = "/v2/schemas/image"
    body.update(extra_properties(record))
    return body
