"""add_router_interface and remove_router_interface: PUT on a router, body unwrapped.

Neutron answers both with the interface itself (router, port and subnet ids),
not wrapped in a member key; the router's ``add_router_interface`` or
``remove_router_interface`` rule decides, after the router is found visible.
"""

from __future__ import annotations

import webob

from transcell.api.network import access, resources
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, json_response, read_json


def _authorized(service: NetworkService, req: webob.Request, router_id: str,
                action: str) -> None:
    ctx = context_of(req)
    _found, target = resources.load(resources.ROUTERS, service, ctx, router_id)
    access.authorize(ctx, action, target)


def add_interface(service: NetworkService, req: webob.Request, router_id: str
                  ) -> webob.Response:
    _authorized(service, req, router_id, "add_router_interface")
    body = read_json(req)
    return json_response(service.add_router_interface(context_of(req), router_id, body))


def remove_interface(service: NetworkService, req: webob.Request, router_id: str
                     ) -> webob.Response:
    _authorized(service, req, router_id, "remove_router_interface")
    body = read_json(req)
    return json_response(service.remove_router_interface(context_of(req), router_id, body))
