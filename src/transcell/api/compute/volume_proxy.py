"""Nova's volume proxy: ``/os-volumes`` (list, detail, show, create, delete), served
until 2.36 when Nova dropped it and clients went to the volume API.

Everything goes through the volume client (``services.volume``) with the
caller's context, so the volume service's visibility and ownership decide as
they do through its own API; the views are Nova's camel-cased ones, with the
``[{}]`` Nova shows for a volume attached nowhere.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute.app import api_version
from transcell.api.compute.common import validate
from transcell.registry import services
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

GONE = "2.36"
RULE = "os_compute_api:os-volumes:%s"

CREATE_SCHEMA = {
    "type": "object",
    "properties": {"volume": {
        "type": "object",
        "properties": {
            "volume_type": {"type": ["string", "null"]},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "snapshot_id": {"type": ["string", "null"]},
            "size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
            "availability_zone": {"type": ["string", "null"]},
            "display_name": {"type": ["string", "null"], "maxLength": 255},
            "display_description": {"type": ["string", "null"], "maxLength": 255},
        },
        "required": ["size"],
        "additionalProperties": False,
    }},
    "required": ["volume"],
    "additionalProperties": False,
}


def _authorize(req: webob.Request, action: str):
    if api_version(req).matches(GONE):
        raise exception.NotFound("The resource could not be found.")
    ctx = context_of(req)
    policy.authorize(ctx, RULE % action, {"project_id": ctx.project_id})
    return ctx


def _view(volume: dict[str, Any], detail: bool = True) -> dict[str, Any]:
    attachments = [{"id": a.get("attachment_id") or a["id"], "volumeId": volume["id"],
                    "serverId": a.get("server_id"), "device": a.get("device")}
                   for a in volume.get("attachments") or []]
    view: dict[str, Any] = {
        "id": volume["id"], "status": volume["status"], "size": volume["size"],
        "availabilityZone": volume.get("availability_zone") or "",
        "createdAt": volume.get("created_at"),
        "attachments": [{k: v for k, v in a.items() if v is not None}
                        for a in attachments] or [{}],
        "displayName": volume.get("name"), "displayDescription": volume.get("description"),
        "volumeType": volume.get("volume_type"), "snapshotId": volume.get("snapshot_id"),
        "metadata": volume.get("metadata") or {},
    }
    return view


def _page(req: webob.Request, items: list[Any]) -> list[Any]:
    offset, limit = req.GET.get("offset"), req.GET.get("limit")
    if offset is not None:
        if not offset.isdigit():
            raise exception.Invalid(f"offset param must be an integer, not {offset}")
        items = items[int(offset):]
    if limit is not None:
        if not limit.isdigit():
            raise exception.Invalid(f"limit param must be an integer, not {limit}")
        items = items[:int(limit)]
    return items


def no_id(req: webob.Request) -> webob.Response:
    """``/os-volumes/`` with the id left out: Nova's router finds no volume there."""
    _authorize(req, "show")
    raise exception.NotFound("The resource could not be found.")


def index(req: webob.Request) -> webob.Response:
    if req.path_info.endswith("/"):
        return no_id(req)
    ctx = _authorize(req, "list")
    return json_response({"volumes": [_view(v) for v in
                                      _page(req, services.volume.list(ctx))]})


def detail(req: webob.Request) -> webob.Response:
    ctx = _authorize(req, "detail")
    return json_response({"volumes": [_view(v) for v in
                                      _page(req, services.volume.list(ctx))]})


def show(req: webob.Request, volume_id: str) -> webob.Response:
    ctx = _authorize(req, "show")
    return json_response({"volume": _view(services.volume.get(ctx, volume_id))})


def create(req: webob.Request) -> webob.Response:
    ctx = _authorize(req, "create")
    body = read_json(req)
    validate(CREATE_SCHEMA, body)
    wanted = body["volume"]
    size = int(wanted["size"])
    if size < 1:
        raise exception.Invalid("Invalid input for field/attribute size. Value: "
                                f"{wanted['size']}. {size} is less than the minimum of 1")
    made = services.volume.create(
        ctx, size=size, name=wanted.get("display_name"),
        description=wanted.get("display_description"),
        volume_type=wanted.get("volume_type"),
        availability_zone=wanted.get("availability_zone"),
        metadata=wanted.get("metadata"), snapshot_id=wanted.get("snapshot_id") or None)
    return json_response({"volume": _view(made)})


def delete(req: webob.Request, volume_id: str) -> webob.Response:
    ctx = _authorize(req, "delete")
    services.volume.delete(ctx, volume_id)
    return empty_response(202)
