"""Server actions: reboot, pause, suspend, lock, os-resetState, forceDelete and restore,
console output, changePassword, rescue.

Each handler reads the server first (another project's server is a 404, not a 403),
then enforces its Nova policy rule on the server's owner, validates its body with
Nova's schema, and leaves the rest to ``compute.power_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.servers import compute_api
from transcell.compute.power_api import PowerAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.wsgi.app import context_of, empty_response, json_response

power_api = PowerAPI(compute_api)

REBOOT_SCHEMA = {
    "type": "object",
    "properties": {"type": {"type": "string",
                            "pattern": "^(SOFT|HARD|Soft|Hard|soft|hard)$"}},
    "required": ["type"],
    "additionalProperties": False,
}

RESET_STATE_SCHEMA = {
    "type": "object",
    "properties": {"state": {"type": "string", "enum": ["active", "error"]}},
    "required": ["state"],
    "additionalProperties": False,
}

LOCK_SCHEMA_273 = {
    "type": ["object", "null"],
    "properties": {"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}

CONSOLE_OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"length": {"type": ["integer", "string", "null"],
                              "pattern": "^-?[0-9]+$", "minimum": -1}},
    "additionalProperties": False,
}

CHANGE_PASSWORD_SCHEMA = {
    "type": "object",
    "properties": {"adminPass": {"type": "string"}},
    "required": ["adminPass"],
    "additionalProperties": False,
}

RESCUE_SCHEMA = {
    "type": ["object", "null"],
    "properties": {"adminPass": {"type": "string"},
                   "rescue_image_ref": {"type": "string"}},
    "additionalProperties": False,
}


def authorized(req: webob.Request, server_id: str, rule: str
                ) -> tuple[RequestContext, dict]:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, rule, _target(server))
    return ctx, server


def _target(server: dict) -> dict:
    return {"project_id": server["project_id"], "user_id": server["user_id"]}


def _reboot(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:servers:reboot")
    common.validate(REBOOT_SCHEMA, body)
    power_api.reboot(ctx, server_id, body["type"].upper())
    return empty_response(202)


def _simple(rule: str, act: Callable[[RequestContext, str], None]
            ) -> Callable[..., webob.Response]:
    """An action with no arguments of its own (its body is null, as Nova sends it)."""
    def handler(req: webob.Request, server_id: str, body: Any) -> webob.Response:
        ctx, _ = authorized(req, server_id, rule)
        act(ctx, server_id)
        return empty_response(202)
    return handler


def _lock(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-lock-server:lock")
    reason = None
    if api_version(req).matches("2.73"):
        common.validate(LOCK_SCHEMA_273, body)
        reason = (body or {}).get("locked_reason")
    power_api.lock(ctx, server_id, reason)
    return empty_response(202)


def _unlock(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, server = authorized(req, server_id, "os_compute_api:os-lock-server:unlock")
    if not power_api.locked_by_caller_side(ctx, server):
        policy.authorize(ctx, "os_compute_api:os-lock-server:unlock:unlock_override",
                         _target(server))
    power_api.unlock(ctx, server_id)
    return empty_response(202)


def _reset_state(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-admin-actions:reset_state")
    common.validate(RESET_STATE_SCHEMA, body)
    power_api.reset_state(ctx, server_id, body["state"])
    return empty_response(202)


def _force_delete(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-deferred-delete:force")
    power_api.force_delete(ctx, server_id)
    return empty_response(202)


def _console_output(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-console-output")
    common.validate(CONSOLE_OUTPUT_SCHEMA, body)
    length = body.get("length")
    if length is not None:
        length = int(length)
        if length < -1:
            raise exception.ValidationError(
                f"Invalid input for field/attribute length. Value: {length}. "
                f"{length} is less than the minimum of -1")
        if length == -1:
            length = None
    return json_response({"output": power_api.console_output(ctx, server_id, length)})


def _change_password(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-admin-password")
    common.validate(CHANGE_PASSWORD_SCHEMA, body)
    power_api.change_password(ctx, server_id, body["adminPass"])
    return empty_response(202)


def _rescue(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = authorized(req, server_id, "os_compute_api:os-rescue")
    common.validate(RESCUE_SCHEMA, body)
    body = body or {}
    image_ref = body.get("rescue_image_ref")
    if image_ref is not None:
        if not common.is_uuid_like(image_ref):
            raise exception.ValidationError(
                f"Invalid input for field/attribute rescue_image_ref. Value: {image_ref}. "
                f"'{image_ref}' is not a 'uuid'")
    # 2.87: a volume-backed server may be rescued (with a stable-rescue image)
    password = power_api.rescue(ctx, server_id, body.get("adminPass"), image_ref,
                                allow_volume_backed=api_version(req).matches("2.87"))
    if not CONF.api.enable_instance_password:
        return json_response({})
    return json_response({"adminPass": password})


ACTIONS: dict[str, Callable[..., webob.Response]] = {
    "reboot": _reboot,
    "pause": _simple("os_compute_api:os-pause-server:pause", power_api.pause),
    "unpause": _simple("os_compute_api:os-pause-server:unpause", power_api.unpause),
    "suspend": _simple("os_compute_api:os-suspend-server:suspend", power_api.suspend),
    "resume": _simple("os_compute_api:os-suspend-server:resume", power_api.resume),
    "lock": _lock,
    "unlock": _unlock,
    "os-resetState": _reset_state,
    "restore": _simple("os_compute_api:os-deferred-delete:restore", power_api.restore),
    "forceDelete": _force_delete,
    "os-getConsoleOutput": _console_output,
    "changePassword": _change_password,
    "rescue": _rescue,
    "unrescue": _simple("os_compute_api:os-unrescue", power_api.unrescue),
}
