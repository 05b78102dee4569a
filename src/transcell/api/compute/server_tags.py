"""/servers/{id}/tags (2.26+): simple string tags on a server, kept in its cell.

Tags are keyed by the instance uuid, so they are copied with the server when
it moves between cells and read wherever its mapping points.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import jsonschema
import webob
from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from transcell import exception
from transcell.api.compute import common
from transcell.api.compute.schemas.servers import TAG
from transcell.compute import vm_states
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.wsgi.app import (
    application_url,
    context_of,
    empty_response,
    json_response,
    read_json,
)

MIN_VERSION = "2.26"
MAX_TAGS = 50

UPDATE_ALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": TAG, "maxItems": MAX_TAGS}},
    "required": ["tags"],
    "additionalProperties": False,
}

#: States in which a server's tags may change.
_TAGGABLE = (vm_states.ACTIVE, "paused", "suspended", vm_states.STOPPED, "shelved",
             "shelved_offloaded")

_RULE = "os_compute_api:os-server-tags:"
# Nova's defaults for these rules, used while policy does not declare them.
_READ_DEFAULT = "project_reader_or_admin"
_WRITE_DEFAULT = "project_member_or_admin"


def _server(req: webob.Request, server_id: str, action: str, rule_default: str
            ) -> common.ServerRef:
    common.require_version(req, MIN_VERSION)
    ctx = context_of(req)
    server = common.get_instance_or_404(ctx, server_id)
    common.authorize_or_fallback(ctx, _RULE + action, rule_default,
                                 {"project_id": server.project_id})
    return server


def _check_state(server: common.ServerRef, what: str) -> None:
    state = server.instance.vm_state
    if state not in _TAGGABLE:
        raise exception.InstanceInvalidState(action=what, instance_uuid=server.uuid,
                                             attr="vm_state", state=state)


def _tags(server: common.ServerRef) -> list[str]:
    with cell_session(server.cell) as s:
        return sorted(s.scalars(select(cm.Tag.tag).where(cm.Tag.resource_id == server.uuid)))


def index(req: webob.Request, server_id: str) -> webob.Response:
    server = _server(req, server_id, "index", _READ_DEFAULT)
    return json_response({"tags": _tags(server)})


def show(req: webob.Request, server_id: str, tag: str) -> webob.Response:
    server = _server(req, server_id, "show", _READ_DEFAULT)
    if tag not in _tags(server):
        raise exception.NotFound(f"Server {server_id} has no tag '{tag}'")
    return empty_response(204)


def update_all(req: webob.Request, server_id: str) -> webob.Response:
    common.require_version(req, MIN_VERSION)
    body = read_json(req)
    common.validate(UPDATE_ALL_SCHEMA, body)
    server = _server(req, server_id, "update_all", _WRITE_DEFAULT)
    _check_state(server, "update tags")
    wanted = set(body["tags"])
    with cell_session(server.cell) as s:
        s.execute(sql_delete(cm.Tag).where(cm.Tag.resource_id == server.uuid,
                                           cm.Tag.tag.not_in(wanted)))
        present = set(s.scalars(select(cm.Tag.tag).where(cm.Tag.resource_id == server.uuid)))
        for tag in sorted(wanted - present):
            s.add(cm.Tag(resource_id=server.uuid, tag=tag))
    return json_response({"tags": sorted(wanted)})


def delete_all(req: webob.Request, server_id: str) -> webob.Response:
    server = _server(req, server_id, "delete_all", _WRITE_DEFAULT)
    _check_state(server, "delete tags")
    with cell_session(server.cell) as s:
        s.execute(sql_delete(cm.Tag).where(cm.Tag.resource_id == server.uuid))
    return empty_response(204)


def update(req: webob.Request, server_id: str, tag: str) -> webob.Response:
    server = _server(req, server_id, "update", _WRITE_DEFAULT)
    _check_state(server, "update tag")
    try:
        jsonschema.validate(tag, TAG)
    except jsonschema.ValidationError as error:
        raise exception.Invalid(f"Tag '{tag}' is invalid. It must be a non empty string "
                                "without characters '/' and ','. Validation error message: "
                                f"{error.message}") from None
    with cell_session(server.cell) as s:
        existing = set(s.scalars(select(cm.Tag.tag).where(cm.Tag.resource_id == server.uuid)))
        if len(existing) >= MAX_TAGS:
            raise exception.Invalid(f"The number of tags exceeded the per-server limit "
                                    f"{MAX_TAGS}")
        if tag in existing:
            return empty_response(204)
        s.add(cm.Tag(resource_id=server.uuid, tag=tag))
    location = (f"{application_url(req)}/v2.1/servers/{server.uuid}/tags/"
                f"{urllib.parse.quote(tag, safe='')}")
    return empty_response(201, headers={"Location": location})


def delete(req: webob.Request, server_id: str, tag: str) -> webob.Response:
    server = _server(req, server_id, "delete", _WRITE_DEFAULT)
    _check_state(server, "delete tag")
    with cell_session(server.cell) as s:
        removed = s.execute(sql_delete(cm.Tag).where(cm.Tag.resource_id == server.uuid,
                                                     cm.Tag.tag == tag)).rowcount
    if not removed:
        raise exception.NotFound(f"Instance {server.uuid} has no tag '{tag}'")
    return empty_response(204)
