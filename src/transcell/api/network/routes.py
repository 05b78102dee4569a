"""The Neutron v2.0 API of transcell: every URL it serves, in one table."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import webob

from transcell.api.network import (
    agents,
    bindings,
    bulk,
    port_moves,
    resources,
    routers,
    security_groups,
    tags,
    versions,
)
from transcell.api.network.faults import format_error, neutron_faults
from transcell.network.service import NetworkService
from transcell.wsgi.app import Authenticator, JSONApp

Handler = Callable[..., webob.Response]


class NetworkAPI(JSONApp):
    """Discovery is open; everything else needs a token."""

    public_templates = frozenset({"/", "/v2.0"})


def route_table(service: NetworkService) -> dict[str, dict[str, Handler]]:
    def bind(handler: Callable[..., webob.Response], *args: Any) -> Handler:
        return neutron_faults(partial(handler, *args))

    def crud(resource: resources.Resource) -> dict[str, dict[str, Handler]]:
        create = bulk.create if resource.collection in bulk.BULK else resources.create
        return {
            f"/v2.0/{resource.collection}": {
                "GET": bind(resources.index, resource, service),
                "POST": bind(create, resource, service),
            },
            f"/v2.0/{resource.collection}/{{resource_id}}": {
                "GET": bind(resources.show, resource, service),
                "PUT": bind(resources.update, resource, service),
                "DELETE": bind(resources.delete, resource, service),
            },
        }

    return {
        "/": {"GET": bind(versions.root)},
        "/v2.0": {"GET": bind(versions.v2_index)},
        "/v2.0/extensions": {"GET": bind(versions.extensions)},
        "/v2.0/extensions/{alias}": {"GET": bind(versions.extension)},
        "/v2.0/agents": {"GET": bind(agents.index, service)},
        **crud(resources.NETWORKS),
        **crud(resources.SUBNETS),
        **crud(resources.PORTS),
        **crud(resources.SEGMENTS),
        **crud(resources.ROUTERS),
        **crud(resources.SUBNETPOOLS),
        "/v2.0/routers/{router_id}/add_router_interface": {
            "PUT": bind(routers.add_interface, service),
        },
        "/v2.0/routers/{router_id}/remove_router_interface": {
            "PUT": bind(routers.remove_interface, service),
        },
        "/v2.0/ports/{port_id}/bindings": {
            "GET": bind(bindings.index, service),
            "POST": bind(bindings.create, service),
        },
        "/v2.0/ports/{port_id}/bindings/{host}": {
            "GET": bind(bindings.show, service),
            "DELETE": bind(bindings.delete, service),
        },
        "/v2.0/ports/{port_id}/bindings/{host}/activate": {
            "PUT": bind(bindings.activate, service),
        },
        "/v2.0/transcell/port-host-checks": {"POST": bind(port_moves.check, service)},
        "/v2.0/ports/{port_id}/readdress": {"PUT": bind(port_moves.readdress, service)},
        "/v2.0/ports/{port_id}/restore_addresses": {
            "PUT": bind(port_moves.restore, service),
        },
        "/v2.0/security-groups": {
            "GET": bind(security_groups.index, service),
            "POST": bind(security_groups.create, service),
        },
        "/v2.0/security-groups/{item_id}": {
            "GET": bind(security_groups.show, service),
            "PUT": bind(security_groups.update, service),
            "DELETE": bind(security_groups.delete, service),
        },
        "/v2.0/security-group-rules": {
            "GET": bind(security_groups.rule_index, service),
            "POST": bind(security_groups.rule_create, service),
        },
        "/v2.0/security-group-rules/{item_id}": {
            "GET": bind(security_groups.rule_show, service),
            "DELETE": bind(security_groups.rule_delete, service),
        },
        "/v2.0/{collection}/{resource_id}/tags": {
            "GET": bind(tags.index, service),
            "PUT": bind(tags.replace, service),
            "DELETE": bind(tags.clear, service),
        },
        "/v2.0/{collection}/{resource_id}/tags/{tag}": {
            "GET": bind(tags.check, service),
            "PUT": bind(tags.add, service),
            "DELETE": bind(tags.remove, service),
        },
    }


def make_app(service: NetworkService, authenticate: Authenticator | None) -> NetworkAPI:
    """The WSGI app; ``authenticate(req) -> RequestContext`` is the deployment's identity."""
    return NetworkAPI(route_table(service), authenticate, format_error)
