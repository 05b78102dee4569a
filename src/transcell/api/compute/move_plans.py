"""POST /os-transcell-move-plans: what a move would do, for one server or a whole cell.

An admin extension (Nova has no such resource): it answers 200 with the
plans and changes nothing. ``transcell move plan`` is its command line.
"""

from __future__ import annotations

import webob

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.flavors import find_flavor
from transcell.api.compute.servers import compute_api
from transcell.move import forecast
from transcell.wsgi.app import context_of, json_response, read_json

RULE = "os_compute_api:os-transcell-move-plans"

SCHEMA = {
    "type": "object",
    "properties": {
        "move_plan": {
            "type": "object",
            "properties": {
                "server_id": {"type": "string", "format": "uuid"},
                "cell": {"type": "string", "minLength": 1, "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "host": {"type": "string", "minLength": 1, "maxLength": 255,
                         "pattern": "^[a-zA-Z0-9-._]*$"},
                "allow_cross_cell": {"type": "boolean"},
                "readdress_ports": {"type": "boolean"},
            },
            "oneOf": [{"required": ["server_id"]}, {"required": ["cell"]}],
            "additionalProperties": False,
        },
    },
    "required": ["move_plan"],
    "additionalProperties": False,
}


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE, {"project_id": ctx.project_id})
    body = read_json(req)
    common.validate(SCHEMA, body)
    wanted = body["move_plan"]
    if "cell" in wanted and ("flavorRef" in wanted or "host" in wanted):
        raise exception.ValidationError(
            field="move_plan", reason="A plan for a whole cell is a cold migration of each "
                                      "server: it takes neither flavorRef nor host.")
    if "flavorRef" in wanted and "host" in wanted:
        raise exception.ValidationError(
            field="move_plan", reason="A resize (flavorRef) picks its own host; give one "
                                      "of flavorRef and host.")
    allow = wanted.get("allow_cross_cell", True)
    readdress = wanted.get("readdress_ports")
    if "cell" in wanted:
        try:
            cells.get_cell(wanted["cell"])
        except exception.NotFound:
            raise exception.Invalid(f"Cell {wanted['cell']} could not be found.") from None
        plans = forecast.plan_cell(ctx, wanted["cell"], allow_cross_cell=allow,
                                   readdress=readdress)
        return json_response({"move_plans": plans})
    cell, server = compute_api.get(ctx, wanted["server_id"])
    flavor = None
    if "flavorRef" in wanted:
        ref = str(wanted["flavorRef"]).rstrip("/").rsplit("/", 1)[-1]
        try:
            flavor = find_flavor(ctx, ref)
        except exception.FlavorNotFound as exc:
            raise exception.Invalid(exc.message) from None
    host = wanted.get("host")
    if host is not None:
        try:
            cells.cell_of_host(host)
        except exception.NotFound:
            raise exception.Invalid(f"Compute host {host} could not be found.") from None
    plan = forecast.plan_server(ctx, server, cell, flavor=flavor, host=host,
                                allow_cross_cell=allow, readdress=readdress)
    return json_response({"move_plans": [plan]})
