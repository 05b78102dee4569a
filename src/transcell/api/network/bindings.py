"""Port bindings (Neutron's binding-extended): /v2.0/ports/{port_id}/bindings."""

from __future__ import annotations

import webob

from transcell import exception
from transcell.api.network import access, common, resources
from transcell.network import attributes, scope
from transcell.network.service import NetworkService
from transcell.wsgi.app import context_of, empty_response

#: "status" is transcell-vif's: Neutron makes a new binding active only when the port
#: has no active one; a caller preparing a move may want it INACTIVE regardless
BINDING_KEYS = {"host", "vnic_type", "profile", "status"}
INITIAL_STATUS = {"ACTIVE": True, "INACTIVE": False}


def _authorize(service: NetworkService, req: webob.Request, port_id: str, action: str
               ) -> None:
    """404 for a port the caller cannot see, else ``action`` (admin or service) or 403."""
    ctx = context_of(req)
    _port, target = resources.load(resources.PORTS, service, ctx, port_id)
    access.authorize(ctx, action, target)


def index(service: NetworkService, req: webob.Request, port_id: str) -> webob.Response:
    _authorize(service, req, port_id, "get_port_binding")
    items = service.list_bindings(context_of(req), port_id)
    wanted = scope.normalize(common.filters_of(req))
    return common.collection(req, "bindings",
                             [item for item in items if scope.matches(item, wanted)])


def create(service: NetworkService, req: webob.Request, port_id: str) -> webob.Response:
    _authorize(service, req, port_id, "create_port_binding")
    body = common.member_body(req, "binding")
    unknown = sorted(set(body) - BINDING_KEYS)
    if unknown:
        raise exception.Invalid(
            f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    host = attributes.string(255)("host", body.get("host", ""))
    vnic_type = body.get("vnic_type")
    if vnic_type is not None:
        vnic_type = attributes.choice(*attributes.VNIC_TYPES)("vnic_type", vnic_type)
    profile = attributes.mapping("profile", body["profile"]) if "profile" in body else None
    active = None
    if "status" in body:
        status = attributes.choice(*INITIAL_STATUS)("status", body["status"])
        active = INITIAL_STATUS[status]
    made = service.create_binding(context_of(req), port_id, host, active=active,
                                  vnic_type=vnic_type, profile=profile)
    return common.member(req, "binding", made, status=201)


def show(service: NetworkService, req: webob.Request, port_id: str, host: str
         ) -> webob.Response:
    _authorize(service, req, port_id, "get_port_binding")
    return common.member(req, "binding", service.get_binding(context_of(req), port_id, host))


def activate(service: NetworkService, req: webob.Request, port_id: str, host: str
             ) -> webob.Response:
    _authorize(service, req, port_id, "activate")
    binding = service.activate_binding(context_of(req), port_id, host)
    return common.member(req, "binding", binding)


def delete(service: NetworkService, req: webob.Request, port_id: str, host: str
           ) -> webob.Response:
    _authorize(service, req, port_id, "delete_port_binding")
    service.delete_binding(context_of(req), port_id, host)
    return empty_response(204)
