"""Request plumbing shared by the Block storage API's handlers.

Lists follow Cinder: ``limit``/``marker`` page (a ``<collection>_links`` next
link when a page is full), ``sort=key:dir,...`` (or ``sort_key``/``sort_dir``)
orders, and other query keys filter; from 3.31 an unknown filter is a 400.
"""

from __future__ import annotations

import ast
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import webob

from transcell import exception
from transcell.api.volume import microversion
from transcell.volume import exceptions as vexc
from transcell.wsgi.app import application_url, context_of, read_json

CONTROLS = {"limit", "marker", "sort", "sort_key", "sort_dir", "offset", "all_tenants",
            "project_id", "with_count"}
SORT_KEYS = {"id", "name", "status", "size", "created_at", "updated_at", "availability_zone",
             "volume_type", "bootable", "display_name"}


def body_of(req: webob.Request, member: str) -> dict[str, Any]:
    data = read_json(req)
    if not isinstance(data, dict) or member not in data:
        raise vexc.InvalidInput(reason=f"Missing required element '{member}' in request "
                                       f"body.")
    if not isinstance(data[member], dict):
        raise vexc.InvalidInput(reason=f"'{member}' must be an object.")
    return data[member]


def action_of(req: webob.Request, known: set[str]) -> tuple[str, Any]:
    data = read_json(req)
    if not isinstance(data, dict) or len(data) != 1:
        raise vexc.InvalidInput(reason="An action body names exactly one action.")
    name, value = next(iter(data.items()))
    if name not in known:
        raise vexc.InvalidInput(reason=f"There is no such action: {name}")
    return name, value


def check_uuid(value: Any, what: str, not_found: exception.NotFound | None = None) -> str:
    """A UUID string; otherwise 404 (a path id, as Cinder) or 400 (a body field)."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        uuid.UUID(value)
        return value
    except ValueError:
        if not_found is not None:
            raise not_found from None
        raise vexc.InvalidInput(reason=f"{what} must be a UUID, not {value!r}") from None


def boolean(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise vexc.InvalidInput(reason=f"{what} must be a boolean, not {value!r}")


def size(value: Any, what: str = "size") -> int:
    """Cinder takes an integer or a string of digits; 1 or more."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise vexc.InvalidInput(reason=f"Invalid input for field/attribute {what}. Value: "
                                       f"{value!r}. {what} must be an integer greater "
                                       f"than 0.")
    if value > 2 ** 31 - 1:
        raise vexc.InvalidInput(reason=f"{what} {value} is too large.")
    return value


def text(value: Any, what: str, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise vexc.InvalidInput(reason=f"{what} must be a string of at most {limit} "
                                       f"characters.")
    return value


def metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise vexc.InvalidInput(reason="metadata must be an object of strings.")
    for key, item in value.items():
        if not key or len(key) > 255 or not isinstance(item, str) or len(item) > 255:
            raise vexc.InvalidInput(reason="metadata keys and values must be strings of "
                                           "1 to 255 characters.")
    return dict(value)


def url_project(req: webob.Request) -> None:
    """A project id in the URL must be the token's (Cinder: "Malformed request url")."""
    project = req.environ.get("transcell.volume_url_project")
    ctx = context_of(req)
    if project is not None and project != ctx.project_id:
        raise vexc.InvalidInput(reason=f"Malformed request url: the project {project} in "
                                       f"the URL is not the token's project "
                                       f"{ctx.project_id}.")


def _filters(req: webob.Request, allowed: set[str], handled: set[str]) -> dict[str, str]:
    filters = {key: value for key, value in req.GET.items()
               if key not in CONTROLS and key not in handled}
    unknown = sorted(set(filters) - allowed)
    if unknown and microversion.of(req).at_least(microversion.FILTER_CHECK):
        raise vexc.InvalidInput(reason=f"Invalid filter keys: {', '.join(unknown)}")
    return {key: value for key, value in filters.items() if key in allowed}


def _field(key: str) -> str:
    """The record's field a filter or sort key names: ``display_name`` is Cinder's old
    name for ``name``."""
    return "name" if key == "display_name" else key


def _matches(item: dict[str, Any], key: str, wanted: str) -> bool:
    if key == "metadata":
        pairs = _mapping(wanted)
        return all(item.get("metadata", {}).get(k) == v for k, v in pairs.items())
    value = item.get(_field(key))
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return str(value) == wanted


def _mapping(text: str) -> dict[str, Any]:
    """A metadata filter: JSON, or the Python literal clients like Tempest send
    (``{'k': 'v'}``); parsed as data, never evaluated."""
    for parse in (json.loads, ast.literal_eval):
        try:
            found = parse(text)
        except (ValueError, SyntaxError, RecursionError):
            continue
        if isinstance(found, dict):
            return found
    raise vexc.InvalidInput(reason="metadata filter must be an object of keys and values")


def _sort(req: webob.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pairs: list[tuple[str, str]] = []
    if req.GET.get("sort"):
        for part in req.GET["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "desc"))
    elif req.GET.get("sort_key"):
        pairs.append((req.GET["sort_key"], req.GET.get("sort_dir", "desc")))
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise vexc.InvalidInput(reason=f"Invalid sort key: {key}")
        if direction not in ("asc", "desc"):
            raise vexc.InvalidInput(reason=f"Invalid sort direction: {direction}")
    for key, direction in reversed(pairs):
        key = _field(key)
        items = sorted(items, key=lambda item, k=key: (item.get(k) is not None,
                                                       str(item.get(k) or "")),
                       reverse=direction == "desc")
    return items


def listed(req: webob.Request, name: str, items: list[dict[str, Any]],
           allowed_filters: set[str], handled: set[str] = frozenset()  # noqa: B006
           ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Filtered, sorted and paged ``items`` with Cinder's next link, if any
    (``handled`` filters were applied by the service already)."""
    filters = _filters(req, allowed_filters, set(handled))
    items = [item for item in items
             if all(_matches(item, key, value) for key, value in filters.items())]
    items = _sort(req, items)
    marker = req.GET.get("marker")
    if marker:
        ids = [item["id"] for item in items]
        if marker not in ids:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        items = items[ids.index(marker) + 1:]
    offset_text = req.GET.get("offset")
    if offset_text is not None:
        if not offset_text.strip().isdigit():
            raise vexc.InvalidInput(reason="offset param must be an integer 0 or greater")
        items = items[int(offset_text):]
    limit_text = req.GET.get("limit")
    if limit_text is None:
        return items, []
    try:
        limit = int(limit_text)
        if limit < 0:
            raise ValueError(limit_text)
    except ValueError:
        raise vexc.InvalidInput(reason="limit param must be an integer 0 or "
                                       "greater") from None
    page = items[:limit]
    if limit == 0 or len(page) < limit:  # Cinder links onwards from every full page
        return page, []
    query = [(k, v) for k, v in req.GET.items() if k != "marker"]
    query.append(("marker", page[-1]["id"]))
    href = f"{application_url(req)}{req.path_info.rstrip('/')}?{urlencode(query)}"
    return page, [{"rel": "next", "href": href}]


def self_links(req: webob.Request, collection: str, item_id: str) -> list[dict[str, str]]:
    project = context_of(req).project_id
    base = application_url(req)
    return [{"rel": "self", "href": f"{base}/v3/{project}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/{project}/{collection}/{item_id}"}]
