"""POST /servers/{id}/action: one body key names the action."""

from __future__ import annotations

from collections.abc import Callable

import webob

from transcell import exception, policy
from transcell.api.compute import (
    common,
    image_actions,
    network_proxies,
    power_actions,
    security_groups,
    shelve_actions,
)
from transcell.api.compute.app import api_version
from transcell.api.compute.flavors import find_flavor
from transcell.api.compute.servers import compute_api
from transcell.context import RequestContext
from transcell.wsgi.app import context_of, empty_response, read_json

CROSS_CELL_RULE = "compute:servers:resize:cross_cell"
READDRESS_FIELD = "transcell:readdress_ports"

RESIZE_SCHEMA = {
    "type": "object",
    "properties": {
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        READDRESS_FIELD: {"type": "boolean"},
    },
    "required": ["flavorRef"],
    "additionalProperties": False,
}

MIGRATE_SCHEMA_256 = {
    "type": ["object", "null"],
    "properties": {
        "host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9-._]*$"},
        READDRESS_FIELD: {"type": "boolean"},
    },
    "additionalProperties": False,
}

#: transcell's extension field of resize and migrate bodies (any microversion for resize,
#: 2.56+ for migrate, whose earlier bodies are null): re-address the server's ports when
#: their network segment does not reach the target cell, whatever
#: ``[network] readdress_on_move`` says. Absent: that option decides.
READDRESS_RULE = "compute:servers:move:readdress_ports"


def _authorized(req: webob.Request, server_id: str, rule: str
                ) -> tuple[RequestContext, dict]:
    """The caller's context and the server, once ``rule`` allows the action on it.

    The server is read first, so another project's server is a 404, not a 403;
    the target names its owner as Nova's does.
    """
    ctx, found = _authorized_in_cell(req, server_id, rule)
    return ctx, found[1]


def _authorized_in_cell(req: webob.Request, server_id: str, rule: str
                        ) -> tuple[RequestContext, tuple]:
    """``_authorized``, with the server's cell: a move takes the read as it is."""
    ctx = context_of(req)
    found = compute_api.get(ctx, server_id)
    policy.authorize(ctx, rule, _target(found[1]))
    return ctx, found


def _target(server: dict) -> dict:
    return {"project_id": server["project_id"], "user_id": server["user_id"]}


def _stop(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, _ = _authorized(req, server_id, "os_compute_api:servers:stop")
    compute_api.stop(ctx, server_id)
    return empty_response(202)


def _start(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, _ = _authorized(req, server_id, "os_compute_api:servers:start")
    compute_api.start(ctx, server_id)
    return empty_response(202)


def _resize(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, found = _authorized_in_cell(req, server_id, "os_compute_api:servers:resize")
    server = found[1]
    common.validate(RESIZE_SCHEMA, body)
    flavor_ref = str(body["flavorRef"]).rstrip("/").rsplit("/", 1)[-1]
    try:
        flavor = find_flavor(ctx, flavor_ref)
    except exception.FlavorNotFound as exc:
        raise exception.Invalid(exc.message) from None
    allow = policy.check(ctx, CROSS_CELL_RULE, _target(server))
    disk_config = body.get("OS-DCF:diskConfig")
    compute_api.resize(ctx, server_id, flavor, allow_cross_cell=allow,
                       readdress=_readdress(ctx, server, body),
                       auto_disk_config=None if disk_config is None else disk_config == "AUTO",
                       found=found)
    return empty_response(202)


def _migrate(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, found = _authorized_in_cell(req, server_id,
                                     "os_compute_api:os-migrate-server:migrate")
    server = found[1]
    host = None
    if api_version(req).matches("2.56"):
        common.validate(MIGRATE_SCHEMA_256, body)
        host = (body or {}).get("host")
    if host is not None:
        policy.authorize(ctx, "os_compute_api:os-migrate-server:migrate:host", _target(server))
    allow = policy.check(ctx, CROSS_CELL_RULE, _target(server))
    compute_api.migrate(ctx, server_id, host, allow_cross_cell=allow,
                        readdress=_readdress(ctx, server, body), found=found)
    return empty_response(202)


def _readdress(ctx: RequestContext, server: dict, body) -> bool | None:
    wanted = (body or {}).get(READDRESS_FIELD)
    if wanted is not None:
        policy.authorize(ctx, READDRESS_RULE, _target(server))
    return wanted


def _confirm_resize(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, _ = _authorized(req, server_id, "os_compute_api:servers:confirm_resize")
    compute_api.confirm_resize(ctx, server_id)
    return empty_response(204)


def _revert_resize(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx, _ = _authorized(req, server_id, "os_compute_api:servers:revert_resize")
    compute_api.revert_resize(ctx, server_id)
    return empty_response(202)


ACTIONS: dict[str, Callable[..., webob.Response]] = {
    "os-stop": _stop,
    "os-start": _start,
    "resize": _resize,
    "migrate": _migrate,
    "confirmResize": _confirm_resize,
    "revertResize": _revert_resize,
    **power_actions.ACTIONS,
    **image_actions.ACTIONS,
    **shelve_actions.ACTIONS,
    **security_groups.ACTIONS,
    **network_proxies.ACTIONS,
}


def action(req: webob.Request, server_id: str) -> webob.Response:
    body = read_json(req)
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid("The action body must be an object with exactly one key, "
                                "the action name.")
    name, args = next(iter(body.items()))
    handler = ACTIONS.get(name)
    if handler is None:
        raise exception.Invalid(f"There is no such action: {name}")
    return handler(req, server_id, args)
