"""/os-assisted-volume-snapshots: the volume service asks compute to snapshot (or to
delete a snapshot of) a volume whose file the server's hypervisor is writing.

Only administrators and services call it. The volume is found by the server it
is attached to, in whichever cell that server is; the request goes to that
server's host as a cast, and the answer does not wait for it (Nova's shapes: 200
with ``{"snapshot": {"id", "volumeId"}}``, 204 on delete). As in Nova, a volume
attached nowhere, attached to several servers, or whose server has no host or
is busy is a 400.
"""

from __future__ import annotations

import json
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.compute import external_events as events_api
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

RULE = "os_compute_api:os-assisted-volume-snapshots:"

_NONEMPTY = {"type": "string", "minLength": 1}

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"snapshot": {
        "type": "object",
        "properties": {
            "volume_id": _NONEMPTY,
            "create_info": {
                "type": "object",
                "properties": {"snapshot_id": _NONEMPTY, "type": {"type": "string",
                                                                  "enum": ["qcow2"]},
                               "new_file": _NONEMPTY, "id": _NONEMPTY},
                "required": ["snapshot_id", "type", "new_file"],
                "additionalProperties": False},
        },
        "required": ["volume_id", "create_info"],
        "additionalProperties": False}},
    "required": ["snapshot"],
    "additionalProperties": False,
}


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    # the volume service acts for volumes of every project: the rule alone decides
    policy.authorize(ctx, RULE + "create", {})
    body = read_json(req)
    common.validate(CREATE_SCHEMA, body)
    snapshot = body["snapshot"]
    answer = events_api.volume_snapshot_create(ctx, snapshot["volume_id"],
                                               snapshot["create_info"])
    return json_response({"snapshot": answer})


def _delete_info(req: webob.Request) -> dict[str, Any]:
    """``?delete_info=<JSON object with volume_id>``; from 2.75 nothing else is allowed."""
    if api_version(req).matches("2.75"):
        common.reject_unknown_query(req, ("delete_info",))
    values = req.GET.getall("delete_info")
    if not values:
        raise exception.Invalid("delete_info must be given (a JSON object with volume_id).")
    try:
        info = json.loads(values[-1])
    except ValueError as error:
        raise exception.Invalid(f"delete_info is not JSON: {error}") from None
    if not isinstance(info, dict) or not isinstance(info.get("volume_id"), str) \
            or not info["volume_id"]:
        raise exception.Invalid("delete_info must be a JSON object naming a volume_id.")
    return info


def delete(req: webob.Request, snapshot_id: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE + "delete", {})
    info = _delete_info(req)
    events_api.volume_snapshot_delete(ctx, info["volume_id"], snapshot_id, info)
    return empty_response(204)
