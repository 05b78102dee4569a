"""Routers through the Neutron API: CRUD, interfaces by subnet and by port, the 409s.

Routers are records only (no data plane); what is checked is what a Neutron
client reads back and which changes are refused.
"""

from __future__ import annotations

import pytest

READER = "rita:proj-a:reader"


def _net_subnet(client, cidr: str = "10.20.0.0/24", **subnet) -> tuple[dict, dict]:
    net = client("POST", "/v2.0/networks", {"network": {"name": "rnet"}}).json["network"]
    sub = client("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4, **subnet}})
    assert sub.status_int == 201, sub.text
    return net, sub.json["subnet"]


def _router(client, **body) -> dict:
    resp = client("POST", "/v2.0/routers", {"router": {"name": "r1", **body}})
    assert resp.status_int == 201, resp.text
    return resp.json["router"]


def _error(resp, status: int, kind: str | None = None) -> dict:
    assert resp.status_int == status, resp.text
    error = resp.json["NeutronError"]
    if kind is not None:
        assert error["type"] == kind, error
    return error


def test_router_crud(alice):
    router = _router(alice, admin_state_up=False, external_gateway_info={},
                     description="edge")
    assert router["admin_state_up"] is False
    assert router["external_gateway_info"] is None
    assert router["project_id"] == "proj-a"
    assert router["description"] == "edge" and router["tags"] == []
    path = f"/v2.0/routers/{router['id']}"
    assert alice("GET", path).json["router"]["name"] == "r1"
    changed = alice("PUT", path, {"router": {"name": "r2", "admin_state_up": True}})
    assert changed.json["router"]["name"] == "r2"
    assert changed.json["router"]["admin_state_up"] is True
    assert changed.json["router"]["revision_number"] > router["revision_number"]
    listed = alice("GET", "/v2.0/routers?name=r2").json["routers"]
    assert [r["id"] for r in listed] == [router["id"]]
    assert alice("GET", "/v2.0/routers?name=r1").json["routers"] == []
    assert alice("DELETE", path).status_int == 204
    _error(alice("GET", path), 404, "RouterNotFound")
    _error(alice("DELETE", path), 404, "RouterNotFound")


def test_gateway_must_be_an_external_network(alice, admin):
    net, _sub = _net_subnet(alice)
    error = _error(alice("POST", "/v2.0/routers", {"router": {
        "name": "gw", "external_gateway_info": {"network_id": net["id"]}}}), 400)
    assert "not an external network" in error["message"]
    assert alice("GET", "/v2.0/routers").json["routers"] == []
    ext = admin("POST", "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}}).json["network"]
    router = _router(alice, external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"] == {
        "network_id": ext["id"], "enable_snat": True, "external_fixed_ips": []}
    cleared = alice("PUT", f"/v2.0/routers/{router['id']}",
                    {"router": {"external_gateway_info": None}}).json["router"]
    assert cleared["external_gateway_info"] is None


def test_interface_by_subnet_takes_the_gateway_address(alice):
    net, sub = _net_subnet(alice)
    router = _router(alice)
    resp = alice("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": sub["id"]})
    assert resp.status_int == 200, resp.text
    info = resp.json
    assert info["id"] == router["id"] and info["subnet_id"] == sub["id"]
    assert info["subnet_ids"] == [sub["id"]] and info["network_id"] == net["id"]
    port = alice("GET", f"/v2.0/ports/{info['port_id']}").json["port"]
    assert port["device_id"] == router["id"]
    assert port["device_owner"] == "network:router_interface"
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.20.0.1"}]
    assert port["status"] == "ACTIVE"
    listed = alice("GET", f"/v2.0/ports?device_id={router['id']}").json["ports"]
    assert [p["id"] for p in listed] == [info["port_id"]]
    # the same subnet twice is a 400, and nothing more is made
    _error(alice("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": sub["id"]}), 400, "BadRequest")
    assert len(alice("GET", f"/v2.0/ports?device_id={router['id']}").json["ports"]) == 1
    removed = alice("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                    {"subnet_id": sub["id"]})
    assert removed.status_int == 200 and removed.json["port_id"] == info["port_id"]
    _error(alice("GET", f"/v2.0/ports/{info['port_id']}"), 404)
    _error(alice("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                 {"subnet_id": sub["id"]}), 404, "RouterInterfaceNotFoundForSubnet")


def test_interface_by_port(alice):
    net, sub = _net_subnet(alice)
    router = _router(alice)
    port = alice("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}).json["port"]
    add = f"/v2.0/routers/{router['id']}/add_router_interface"
    info = alice("PUT", add, {"port_id": port["id"]}).json
    assert info["port_id"] == port["id"] and info["subnet_id"] == sub["id"]
    shown = alice("GET", f"/v2.0/ports/{port['id']}").json["port"]
    assert shown["device_id"] == router["id"]
    assert shown["device_owner"] == "network:router_interface"
    # a port already in use cannot join a second router
    other = _router(alice, name="r-other")
    _error(alice("PUT", f"/v2.0/routers/{other['id']}/add_router_interface",
                 {"port_id": port["id"]}), 409, "PortInUse")
    # an interface port goes only through remove_router_interface
    _error(alice("DELETE", f"/v2.0/ports/{port['id']}"), 409, "L3PortInUse")
    remove = f"/v2.0/routers/{router['id']}/remove_router_interface"
    _error(alice("PUT", f"/v2.0/routers/{other['id']}/remove_router_interface",
                 {"port_id": port["id"]}), 404, "RouterInterfaceNotFound")
    assert alice("PUT", remove, {"port_id": port["id"]}).status_int == 200
    _error(alice("GET", f"/v2.0/ports/{port['id']}"), 404)


def test_router_and_subnet_in_use_are_409(alice):
    net, sub = _net_subnet(alice)
    router = _router(alice)
    path = f"/v2.0/routers/{router['id']}"
    alice("PUT", f"{path}/add_router_interface", {"subnet_id": sub["id"]})
    error = _error(alice("DELETE", path), 409, "RouterInUse")
    assert "still has ports" in error["message"]
    _error(alice("DELETE", f"/v2.0/subnets/{sub['id']}"), 409, "SubnetInUse")
    _error(alice("DELETE", f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse")
    assert alice("GET", path).status_int == 200
    alice("PUT", f"{path}/remove_router_interface", {"subnet_id": sub["id"]})
    assert alice("DELETE", path).status_int == 204
    assert alice("DELETE", f"/v2.0/subnets/{sub['id']}").status_int == 204


@pytest.mark.parametrize("body, fragment", [
    ({}, "Either subnet_id or port_id"),
    ({"subnet_id": "x", "port_id": "y"}, "is not a valid UUID"),
    ({"subnet_id": "00000000-0000-0000-0000-000000000001",
      "port_id": "00000000-0000-0000-0000-000000000002"}, "Cannot specify both"),
    ({"network_id": "00000000-0000-0000-0000-000000000001"}, "Unrecognized attribute"),
    ([], "Either subnet_id or port_id"),
])
def test_bad_interface_bodies_are_400_and_change_nothing(alice, body, fragment):
    router = _router(alice)
    error = _error(alice("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                         body), 400)
    assert fragment in error["message"]
    assert alice("GET", f"/v2.0/ports?device_id={router['id']}").json["ports"] == []
    after = alice("GET", f"/v2.0/routers/{router['id']}").json["router"]
    assert after["revision_number"] == router["revision_number"]


def test_subnet_without_gateway_cannot_be_an_interface(alice):
    _net, sub = _net_subnet(alice, gateway_ip=None)
    router = _router(alice)
    error = _error(alice("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                         {"subnet_id": sub["id"]}), 400, "BadRequest")
    assert "gateway IP" in error["message"]


def test_overlapping_subnets_on_one_router_are_400(alice):
    _net1, sub1 = _net_subnet(alice, "10.30.0.0/24")
    _net2, sub2 = _net_subnet(alice, "10.30.0.0/25")
    router = _router(alice)
    add = f"/v2.0/routers/{router['id']}/add_router_interface"
    assert alice("PUT", add, {"subnet_id": sub1["id"]}).status_int == 200
    error = _error(alice("PUT", add, {"subnet_id": sub2["id"]}), 400)
    assert "overlaps" in error["message"]


@pytest.mark.parametrize("body", [
    {"router": {"name": 5}},
    {"router": {"admin_state_up": "maybe"}},
    {"router": {"external_gateway_info": "public"}},
    {"router": {"distributed": True}},
    {"router": {"id": "00000000-0000-0000-0000-000000000001"}},
    {"routers": [{"name": "bulk"}]},
])
def test_bad_router_bodies_are_400_and_change_nothing(alice, body):
    _error(alice("POST", "/v2.0/routers", body), 400)
    assert alice("GET", "/v2.0/routers").json["routers"] == []


def test_other_projects_and_readers(alice, bob, app, admin):
    reader = type(alice)(app, READER)
    _net, sub = _net_subnet(alice)
    router = _router(alice)
    path = f"/v2.0/routers/{router['id']}"
    # another project does not see it at all
    _error(bob("GET", path), 404, "RouterNotFound")
    _error(bob("PUT", path, {"router": {"name": "x"}}), 404)
    _error(bob("DELETE", path), 404)
    _error(bob("PUT", f"{path}/add_router_interface", {"subnet_id": sub["id"]}), 404)
    assert bob("GET", "/v2.0/routers").json["routers"] == []
    # nor may bob plug alice's subnet into a router of his
    mine = _router(bob)
    _error(bob("PUT", f"/v2.0/routers/{mine['id']}/add_router_interface",
               {"subnet_id": sub["id"]}), 404, "SubnetNotFound")
    # a reader of the project sees it and changes nothing
    assert reader("GET", path).status_int == 200
    _error(reader("PUT", path, {"router": {"name": "x"}}), 403, "PolicyNotAuthorized")
    _error(reader("PUT", f"{path}/add_router_interface", {"subnet_id": sub["id"]}), 403)
    _error(reader("DELETE", path), 403)
    assert alice("GET", path).json["router"]["name"] == "r1"
    # an administrator sees every project's
    assert {r["id"] for r in admin("GET", "/v2.0/routers").json["routers"]} >= {
        router["id"], mine["id"]}


def test_router_extension_is_listed(alice):
    aliases = {e["alias"] for e in alice("GET", "/v2.0/extensions").json["extensions"]}
    assert {"router", "subnet_allocation", "standard-attr-tag"} <= aliases


def test_audit_reports_an_interface_whose_router_is_gone(service, admin, alice):
    from transcell.audit.ports import router_interfaces
    from transcell.context import RequestContext

    net, sub = _net_subnet(alice)
    router = _router(alice)
    alice("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
          {"subnet_id": sub["id"]})
    ports = service.list_ports(RequestContext.admin(), {})
    assert router_interfaces(service, ports) == []
    # an interface naming no router (made by an administrator, as a broken state would be)
    stray = admin("POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "device_owner": "network:router_interface",
        "device_id": "00000000-0000-0000-0000-00000000dead"}}).json["port"]
    found = router_interfaces(service, service.list_ports(RequestContext.admin(), {}))
    assert [(p.kind, p.subject) for p in found] == [("interface-without-router", stray["id"])]
    # a port whose router is gone is an ordinary port again: it may be deleted
    assert admin("DELETE", f"/v2.0/ports/{stray['id']}").status_int == 204
