"""Server actions: shelve, shelveOffload and unshelve.

Each handler reads the server first (another project's server is a 404, not a
403), enforces its Nova policy rule on the server's owner, validates its body
with Nova's schema for the request's microversion, and leaves the rest to
``compute.shelve_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.servers import compute_api
from transcell.compute.shelve_api import KEEP_ZONE, ShelveAPI
from transcell.context import RequestContext
from transcell.policies import compute_shelve as rules
from transcell.wsgi.app import context_of, empty_response

shelve_api = ShelveAPI(compute_api)

_ZONE = {"type": "string", "minLength": 1, "maxLength": 255}

#: 2.77: an offloaded server may be unshelved into a named availability zone.
UNSHELVE_SCHEMA_277 = {
    "type": ["object", "null"],
    "properties": {"availability_zone": _ZONE},
    "additionalProperties": False,
}

#: 2.91: a host (admin), and a null zone that unpins the server from its zone.
UNSHELVE_SCHEMA_291 = {
    "type": ["object", "null"],
    "properties": {
        "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "host": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9-._]*$"},
    },
    "additionalProperties": False,
}

#: Bodiless actions: ``null`` as Nova documents it, ``{}`` as Tempest sends it.
NO_ARGUMENTS = {"type": ["object", "null"], "additionalProperties": False}


def _authorized(req: webob.Request, server_id: str, rule: str
                ) -> tuple[RequestContext, dict]:
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, rule, _target(server))
    return ctx, server


def _target(server: dict) -> dict:
    return {"project_id": server["project_id"], "user_id": server["user_id"]}


def _shelve(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = _authorized(req, server_id, rules.SHELVE)
    common.validate(NO_ARGUMENTS, body)
    shelve_api.shelve(ctx, server_id)
    return empty_response(202)


def _shelve_offload(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, _ = _authorized(req, server_id, rules.SHELVE_OFFLOAD)
    common.validate(NO_ARGUMENTS, body)
    shelve_api.shelve_offload(ctx, server_id)
    return empty_response(202)


def _unshelve(req: webob.Request, server_id: str, body: Any) -> webob.Response:
    ctx, server = _authorized(req, server_id, rules.UNSHELVE)
    version = api_version(req)
    zone: Any = KEEP_ZONE
    host = None
    if version.matches("2.91"):
        common.validate(UNSHELVE_SCHEMA_291, body)
        args = body or {}
        if "availability_zone" in args:
            zone = args["availability_zone"]
        host = args.get("host")
        if host is not None:
            policy.authorize(ctx, rules.UNSHELVE_TO_HOST, _target(server))
    elif version.matches("2.77"):
        common.validate(UNSHELVE_SCHEMA_277, body)
        if (body or {}).get("availability_zone") is not None:
            zone = body["availability_zone"]
    elif body is not None and not isinstance(body, dict):
        raise exception.Invalid("Invalid input for field/attribute unshelve: the action "
                                "takes no arguments before microversion 2.77.")
    shelve_api.unshelve(ctx, server_id, zone=zone, host=host)
    return empty_response(202)


#: action name -> handler(req, server_id, body_of_the_action); merged by server_actions
ACTIONS: dict[str, Callable[..., webob.Response]] = {
    "shelve": _shelve,
    "shelveOffload": _shelve_offload,
    "unshelve": _unshelve,
}
