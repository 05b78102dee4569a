"""Nova's network proxies: ``os-networks`` and ``os-tenant-networks`` (until 2.36,
when Nova dropped them and clients went to the network API), and a server's
addresses on one network (``/servers/{id}/ips/{network}``).

The networks come from the network service with the caller's context, so the
network service's own visibility decides what each caller sees; the views are
the ones Nova builds from Neutron networks (a label, an id, and the fields only
nova-network ever filled, as null).
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception, policy
from transcell.api.compute.app import api_version
from transcell.api.compute.views import servers as server_view
from transcell.compute.api import API
from transcell.registry import services
from transcell.wsgi.app import context_of, empty_response, json_response

#: The first microversion without the proxies.
GONE = "2.36"

#: os-networks keys only nova-network filled; Nova shows them null for Neutron networks.
_NOVA_NETWORK_FIELDS = (
    "bridge", "bridge_interface", "broadcast", "cidr", "cidr_v6", "created_at", "deleted",
    "deleted_at", "dhcp_server", "dhcp_start", "dns1", "dns2", "enable_dhcp", "gateway",
    "gateway_v6", "host", "injected", "mtu", "multi_host", "netmask", "netmask_v6",
    "priority", "project_id", "rxtx_base", "share_address", "updated_at", "vlan",
    "vpn_private_address", "vpn_public_address", "vpn_public_port")

compute_api = API()


def _require_old(req: webob.Request) -> None:
    if api_version(req).matches(GONE):
        raise exception.NotFound("The resource could not be found.")


def _network_view(net: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = dict.fromkeys(_NOVA_NETWORK_FIELDS)
    view.update({"id": net["id"], "label": net.get("name")})
    return view


def _tenant_network_view(net: dict[str, Any]) -> dict[str, Any]:
    return {"id": net["id"], "label": net.get("name"), "cidr": None}


def _networks(req: webob.Request, rule: str) -> list[dict[str, Any]]:
    _require_old(req)
    ctx = context_of(req)
    policy.authorize(ctx, rule, {"project_id": ctx.project_id})
    return services.network.list_networks(ctx)


def _network(req: webob.Request, rule: str, network_id: str) -> dict[str, Any]:
    _require_old(req)
    ctx = context_of(req)
    policy.authorize(ctx, rule, {"project_id": ctx.project_id})
    try:
        return services.network.get_network(ctx, network_id)
    except exception.NotFound:
        raise exception.NetworkNotFound(network_id=network_id) from None


def networks_index(req: webob.Request) -> webob.Response:
    nets = _networks(req, "os_compute_api:os-networks:list")
    return json_response({"networks": [_network_view(n) for n in nets]})


def networks_show(req: webob.Request, network_id: str) -> webob.Response:
    net = _network(req, "os_compute_api:os-networks:view", network_id)
    return json_response({"network": _network_view(net)})


def tenant_networks_index(req: webob.Request) -> webob.Response:
    nets = _networks(req, "os_compute_api:os-tenant-networks:list")
    return json_response({"networks": [_tenant_network_view(n) for n in nets]})


def tenant_networks_show(req: webob.Request, network_id: str) -> webob.Response:
    net = _network(req, "os_compute_api:os-tenant-networks:show", network_id)
    return json_response({"network": _tenant_network_view(net)})


def server_ips_show(req: webob.Request, server_id: str, network_label: str) -> webob.Response:
    """The server's addresses on the network of that name; 404 when it has none there."""
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:ips:show", {"project_id": server["project_id"]})
    addresses = server_view.addresses(server, extended=False)
    if network_label not in addresses:
        raise exception.NotFound("Instance is not a member of specified network")
    return json_response({network_label: addresses[network_label]})


def _inject_network_info(req: webob.Request, server_id: str, args: Any) -> webob.Response:
    """Nova asks the server's host to write the network configuration into the guest
    again; transcell's guests take theirs from the ports at every boot, so there is
    nothing to rewrite: the action is accepted for an administrator and does nothing."""
    ctx = context_of(req)
    _, server = compute_api.get(ctx, server_id)
    policy.authorize(ctx, "os_compute_api:os-admin-actions:inject_network_info",
                     {"project_id": server["project_id"]})
    return empty_response(202)


ACTIONS = {"injectNetworkInfo": _inject_network_info}
