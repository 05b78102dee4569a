"""Request and response plumbing shared by every Neutron resource.

Lists follow Neutron: repeated query keys are alternatives, ``fields`` picks
attributes, ``sort_key``/``sort_dir`` order, and ``limit``/``marker`` page with
a ``<collection>_links`` "next" link clients follow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import webob

from transcell import exception
from transcell.network import (
    attributes,
    routers,
    security_groups,
    segments,
    sg_rules,
    subnetpools,
)
from transcell.wsgi.app import json_response, public_url, read_json

LIST_CONTROLS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}


def member_body(req: webob.Request, member: str) -> dict[str, Any]:
    """The object inside ``{"<member>": {...}}``."""
    data = read_json(req)
    if isinstance(data, dict) and f"{member}s" in data and member not in data:
        raise exception.Invalid(f"Bulk creation of {member}s is not supported.")
    if not isinstance(data, dict) or member not in data:
        raise exception.Invalid(f"Unable to find '{member}' in request body")
    if set(data) != {member}:
        extra = sorted(set(data) - {member})
        raise exception.Invalid(f"Unrecognized attribute(s) '{', '.join(extra)}'")
    if not isinstance(data[member], dict):
        raise exception.Invalid(f"Body of '{member}' must be a JSON object.")
    return data[member]


def filters_of(req: webob.Request) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for key, value in req.GET.items():
        if key not in LIST_CONTROLS:
            filters.setdefault(key, []).append(value)
    return filters


def fields_of(req: webob.Request) -> list[str]:
    """The attributes a ``fields`` query asks for (empty: all of them)."""
    return _fields(req)


def _fields(req: webob.Request) -> list[str]:
    return [name for value in req.GET.getall("fields") for name in value.split(",") if name]


def select_fields(body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return body
    return {key: value for key, value in body.items() if key in fields}


def member(req: webob.Request, name: str, body: dict[str, Any], status: int = 200
           ) -> webob.Response:
    return json_response({name: select_fields(body, _fields(req))}, status=status)


#: What each collection may be sorted by when it is empty (a full one is sorted by
#: the attributes its items show).
SORTABLE: dict[str, frozenset[str]] = {
    "networks": frozenset(attributes.NETWORK) | {"status", "subnets", "l2_adjacency"},
    "subnets": frozenset(attributes.SUBNET),
    "ports": frozenset(attributes.PORT) | {"status", "ip_allocation"},
    "segments": frozenset(segments.SEGMENT),
    "routers": frozenset(routers.ROUTER) | {"id", "status"},
    "subnetpools": frozenset(subnetpools.SUBNETPOOL) | {"id", "ip_version"},
    "security_groups": frozenset(security_groups.SECURITY_GROUP),
    "security_group_rules": frozenset(sg_rules.RULE),
}


def _check_sort(req: webob.Request, name: str, items: list[dict[str, Any]]
                ) -> tuple[list[str], list[str]]:
    """Neutron's rules: one direction per key, each asc or desc, each key an attribute;
    checked whether or not the list is empty, so a typo is never a silent 200."""
    keys = req.GET.getall("sort_key")
    dirs = req.GET.getall("sort_dir")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise exception.Invalid(f"{direction} is invalid value for sort_dirs, valid "
                                    "values are 'asc' and 'desc'")
    if dirs and len(dirs) != len(keys):
        raise exception.Invalid("The number of sort_keys and sort_dirs must be same")
    known = set(items[0]) if items else set(SORTABLE.get(name, ()))
    for key in keys:
        if (items or name in SORTABLE) and key not in known:
            raise exception.Invalid(f"{key} is invalid attribute for sort_keys")
    return keys, dirs


def _sorted(req: webob.Request, name: str, items: list[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    keys, dirs = _check_sort(req, name, items)
    for index in reversed(range(len(keys))):
        key = keys[index]
        direction = dirs[index] if index < len(dirs) else "asc"
        items = sorted(items, key=lambda item, k=key: (item[k] is not None, str(item[k])),
                       reverse=direction == "desc")
    return items


def _page(req: webob.Request, items: list[dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], str | None]:
    marker = req.GET.get("marker")
    if marker:
        ids = [item["id"] for item in items]
        if marker not in ids:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        items = items[ids.index(marker) + 1:]
    limit_text = req.GET.get("limit")
    if not limit_text:
        return items, None
    try:
        limit = int(limit_text)
        if limit < 0:
            raise ValueError(limit_text)
    except ValueError:
        raise exception.Invalid(f"Limit must be an integer 0 or greater and not "
                                f"'{limit_text}'") from None
    if limit == 0 or len(items) <= limit:
        return items, None
    page = items[:limit]
    query = [(k, v) for k, v in req.GET.items() if k != "marker"]
    query.append(("marker", page[-1]["id"]))
    return page, f"{public_url(req, query=False)}?{urlencode(query)}"


def collection(req: webob.Request, name: str, items: list[dict[str, Any]]
               ) -> webob.Response:
    page, next_href = _page(req, _sorted(req, name, items))
    fields = _fields(req)
    body: dict[str, Any] = {name: [select_fields(item, fields) for item in page]}
    if next_href:
        body[f"{name}_links"] = [{"rel": "next", "href": next_href}]
    return json_response(body)
