"""/os-quota-sets: a project's (or one of its users') limits, their use, and the defaults.

Limits are stored overrides in the API database (``quota``); what a project
uses is counted live in every cell, so a detail view and the check made at a
build agree. Which resources a body names depends on the microversion:
network resources go at 2.36 (Neutron's business), file injection at 2.57.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy, quota
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.microversion import APIVersion
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

MAX_INT = 0x7FFFFFFF

NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
#: Accepted in an old body for compatibility, never stored: nova-network is gone.
LEGACY_IGNORED = ("networks",)

#: One limit: an integer (or its string) from -1 (unlimited) up.
LIMIT = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1,
         "maximum": MAX_INT}


def resources(version: APIVersion) -> list[str]:
    """The resources a quota set names at this microversion."""
    dropped: set[str] = set()
    if version.matches("2.36"):
        dropped.update(NETWORK)
    if version.matches("2.57"):
        dropped.update(FILES)
    return [name for name in quota.RESOURCES if name not in dropped]


def update_schema(wrapper: str, names: list[str], with_force: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {name: LIMIT for name in names}
    if set(NETWORK) <= set(names):
        properties.update({name: LIMIT for name in LEGACY_IGNORED})
    if with_force:
        properties["force"] = common.BOOLEAN
    return {"type": "object",
            "properties": {wrapper: {"type": "object", "properties": properties,
                                     "additionalProperties": False}},
            "required": [wrapper], "additionalProperties": False}


def parse_limits(values: dict[str, Any], names: list[str]) -> dict[str, int]:
    """The body's limits as integers; 400 in Nova's words for one below -1 (a string
    such as "-2" passes the schema's pattern, so it is checked here too)."""
    parsed: dict[str, int] = {}
    for name, value in values.items():
        if name not in names:
            continue
        try:
            number = int(value)
        except ValueError:  # digits past what Python converts
            number = MAX_INT + 1
        if number < -1:
            raise exception.ValidationError(
                f"Invalid input for field/attribute {name}. Value: {value}. "
                f"{number} is less than the minimum of -1")
        if number > MAX_INT:
            raise exception.ValidationError(
                f"Invalid input for field/attribute {name}. Value: {str(value)[:64]}. "
                f"It is greater than the maximum of {MAX_INT}")
        parsed[name] = number
    return parsed


def check_key(kind: str, value: str | None) -> None:
    """A project, user or class name about to be stored: 1 to 255 printable characters
    (a control character, NUL above all, is refused by some databases)."""
    if value is None:
        return
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise exception.Invalid(f"Invalid {kind}: it must be 1 to 255 printable characters.")


def _pick(values: dict[str, int], names: list[str]) -> dict[str, int]:
    return {name: values[name] for name in names}


def _user_id(req: webob.Request) -> str | None:
    return common.single_query(req, "user_id") or None


def _authorize(req: webob.Request, rule: str, project_id: str,
               user_id: str | None = None) -> None:
    target = {"project_id": project_id}
    if user_id:
        target["user_id"] = user_id
    policy.authorize(context_of(req), rule, target)


def show(req: webob.Request, tenant_id: str) -> webob.Response:
    user_id = _user_id(req)
    _authorize(req, "os_compute_api:os-quota-sets:show", tenant_id, user_id)
    names = resources(api_version(req))
    body = {"id": tenant_id, **_pick(quota.limits(tenant_id, user_id), names)}
    return json_response({"quota_set": body})


def detail(req: webob.Request, tenant_id: str) -> webob.Response:
    user_id = _user_id(req)
    _authorize(req, "os_compute_api:os-quota-sets:detail", tenant_id, user_id)
    names = resources(api_version(req))
    allowed = quota.limits(tenant_id, user_id)
    used = quota.in_use(tenant_id, user_id)
    body: dict[str, Any] = {"id": tenant_id}
    for name in names:
        body[name] = {"in_use": used[name], "limit": allowed[name], "reserved": 0}
    return json_response({"quota_set": body})


def defaults(req: webob.Request, tenant_id: str) -> webob.Response:
    _authorize(req, "os_compute_api:os-quota-sets:defaults", tenant_id)
    names = resources(api_version(req))
    body = {"id": tenant_id, **_pick(quota.class_limits(quota.DEFAULT_CLASS), names)}
    return json_response({"quota_set": body})


def _exceeds(limit: int, bound: int) -> bool:
    """``limit`` > ``bound`` with -1 meaning infinity on both sides."""
    inf = float("inf")
    return (inf if limit == quota.UNLIMITED else limit) > \
        (inf if bound == quota.UNLIMITED else bound)


def _validate_limits(project_id: str, user_id: str | None, wanted: dict[str, int]) -> None:
    """A limit may not fall below what is used (the servers are there), nor, for a
    user, rise above the project's own limit."""
    used = quota.in_use(project_id, user_id)
    ceiling = quota.limits(project_id) if user_id else {}
    for name, limit in wanted.items():
        if _exceeds(used[name], limit):
            raise exception.Invalid(
                f"Quota limit {limit} for {name} must be greater than or equal to already "
                f"used and reserved {used[name]}.")
        if user_id and _exceeds(limit, ceiling[name]):
            raise exception.Invalid(
                f"Quota limit {limit} for {name} must be less than or equal to "
                f"{ceiling[name]}.")


def update(req: webob.Request, tenant_id: str) -> webob.Response:
    user_id = _user_id(req)
    body = read_json(req)
    names = resources(api_version(req))
    common.validate(update_schema("quota_set", names, with_force=True), body)
    _authorize(req, "os_compute_api:os-quota-sets:update", tenant_id, user_id)
    check_key("project id", tenant_id)
    check_key("user id", user_id)
    values = body["quota_set"]
    wanted = parse_limits(values, names)
    if not common.is_true(values.get("force", False)):
        _validate_limits(tenant_id, user_id, wanted)
    quota.set_limits(tenant_id, wanted, user_id)
    return json_response({"quota_set": _pick(quota.limits(tenant_id, user_id), names)})


def delete(req: webob.Request, tenant_id: str) -> webob.Response:
    user_id = _user_id(req)
    _authorize(req, "os_compute_api:os-quota-sets:delete", tenant_id, user_id)
    quota.forget_limits(tenant_id, user_id)
    return empty_response(202)
