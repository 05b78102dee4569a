"""/servers/{id}/os-volume_attachments: the volumes a server has, attached and detached.

An attachment is named by its volume's id in the URL, as in Nova. The list
and show read the server's block device mappings in its cell; attach and
detach go through ``compute.volumes`` (reserve here, connect on the host).
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.schemas import volume_attachments as schema
from transcell.api.compute.views import volume_attachments as view
from transcell.compute import bdm as bdms
from transcell.compute import volumes
from transcell.compute.api import API
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

compute_api = API()

RULE = "os_compute_api:os-volumes-attachments:"


def _server(req: webob.Request, server_id: str, action: str) -> tuple[Any, dict]:
    ctx = context_of(req)
    cell, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, RULE + action, {"project_id": server["project_id"]})
    return cell, server


def _offset_and_limit(req: webob.Request) -> tuple[int, int]:
    keys = schema.index_query_keys(api_version(req))
    if keys is not None:
        common.reject_unknown_query(req, keys)
    offset, limit = 0, common.MAX_LIMIT
    for name in ("offset", "limit"):
        if name in req.GET:
            try:
                value = int(req.GET[name])
            except ValueError:
                raise exception.Invalid(f"{name} param must be an integer") from None
            if value < 0:
                raise exception.Invalid(f"{name} param must be positive")
            if name == "offset":
                offset = value
            else:
                limit = min(value, common.MAX_LIMIT)
    return offset, limit


def index(req: webob.Request, server_id: str) -> webob.Response:
    cell, server = _server(req, server_id, "index")
    offset, limit = _offset_and_limit(req)
    version = api_version(req)
    listed = bdms.list_for(cell, server["uuid"])[offset:offset + limit]
    return json_response({"volumeAttachments": [view.attachment(version, b) for b in listed
                                                if b["volume_id"]]})


def show(req: webob.Request, server_id: str, volume_id: str) -> webob.Response:
    cell, server = _server(req, server_id, "show")
    mapping = bdms.get_by_volume(cell, server["uuid"], volume_id)
    return json_response({"volumeAttachment": view.attachment(api_version(req), mapping)})


def create(req: webob.Request, server_id: str) -> webob.Response:
    version = api_version(req)
    body = read_json(req)
    common.validate(schema.create(version), body)
    cell, server = _server(req, server_id, "create")
    fields = body["volumeAttachment"]
    mapping = volumes.attach(
        context_of(req), cell, server, fields["volumeId"], device=fields.get("device"),
        tag=fields.get("tag"),
        delete_on_termination=common.parse_bool(fields.get("delete_on_termination", False)))
    return json_response({"volumeAttachment": view.attachment(version, mapping, created=True)})


def update(req: webob.Request, server_id: str, volume_id: str) -> webob.Response:
    """Below 2.85 a PUT only ever swapped volumes; from 2.85 it updates the attachment in
    place, and swaps only when the body names another volume (swap needs the admin rule)."""
    ctx = context_of(req)
    version = api_version(req)
    body = read_json(req)
    common.validate(schema.update(version), body)
    cell, server = compute_api.get(ctx, server_id)
    fields = dict(body["volumeAttachment"])
    only_swap = not version.matches("2.85")
    if only_swap or fields["volumeId"] != volume_id:
        # Cinder calls this for servers of any project: the rule alone decides
        policy.authorize(ctx, RULE + "swap", {})
    else:
        policy.authorize(ctx, RULE + "update", {"project_id": server["project_id"]})
    if not only_swap:
        if "delete_on_termination" in fields:
            fields["delete_on_termination"] = common.parse_bool(
                fields["delete_on_termination"])
        volumes.update(ctx, cell, server, volume_id, fields)
    if only_swap or fields["volumeId"] != volume_id:
        volumes.swap(ctx, server, volume_id, fields["volumeId"])
    return empty_response(202)


def delete(req: webob.Request, server_id: str, volume_id: str) -> webob.Response:
    cell, server = _server(req, server_id, "delete")
    volumes.detach(context_of(req), cell, server, volume_id)
    return empty_response(202)
