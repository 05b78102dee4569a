"""/os-server-external-events: what the network and volume services tell compute.

An administrator's or another service's call, never a user's. Each event is
answered on its own: code 200 when it goes to its server's host, 404 when no
live server has its uuid, 422 when the server has no host yet (nothing to tell),
400 when an event that must name what it is about (``volume-extended``: the
volume; ``power-update``: POWER_ON or POWER_OFF) does not. The answer is 200
when every event was accepted, 207 when some were not, and 404 (nothing sent)
when none was. A malformed body is refused whole (400), before anything is sent.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.compute import external_events as events_api
from transcell.wsgi.app import context_of, json_response, read_json

RULE = "os_compute_api:os-server-external-events:create"


def create_schema(version: Any) -> dict[str, Any]:
    """Nova's body: the names grow with the microversion (2.51, 2.76, 2.82)."""
    names = [name for name, since in events_api.EVENT_NAMES if version.matches(since)]
    return {
        "type": "object",
        "properties": {"events": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "properties": {
                "server_uuid": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "enum": names},
                "status": {"type": "string", "enum": list(events_api.STATUSES)},
                "tag": {"type": "string", "maxLength": 255},
            },
            "required": ["server_uuid", "name"],
            "additionalProperties": False}}},
        "required": ["events"],
        "additionalProperties": False,
    }


def _refusal(event: dict[str, Any]) -> int | None:
    """The code of an event refused for what it says, whatever its server."""
    tag = event.get("tag")
    if event["name"] in events_api.TAG_REQUIRED and tag is None:
        return 400
    if event["name"] == "power-update" and tag not in events_api.POWER_TAGS:
        return 400
    return None


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    # the services calling this act for servers of every project: the rule alone decides
    policy.authorize(ctx, RULE, {})
    body = read_json(req)
    common.validate(create_schema(api_version(req)), body)
    servers = {uuid: events_api.find_server(uuid)
               for uuid in {e["server_uuid"] for e in body["events"]}}
    answered: list[dict[str, Any]] = []
    accepted = []
    for given in body["events"]:
        event = dict(given)
        found = servers[event["server_uuid"]]
        code = 404 if found is None else _refusal(event)
        if code is None and not found[1]["host"]:  # type: ignore[index]
            code = 422
        if code is None:
            cell, server = found  # type: ignore[misc]
            accepted.append((cell, server, {"name": event["name"],
                                            "status": event.get("status", "completed"),
                                            "tag": event.get("tag")}))
            event["status"], event["code"] = "completed", 200
        else:
            event["status"], event["code"] = "failed", code
        answered.append(event)
    if not accepted:
        raise exception.NotFound("No instances found for any event")
    events_api.deliver_events(ctx, accepted)
    status = 200 if len(accepted) == len(answered) else 207
    return json_response({"events": answered}, status=status)
