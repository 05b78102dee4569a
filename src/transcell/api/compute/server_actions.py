"""POST /servers/{id}/action: one body key names the action."""

from __future__ import annotations

from collections.abc import Callable

import webob

from transcell import exception, policy
from transcell.api.compute.servers import compute_api
from transcell.wsgi.app import context_of, empty_response, read_json


def _stop(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:servers:stop", {"project_id": server["project_id"]})
    compute_api.stop(ctx, server_id)
    return empty_response(202)


def _start(req: webob.Request, server_id: str, body) -> webob.Response:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:servers:start", {"project_id": server["project_id"]})
    compute_api.start(ctx, server_id)
    return empty_response(202)


ACTIONS: dict[str, Callable[..., webob.Response]] = {
    "os-stop": _stop,
    "os-start": _start,
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
