"""transcell-port-moves: what a server's move asks of its ports, over HTTP.

The conductor of the distributed layout reaches the network service only
through this API (``transcell.network.http_client``), so the calls
``check_ports_for_host``, ``readdress_port`` and ``restore_port_addresses``
have routes of their own, for administrators and services only.
"""

from __future__ import annotations

import webob

from transcell import exception
from transcell.api.network import access, common
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of

ADMIN_TARGET = {"project_id": "", "tenant_id": ""}


def _body(req: webob.Request, member: str, keys: set[str]) -> dict:
    body = common.member_body(req, member)
    unknown = sorted(set(body) - keys)
    if unknown:
        raise exception.Invalid(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    missing = sorted(keys - set(body))
    if missing:
        raise exception.Invalid(f"Failed to parse request. Required attribute "
                                f"'{missing[0]}' not specified")
    return body


def check(service: NetworkService, req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    access.authorize(ctx, "check_ports_for_host", ADMIN_TARGET)
    body = _body(req, "port_host_check", {"port_ids", "host"})
    plans = service.check_ports_for_host(ctx, body["port_ids"], body["host"])
    return common.member(req, "port_host_check", {"host": body["host"], "ports": plans})


def readdress(service: NetworkService, req: webob.Request, port_id: str) -> webob.Response:
    ctx = context_of(req)
    access.authorize(ctx, "readdress_port", ADMIN_TARGET)
    body = _body(req, "readdress", {"host"})
    return common.member(req, "readdress", service.readdress_port(ctx, port_id, body["host"]))


def restore(service: NetworkService, req: webob.Request, port_id: str) -> webob.Response:
    ctx = context_of(req)
    access.authorize(ctx, "restore_port_addresses", ADMIN_TARGET)
    body = _body(req, "restore_addresses", {"fixed_ips"})
    done = service.restore_port_addresses(ctx, port_id, body["fixed_ips"])
    return common.member(req, "restore_addresses", done)
