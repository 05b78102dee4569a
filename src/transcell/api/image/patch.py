"""JSON-patch requests on images, turned into one all-or-nothing service update.

Glance accepts RFC 6902 patches (``application/openstack-images-v2.1-json-patch``)
and its older v2.0 form (``{"replace": "/name", "value": ...}``), on top-level
properties only.
"""

from __future__ import annotations

from typing import Any

from transcell import exception
from transcell.image.service import MUTABLE, READ_ONLY, RESERVED, extra_properties

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"
MEDIA_TYPES = (V21, V20, "application/json-patch+json")
_OPS = ("add", "replace", "remove")


def _settable(key: str) -> bool:
    return key not in READ_ONLY and key not in RESERVED


def _key_of(path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise exception.Invalid(f"Patch path must be a string such as '/name', got {path!r}.")
    raw = path[1:] if path.startswith("/") else path
    if not raw or "/" in raw:
        raise exception.Invalid(f"Unsupported patch path {path!r}: only top-level "
                                "properties such as '/name' can be patched.")
    return raw.replace("~1", "/").replace("~0", "~")


def _operations(body: Any, media_type: str) -> list[tuple[str, str, Any]]:
    if not isinstance(body, list):
        raise exception.Invalid("A JSON-patch body must be a list of operations.")
    ops = []
    for item in body:
        if not isinstance(item, dict):
            raise exception.Invalid(f"Patch operation must be an object, got {item!r}.")
        if media_type == V20 and "op" not in item:
            names = [name for name in _OPS if name in item]
            if len(names) != 1:
                raise exception.Invalid(f"Patch operation {item!r} must name exactly one of "
                                        f"{', '.join(_OPS)}.")
            op, path = names[0], item[names[0]]
        else:
            op, path = item.get("op"), item.get("path")
        if op not in _OPS:
            raise exception.Invalid(f"Patch operation {op!r} is not supported; use "
                                    f"{', '.join(_OPS)}.")
        if op != "remove" and "value" not in item:
            raise exception.Invalid(f"Patch operation '{op}' on {path!r} needs a 'value'.")
        ops.append((op, _key_of(path), item.get("value")))
    return ops


def changes_of(record: dict[str, Any], body: Any, media_type: str
               ) -> tuple[dict[str, Any], list[str]]:
    """Apply the patch to a copy of the image; return what to set and what to remove."""
    original_extras = extra_properties(record)
    state = {key: record.get(key) for key in MUTABLE}
    state.update(original_extras)
    touched: list[str] = []
    for op, key, value in _operations(body, media_type):
        if key not in touched:
            touched.append(key)
        if op == "add":
            state[key] = value
        elif op == "replace":
            if _settable(key) and key not in state:
                raise exception.Conflict(f"Property {key} does not exist.")
            state[key] = value
        else:
            if key in MUTABLE or not _settable(key):
                raise exception.Forbidden(f"Property '{key}' cannot be removed.")
            if key not in state:
                raise exception.Conflict(f"Property {key} does not exist.")
            del state[key]
    changes = {key: state[key] for key in touched if key in state}
    remove = [key for key in touched if key not in state and key in original_extras]
    return changes, remove
