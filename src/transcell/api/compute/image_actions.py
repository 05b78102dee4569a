"""Server actions: createImage, createBackup and rebuild.

The handlers check the body against Nova's schema for the request's
microversion and the action's policy, then hand over to
``transcell.compute.image_api``; bodies and headers are shaped here:
an image's location (before 2.45) or its id (from 2.45), and the rebuilt
server's body (the update body, grown at 2.54, 2.57, and whole from 2.75).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.schemas.servers import DESCRIPTION, HOSTNAME, METADATA, NAME
from transcell.api.compute.views import servers as view
from transcell.compute import image_api
from transcell.context import RequestContext
from transcell.wsgi.app import context_of, empty_response, json_response

CREATE_IMAGE_RULE = "os_compute_api:servers:create_image"
VOLUME_BACKED_RULE = "os_compute_api:servers:create_image:allow_volume_backed"
BACKUP_RULE = "os_compute_api:os-create-backup"
REBUILD_RULE = "os_compute_api:servers:rebuild"

CREATE_IMAGE_SCHEMA = {
    "type": "object",
    "properties": {"name": NAME, "metadata": METADATA},
    "required": ["name"],
    "additionalProperties": False,
}

CREATE_BACKUP_SCHEMA = {
    "type": "object",
    "properties": {
        "name": NAME,
        "backup_type": {"type": "string"},
        "rotation": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
        "metadata": METADATA,
    },
    "required": ["name", "backup_type", "rotation"],
    "additionalProperties": False,
}

_ACCESS_IP = {"type": "string"}
#: 2.54: a key pair's name, or null to drop the server's key.
_KEY_NAME = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
#: 2.57: base64 user data, at most 64 KiB of it, or null to drop it.
_USER_DATA = {"type": ["string", "null"], "maxLength": 65535}


def rebuild_schema(version: Any) -> dict:
    properties: dict[str, Any] = {
        "imageRef": {"type": "string", "minLength": 1},
        "name": NAME,
        "adminPass": {"type": "string"},
        "metadata": METADATA,
        "preserve_ephemeral": {"type": "boolean"},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "accessIPv4": _ACCESS_IP,
        "accessIPv6": _ACCESS_IP,
        "personality": {"type": "array"},
    }
    if version.matches("2.19"):
        properties["description"] = DESCRIPTION
    if version.matches("2.54"):
        properties["key_name"] = _KEY_NAME
    if version.matches("2.57"):
        properties["user_data"] = _USER_DATA
        properties.pop("personality")
    if version.matches("2.63"):
        properties["trusted_image_certificates"] = {"type": ["array", "null"]}
    if version.matches("2.90"):
        properties["hostname"] = HOSTNAME
    return {"type": "object", "properties": properties, "required": ["imageRef"],
            "additionalProperties": False}


def _authorized(req: webob.Request, server_id: str, rule: str
                ) -> tuple[RequestContext, dict]:
    """Another project's server is a 404 (read first), then the rule on its owner."""
    ctx = context_of(req)
    _, server = image_api._server(ctx, server_id)
    policy.authorize(ctx, rule, _target(server))
    return ctx, server


def _target(server: dict) -> dict:
    return {"project_id": server["project_id"], "user_id": server["user_id"]}


def _image_answer(req: webob.Request, image_id: str | None) -> webob.Response:
    """202 with the image's location before 2.45, its id in the body from 2.45."""
    if api_version(req).matches("2.45"):
        return json_response({"image_id": image_id}, status=202)
    headers = {"Location": f"{req.host_url}/image/v2/images/{image_id}"} if image_id else {}
    return empty_response(202, headers=headers)


def _create_image(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = _authorized(req, server_id, CREATE_IMAGE_RULE)
    common.validate(CREATE_IMAGE_SCHEMA, body)

    def allow_volume_backed(server: dict) -> None:
        policy.authorize(ctx, VOLUME_BACKED_RULE, _target(server))

    image = image_api.snapshot(ctx, server_id, body["name"], body.get("metadata") or {},
                               allow_volume_backed=allow_volume_backed)
    return _image_answer(req, image["id"])


def _create_backup(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = _authorized(req, server_id, BACKUP_RULE)
    common.validate(CREATE_BACKUP_SCHEMA, body)
    rotation = int(body["rotation"])
    image = image_api.snapshot(ctx, server_id, body["name"], body.get("metadata") or {},
                               image_type="backup", backup_type=body["backup_type"],
                               rotation=rotation)
    return _image_answer(req, image["id"] if rotation > 0 or api_version(req).matches(
        "2.45") else None)


def _rebuild(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    from transcell.api.compute.servers import _keypair, access_ip
    ctx, server = _authorized(req, server_id, REBUILD_RULE)
    version = api_version(req)
    common.validate(rebuild_schema(version), body)
    if body.get("trusted_image_certificates"):
        raise exception.Invalid("Trusted image certificates are not supported.")
    if body.get("user_data") is not None:
        try:
            base64.b64decode(body["user_data"], validate=True)
        except (binascii.Error, ValueError):
            raise exception.Invalid("user_data must be base64 encoded.") from None
    given = frozenset(body)
    key_pair = None
    if body.get("key_name") is not None:
        key_pair = _keypair(ctx, body["key_name"])
    rebuilt = image_api.rebuild(
        ctx, server_id, body["imageRef"], name=body.get("name"), metadata=body.get("metadata"),
        preserve_ephemeral=bool(body.get("preserve_ephemeral", False)),
        access_ip_v4=access_ip("accessIPv4", body.get("accessIPv4")),
        access_ip_v6=access_ip("accessIPv6", body.get("accessIPv6")),
        key_pair=key_pair, user_data=body.get("user_data"),
        description=body.get("description"), disk_config=body.get("OS-DCF:diskConfig"),
        hostname=body.get("hostname"), given=given)
    shown = view.detail(req, rebuilt, updated=True)
    shown.pop("OS-EXT-SRV-ATTR:user_data", None)
    if version.matches("2.54"):
        shown["key_name"] = rebuilt["key_name"]
    if version.matches("2.57"):
        shown["user_data"] = (rebuilt.get("system_metadata") or {}).get("user_data")
    shown["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return json_response({"server": shown}, status=202)


#: action name -> handler(req, server_id, body_of_the_action); merged by server_actions
ACTIONS: dict[str, Callable[..., webob.Response]] = {
    "createImage": _create_image,
    "createBackup": _create_backup,
    "rebuild": _rebuild,
}
