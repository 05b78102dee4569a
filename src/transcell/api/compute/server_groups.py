"""/os-server-groups: create, list, show and delete server groups.

The body changes at 2.64 (one ``policy`` and its ``rules`` instead of a
``policies`` list and ``metadata``); 2.13 adds the owner. Placement of the
members is the scheduler's business (``transcell.scheduler.groups``).
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.schemas import server_groups as schema
from transcell.compute import server_groups as groups
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

_RULE = "os_compute_api:os-server-groups:"
OWNER_VERSION = "2.13"
#: from 2.75 unknown query parameters are refused
STRICT_QUERY_VERSION = "2.75"


def view(req: webob.Request, group: groups.Group) -> dict[str, Any]:
    version = api_version(req)
    body: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if version.matches(schema.POLICY_VERSION):
        body["policy"] = group.policy
        body["rules"] = dict(group.rules)
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    body["members"] = list(group.members)
    if version.matches(OWNER_VERSION):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


def _rules(policy_name: str, rules: dict[str, Any] | None) -> dict[str, Any]:
    if not rules:
        return {}
    if policy_name != groups.ANTI_AFFINITY:
        raise exception.Invalid("Only anti-affinity policy supports rules.")
    result: dict[str, Any] = {}
    if "max_server_per_host" in rules:
        value = rules["max_server_per_host"]
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            raise exception.ValidationError(
                f"Invalid input for field/attribute max_server_per_host. Value: {value}. "
                f"{value!r} is less than the minimum of 1")
        result["max_server_per_host"] = number
    return result


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    version = api_version(req)
    body = read_json(req)
    common.validate(schema.create(version), body)
    policy.authorize(ctx, _RULE + "create", {"project_id": ctx.project_id,
                                             "user_id": ctx.user_id})
    fields = body["server_group"]
    if version.matches(schema.POLICY_VERSION):
        policy_name = fields["policy"]
        rules = _rules(policy_name, fields.get("rules"))
    else:
        policy_name, rules = fields["policies"][0], {}
    group = groups.create(ctx, fields["name"], policy_name, rules)
    return json_response({"server_group": view(req, group)})


def index(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    version = api_version(req)
    if version.matches(STRICT_QUERY_VERSION):
        common.reject_unknown_query(req, ("all_projects", "limit", "offset"))
    policy.authorize(ctx, _RULE + "index", {"project_id": ctx.project_id})
    project: str | None = ctx.project_id
    if "all_projects" in req.GET:
        wanted = common.query_bool(req, "all_projects") if version.matches(
            STRICT_QUERY_VERSION) else common.is_true(req.GET["all_projects"])
        if wanted and policy.check(ctx, _RULE + "index:all_projects",
                                   {"project_id": ctx.project_id}):
            project = None
    found = groups.list_groups(project)
    offset = _non_negative(req, "offset", 0)
    limit = _non_negative(req, "limit", common.MAX_LIMIT)
    page = found[offset:offset + min(limit, common.MAX_LIMIT)]
    return json_response({"server_groups": [view(req, g) for g in page]})


def _non_negative(req: webob.Request, name: str, default: int) -> int:
    if name not in req.GET:
        return default
    value = req.GET[name]
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise exception.ValidationError(
            f"Invalid input for query parameters {name}. Value: {value}. '{value}' does not "
            "match '^[0-9]*$'")
    return number


def show(req: webob.Request, group_id: str) -> webob.Response:
    ctx = context_of(req)
    group = groups.get(group_id)
    policy.authorize(ctx, _RULE + "show", {"project_id": group.project_id})
    return json_response({"server_group": view(req, group)})


def delete(req: webob.Request, group_id: str) -> webob.Response:
    ctx = context_of(req)
    group = groups.get(group_id)
    policy.authorize(ctx, _RULE + "delete", {"project_id": group.project_id})
    groups.delete_group(group.uuid)
    return empty_response(204)
