"""Security groups and their rules: /v2.0/security-groups, /v2.0/security-group-rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webob

from transcell.api.network import access, common
from transcell.context import RequestContext
from transcell.network.exceptions import SecurityGroupNotFound, SecurityGroupRuleNotFound
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, empty_response

GROUP = ("security_group", "security_groups", SecurityGroupNotFound)
RULE = ("security_group_rule", "security_group_rules", SecurityGroupRuleNotFound)


def _target(member: str, body: dict[str, Any]) -> dict[str, Any]:
    return access.target(member, body)


def _load(service: NetworkService, ctx: RequestContext, kind: tuple, item_id: str
          ) -> dict[str, Any]:
    member, _collection, missing = kind
    found = getattr(service, f"get_{member}")(ctx, item_id)
    access.require_visible(ctx, member, _target(member, found), lambda: missing(id=item_id))
    return found


def _index(kind: tuple) -> Callable[..., webob.Response]:
    member, collection, _missing = kind

    def index(service: NetworkService, req: webob.Request) -> webob.Response:
        ctx = context_of(req)
        items = getattr(service, f"list_{collection}")(ctx, common.filters_of(req))
        items = access.visible(ctx, member, items, [_target(member, i) for i in items])
        return common.collection(req, collection, items)
    return index


def _show(kind: tuple) -> Callable[..., webob.Response]:
    member = kind[0]

    def show(service: NetworkService, req: webob.Request, item_id: str) -> webob.Response:
        return common.member(req, member, _load(service, context_of(req), kind, item_id))
    return show


def _create(kind: tuple) -> Callable[..., webob.Response]:
    member = kind[0]

    def create(service: NetworkService, req: webob.Request) -> webob.Response:
        ctx = context_of(req)
        body = common.member_body(req, member)
        wanted = dict(body)
        wanted.setdefault("project_id", body.get("tenant_id") or ctx.project_id)
        access.authorize(ctx, f"create_{member}", _target(member, wanted))
        made = getattr(service, f"create_{member}")(ctx, body)
        return common.member(req, member, made, status=201)
    return create


def _delete(kind: tuple) -> Callable[..., webob.Response]:
    member = kind[0]

    def delete(service: NetworkService, req: webob.Request, item_id: str) -> webob.Response:
        ctx = context_of(req)
        found = _load(service, ctx, kind, item_id)
        access.authorize(ctx, f"delete_{member}", _target(member, found))
        getattr(service, f"delete_{member}")(ctx, item_id)
        return empty_response(204)
    return delete


def update(service: NetworkService, req: webob.Request, item_id: str) -> webob.Response:
    ctx = context_of(req)
    found = _load(service, ctx, GROUP, item_id)
    access.authorize(ctx, "update_security_group", _target("security_group", found))
    body = common.member_body(req, "security_group")
    changed = service.update_security_group(ctx, item_id, body)
    return common.member(req, "security_group", changed)


index, show, create, delete = _index(GROUP), _show(GROUP), _create(GROUP), _delete(GROUP)
rule_index, rule_show = _index(RULE), _show(RULE)
rule_create, rule_delete = _create(RULE), _delete(RULE)
