"""The order of an image list: Glance's sort keys, one or several, each asc or desc.

Several keys sort by the first, ties by the next, and so on; the image id
breaks any tie left (in the first key's direction), so pages fetched with a
marker never overlap or skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transcell import exception

SORT_KEYS = ("created_at", "updated_at", "name", "id", "status", "size", "visibility",
             "disk_format", "container_format", "min_disk", "min_ram")
_NUMERIC = ("size", "min_disk", "min_ram")


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check(keys: str | Sequence[str], dirs: str | Sequence[str]
          ) -> list[tuple[str, str]]:
    """(key, direction) pairs; one direction given for several keys applies to them all."""
    keys, dirs = _as_list(keys), _as_list(dirs)
    if not keys:
        keys = ["created_at"]
    if not dirs:
        dirs = ["desc"]
    for key in keys:
        if key not in SORT_KEYS:
            raise exception.Invalid(f"Invalid sort key {key!r}: use one of "
                                    f"{', '.join(SORT_KEYS)}.")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise exception.Invalid(f"Invalid sort direction {direction!r}: use asc or desc.")
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    if len(dirs) != len(keys):
        raise exception.Invalid("The number of sort directions must be one or match the "
                                "number of sort keys.")
    return list(zip(keys, dirs, strict=True))


def _value(field: str, record: dict[str, Any]) -> tuple:
    """Unset values sort before set ones."""
    value = record.get(field)
    if field in _NUMERIC:
        return (value is not None, value or 0)
    return (value is not None, str(value or ""))


def order(records: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> None:
    """Sort ``records`` in place by ``pairs`` (from :func:`check`)."""
    records.sort(key=lambda r: r["id"], reverse=pairs[0][1] == "desc")
    for field, direction in reversed(pairs):
        records.sort(key=lambda r, f=field: _value(f, r), reverse=direction == "desc")
