"""/images and /images/{id}/metadata: the compute API's proxy to the image service,
served until 2.36 (when Nova dropped its proxies and clients went to Glance).

Everything goes through the image client (``services.image``) with the
caller's context, and the image API's own rules (``get_image``,
``modify_image``, ``delete_image``, under Glance's names) are checked here
first: the in-process image service trusts its callers, so a proxy that
skipped them would let a reader change what the image API refuses it. Images look as
Nova shows them: Glance's status mapped to Nova's, extra properties as
``metadata``, sizes and limits under Nova's keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import webob

from transcell import exception, policy, quota
from transcell.api.compute import common
from transcell.api.compute.app import api_version, nova_fault
from transcell.context import RequestContext
from transcell.image import service as image_service
from transcell.policies.image import target
from transcell.registry import services
from transcell.wsgi.app import (
    application_url,
    context_of,
    empty_response,
    json_response,
    read_json,
)

GONE = "2.36"

#: Glance's status -> (Nova's status, progress)
_STATUS = {"queued": ("SAVING", 25), "saving": ("SAVING", 50), "uploading": ("SAVING", 50),
           "importing": ("SAVING", 50), "active": ("ACTIVE", 100), "killed": ("ERROR", 0),
           "deleted": ("DELETED", 0), "pending_delete": ("DELETED", 0),
           "deactivated": ("ERROR", 0)}

#: Record keys that are the image's own fields, not properties a user set.
_NOT_METADATA = (image_service.CORE | image_service.RESERVED | image_service.INTERNAL
                 | {"self", "file", "schema", "direct_url", "locations", "os_hash_value",
                    "os_hash_algo"})

_META = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
         "propertyNames": {"minLength": 1, "maxLength": 255}}
METADATA_SCHEMA = {"type": "object", "properties": {"metadata": _META},
                   "required": ["metadata"], "additionalProperties": False}
META_SCHEMA = {"type": "object", "properties": {"meta": _META},
               "required": ["meta"], "additionalProperties": False}


def _require_old(req: webob.Request) -> None:
    if api_version(req).matches(GONE):
        raise exception.NotFound("The resource could not be found.")


def metadata_of(record: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else str(v) for k, v in record.items()
            if k not in _NOT_METADATA and not k.startswith(image_service.RESERVED_PREFIX)}


def _get(ctx: RequestContext, image_id: str) -> dict[str, Any]:
    """The image if the caller may see it (404 otherwise, as the image API answers)."""
    try:
        record = services.image.get(ctx, image_id)
    except exception.NotFound:
        raise exception.NotFound("Image not found.") from None
    if not _allows(ctx, "get_image", record):
        raise exception.NotFound("Image not found.")
    return record


def _allows(ctx: RequestContext, rule: str, record: dict[str, Any]) -> bool:
    return policy.check(ctx, rule, target(record, ctx.project_id))


def _changeable(ctx: RequestContext, image_id: str, rule: str = "modify_image"
                ) -> dict[str, Any]:
    """The image, once the image API's ``rule`` lets the caller change it (else 403)."""
    record = _get(ctx, image_id)
    policy.authorize(ctx, rule, target(record, ctx.project_id))
    return record


def _timestamp(value: Any) -> str | None:
    """Nova's ``2011-01-01T01:02:03Z`` from the image service's ISO 8601 text."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(req: webob.Request, image_id: str) -> list[dict[str, str]]:
    links = common.resource_links(req, "images", image_id)
    links.append({"rel": "alternate", "type": "application/vnd.openstack.image",
                  "href": f"{application_url(req)}/images/{image_id}"})
    return links


def _brief(req: webob.Request, record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "name": record.get("name"),
            "links": _links(req, record["id"])}


def _full(req: webob.Request, record: dict[str, Any]) -> dict[str, Any]:
    status, progress = _STATUS.get(record.get("status") or "", ("UNKNOWN", 0))
    metadata = metadata_of(record)
    body = {
        "id": record["id"], "name": record.get("name"),
        "minRam": record.get("min_ram") or 0, "minDisk": record.get("min_disk") or 0,
        "metadata": metadata,
        "created": _timestamp(record.get("created_at")),
        "updated": _timestamp(record.get("updated_at")),
        "status": status, "progress": progress,
        "OS-EXT-IMG-SIZE:size": record.get("size"),
        "links": _links(req, record["id"]),
    }
    if "instance_uuid" in metadata:
        server = metadata["instance_uuid"]
        body["server"] = {"id": server, "links": common.resource_links(req, "servers", server)}
    return body


def _listed(req: webob.Request) -> list[dict[str, Any]]:
    ctx = context_of(req)
    policy.authorize(ctx, "get_images", target(None, ctx.project_id))
    images = [r for r in services.image.list(ctx, None) if _allows(ctx, "get_image", r)]
    wanted = {"name": req.GET.get("name"), "status": req.GET.get("status")}
    server, kind = req.GET.get("server"), req.GET.get("type")
    min_ram = req.GET.get("minRam")
    min_disk = req.GET.get("minDisk")
    since = common.query_time(req, "changes-since")
    found = []
    for record in images:
        if wanted["name"] is not None and record.get("name") != wanted["name"]:
            continue
        if wanted["status"] is not None and \
                _STATUS.get(record.get("status") or "", ("",))[0] != wanted["status"].upper():
            continue
        meta = metadata_of(record)
        if server is not None and meta.get("instance_uuid") != server.rstrip("/") \
                .rsplit("/", 1)[-1]:
            continue
        if kind is not None and meta.get("image_type") != kind:
            continue
        if min_ram is not None and (record.get("min_ram") or 0) < _int(min_ram, "minRam"):
            continue
        if min_disk is not None and (record.get("min_disk") or 0) < _int(min_disk, "minDisk"):
            continue
        if since is not None and (_timestamp(record.get("updated_at")) or "") < \
                since.strftime("%Y-%m-%dT%H:%M:%SZ"):
            continue
        found.append(record)
    limit, marker = common.limit_and_marker(req)
    return common.page_after(found, lambda r: r["id"], marker, limit)


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise exception.Invalid(f"Invalid {name} filter [{value}]") from None


def _listing(req: webob.Request, view) -> webob.Response:
    _require_old(req)
    items = [view(req, r) for r in _listed(req)]
    body: dict[str, Any] = {"images": items}
    links = common.collection_links(req, items, "images")
    if links:
        body["images_links"] = links
    return json_response(body)


def index(req: webob.Request) -> webob.Response:
    return _listing(req, _brief)


def detail(req: webob.Request) -> webob.Response:
    return _listing(req, _full)


def show(req: webob.Request, image_id: str) -> webob.Response:
    _require_old(req)
    return json_response({"image": _full(req, _get(context_of(req), image_id))})


def no_image(req: webob.Request) -> webob.Response:
    """DELETE on the collection. ``/images/`` names an image with a blank id, which Nova
    reports missing (404); ``/images`` itself only lists (405, as the router would)."""
    _require_old(req)
    if req.path_info.endswith("/"):
        raise exception.ImageNotFound(image_id="")
    resp = json_response(nova_fault(405, "The method specified is not allowed for this "
                                    "resource."), status=405)
    resp.headers["Allow"] = "GET"
    return resp


def delete(req: webob.Request, image_id: str) -> webob.Response:
    _require_old(req)
    ctx = context_of(req)
    _changeable(ctx, image_id, "delete_image")
    services.image.delete(ctx, image_id)
    return empty_response(204)


# -- metadata ----------------------------------------------------------------------

def _check_count(ctx: RequestContext, metadata: dict[str, str]) -> None:
    limit = quota.limits(ctx.project_id)["metadata_items"]
    if limit != quota.UNLIMITED and len(metadata) > limit:
        raise exception.OverQuota("Image metadata limit exceeded")


def _replace(ctx: RequestContext, record: dict[str, Any], new: dict[str, str]
             ) -> dict[str, str]:
    """Make the image's properties exactly ``new`` (one update: all or nothing)."""
    _check_count(ctx, new)
    old = metadata_of(record)
    changes = {k: v for k, v in new.items() if old.get(k) != v}
    remove = tuple(k for k in old if k not in new)
    updated = services.image.update(ctx, record["id"], changes, remove)
    return metadata_of(updated)


def metadata_index(req: webob.Request, image_id: str) -> webob.Response:
    _require_old(req)
    return json_response({"metadata": metadata_of(_get(context_of(req), image_id))})


def metadata_create(req: webob.Request, image_id: str) -> webob.Response:
    """POST merges the given items into the image's properties."""
    _require_old(req)
    body = read_json(req)
    common.validate(METADATA_SCHEMA, body)
    ctx = context_of(req)
    record = _changeable(ctx, image_id)
    merged = {**metadata_of(record), **body["metadata"]}
    return json_response({"metadata": _replace(ctx, record, merged)})


def metadata_update_all(req: webob.Request, image_id: str) -> webob.Response:
    """PUT replaces every property with the given ones."""
    _require_old(req)
    body = read_json(req)
    common.validate(METADATA_SCHEMA, body)
    ctx = context_of(req)
    record = _changeable(ctx, image_id)
    return json_response({"metadata": _replace(ctx, record, dict(body["metadata"]))})


def metadata_show(req: webob.Request, image_id: str, key: str) -> webob.Response:
    _require_old(req)
    metadata = metadata_of(_get(context_of(req), image_id))
    if key not in metadata:
        raise exception.NotFound(f"Image metadata item {key} not found.")
    return json_response({"meta": {key: metadata[key]}})


def metadata_update(req: webob.Request, image_id: str, key: str) -> webob.Response:
    _require_old(req)
    body = read_json(req)
    common.validate(META_SCHEMA, body)
    meta = body["meta"]
    if len(meta) > 1:
        raise exception.Invalid("Request body contains too many items")
    if key not in meta:
        raise exception.Invalid("Request body and URI mismatch")
    ctx = context_of(req)
    record = _changeable(ctx, image_id)
    merged = {**metadata_of(record), key: meta[key]}
    return json_response({"meta": {key: _replace(ctx, record, merged)[key]}})


def metadata_delete(req: webob.Request, image_id: str, key: str) -> webob.Response:
    _require_old(req)
    ctx = context_of(req)
    record = _changeable(ctx, image_id)
    metadata = metadata_of(record)
    if key not in metadata:
        raise exception.NotFound(f"Image metadata item {key} not found.")
    services.image.update(ctx, image_id, {}, (key,))
    return empty_response(204)
