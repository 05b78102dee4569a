"""Security groups: each project's "default" group, read-only."""

from __future__ import annotations

import webob

from transcell.api.network import access, common
from transcell.network.exceptions import SecurityGroupNotFound
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of


def index(service: NetworkService, req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    groups = service.list_security_groups(ctx, common.filters_of(req))
    groups = access.visible(ctx, "security_group", groups,
                            [access.target("security_group", group) for group in groups])
    return common.collection(req, "security_groups", groups)


def show(service: NetworkService, req: webob.Request, group_id: str) -> webob.Response:
    ctx = context_of(req)
    group = service.get_security_group(ctx, group_id)
    access.require_visible(ctx, "security_group", access.target("security_group", group),
                           lambda: SecurityGroupNotFound(id=group_id))
    return common.member(req, "security_group", group)
