"""Security groups: each project's "default" group, read-only."""

from __future__ import annotations

import webob

from transcell.api.network import common
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of


def index(service: NetworkService, req: webob.Request) -> webob.Response:
    groups = service.list_security_groups(context_of(req), common.filters_of(req))
    return common.collection(req, "security_groups", groups)


def show(service: NetworkService, req: webob.Request, group_id: str) -> webob.Response:
    group = service.get_security_group(context_of(req), group_id)
    return common.member(req, "security_group", group)
