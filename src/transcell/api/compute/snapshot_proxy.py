"""Nova's volume snapshot proxy: ``/os-snapshots`` (list, detail, show, create, delete),
served until 2.36 when Nova dropped it and clients went to the volume API.

As with ``/os-volumes``, every call goes through the volume client with the
caller's context, so the volume service decides visibility and Cinder's rules
(``force`` for an in-use volume); the views are Nova's camel-cased ones.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception
from transcell.api.compute.common import validate
from transcell.api.compute.volume_proxy import _authorize, _page
from transcell.registry import services
from transcell.wsgi.app import empty_response, json_response, read_json

CREATE_SCHEMA = {
    "type": "object",
    "properties": {"snapshot": {
        "type": "object",
        "properties": {
            "volume_id": {"type": "string", "minLength": 1},
            "force": {"type": ["boolean", "string"],
                      "enum": [True, False, "True", "False", "true", "false", "1", "0",
                               "yes", "no", "on", "off", "t", "f", "y", "n"]},
            "display_name": {"type": ["string", "null"], "maxLength": 255},
            "display_description": {"type": ["string", "null"], "maxLength": 255},
        },
        "required": ["volume_id"],
        "additionalProperties": False,
    }},
    "required": ["snapshot"],
    "additionalProperties": False,
}
_TRUE = {"true", "1", "yes", "on", "t", "y"}


def _view(snap: dict[str, Any]) -> dict[str, Any]:
    return {"id": snap["id"], "volumeId": snap["volume_id"], "status": snap["status"],
            "size": snap["size"], "createdAt": snap.get("created_at"),
            "displayName": snap.get("name"), "displayDescription": snap.get("description")}


def _listing(req: webob.Request, action: str) -> webob.Response:
    ctx = _authorize(req, f"snapshots:{action}")
    found = services.volume.list_snapshots(ctx)
    return json_response({"snapshots": [_view(s) for s in _page(req, found)]})


def index(req: webob.Request) -> webob.Response:
    return _listing(req, "list")


def detail(req: webob.Request) -> webob.Response:
    return _listing(req, "detail")


def show(req: webob.Request, snapshot_id: str) -> webob.Response:
    ctx = _authorize(req, "snapshots:show")
    return json_response({"snapshot": _view(services.volume.get_snapshot(ctx, snapshot_id))})


def create(req: webob.Request) -> webob.Response:
    ctx = _authorize(req, "snapshots:create")
    body = read_json(req)
    validate(CREATE_SCHEMA, body)
    wanted = body["snapshot"]
    force = str(wanted.get("force", False)).lower() in _TRUE
    try:
        services.volume.get(ctx, wanted["volume_id"])
    except exception.NotFound:
        raise exception.NotFound(f"Volume {wanted['volume_id']} could not be "
                                 "found.") from None
    made = services.volume.create_snapshot(
        ctx, wanted["volume_id"], name=wanted.get("display_name"),
        description=wanted.get("display_description"), force=force)
    return json_response({"snapshot": _view(made)})


def delete(req: webob.Request, snapshot_id: str) -> webob.Response:
    ctx = _authorize(req, "snapshots:delete")
    services.volume.delete_snapshot(ctx, snapshot_id)
    return empty_response(202)
