"""The Neutron v2.0 API through WSGI, as the openstack CLI and openstacksdk use it."""

from __future__ import annotations

import re

import pytest


def error_of(resp) -> dict:
    assert set(resp.json) == {"NeutronError"}, resp.json
    error = resp.json["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    return error


def private_id(client) -> str:
    resp = client("GET", "/v2.0/networks?name=private")
    assert resp.status_int == 200, resp.text
    (net,) = resp.json["networks"]
    return net["id"]


def test_version_document_needs_no_token(alice):
    resp = alice("GET", "/", token=None)
    assert resp.status_int == 200
    assert resp.json == {"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": "http://cloud:8774/network/v2.0/"}]}]}
    index = alice("GET", "/v2.0/", token=None)
    assert "networks" in {r["collection"] for r in index.json["resources"]}


def test_everything_else_needs_a_token(alice):
    resp = alice("GET", "/v2.0/networks", token=None)
    assert resp.status_int == 401
    assert error_of(resp)["type"] == "HTTPUnauthorized"


def test_list_networks_by_name(alice):
    resp = alice("GET", "/v2.0/networks?name=private")
    (net,) = resp.json["networks"]
    assert net["name"] == "private" and net["shared"] is True
    assert net["router:external"] is False and net["mtu"] == 1500
    assert len(net["subnets"]) == 1 and net["status"] == "ACTIVE"
    assert alice("GET", "/v2.0/networks?name=nope").json == {"networks": []}


def test_a_name_in_the_id_slot_is_not_found(alice):
    resp = alice("GET", "/v2.0/networks/private")
    assert resp.status_int == 404
    assert error_of(resp) == {"type": "NetworkNotFound",
                              "message": "Network private could not be found.",
                              "detail": ""}
    assert error_of(alice("GET", "/v2.0/ports/some-name"))["type"] == "PortNotFound"
    assert error_of(alice("GET", "/v2.0/security-groups/default"))["type"] == (
        "SecurityGroupNotFound")


def test_create_port_shows_fixed_ip_and_mac(alice):
    net_id = private_id(alice)
    resp = alice("POST", "/v2.0/ports", {"port": {"network_id": net_id, "name": "p1"}})
    assert resp.status_int == 201, resp.text
    port = resp.json["port"]
    assert re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", port["mac_address"])
    subnet_id = alice("GET", f"/v2.0/networks/{net_id}").json["network"]["subnets"][0]
    assert port["fixed_ips"] == [{"subnet_id": subnet_id, "ip_address": "10.0.0.2"}]
    assert (port["tenant_id"], port["project_id"], port["status"]) == (
        "proj-a", "proj-a", "DOWN")
    assert port["binding:vnic_type"] == "normal"
    assert "binding:host_id" not in port  # administrators only
    assert len(port["security_groups"]) == 1
    shown = alice("GET", f"/v2.0/ports/{port['id']}").json["port"]
    assert shown == port
    listed = alice("GET", "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.2").json["ports"]
    assert [p["id"] for p in listed] == [port["id"]]


def test_projects_are_isolated(alice, bob):
    mine = alice("POST", "/v2.0/networks", {"network": {"name": "alice-net"}}).json
    net_id = mine["network"]["id"]
    assert bob("GET", f"/v2.0/networks/{net_id}").status_int == 404
    assert "alice-net" not in {n["name"] for n in bob("GET", "/v2.0/networks").json[
        "networks"]}
    port = alice("POST", "/v2.0/ports", {"port": {"network_id": private_id(alice)}}).json
    assert bob("GET", f"/v2.0/ports/{port['port']['id']}").status_int == 404
    assert bob("GET", "/v2.0/ports").json == {"ports": []}
    assert bob("DELETE", f"/v2.0/networks/{net_id}").status_int == 404
    resp = bob("POST", "/v2.0/ports", {"port": {"network_id": net_id}})
    assert error_of(resp)["type"] == "NetworkNotFound"


def test_non_admins_cannot_create_shared_networks(alice, admin):
    resp = alice("POST", "/v2.0/networks", {"network": {"name": "s", "shared": True}})
    assert resp.status_int == 403
    assert error_of(resp)["type"] == "PolicyNotAuthorized"
    made = admin("POST", "/v2.0/networks", {"network": {"name": "s", "shared": True}})
    assert made.status_int == 201 and made.json["network"]["shared"] is True


@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "Malformed"),
    (b'{"network": {"name": "x", "colour": "red"}}', "Unrecognized attribute(s) 'colour'"),
    (b'{"net": {}}', "Unable to find 'network'"),
    (b'{"network": {"admin_state_up": "maybe"}}', "admin_state_up"),
])
def test_bad_bodies_are_400_with_a_reason(alice, raw, fragment):
    resp = alice("POST", "/v2.0/networks", raw=raw)
    assert resp.status_int == 400
    error = error_of(resp)
    assert error["type"] == "HTTPBadRequest"
    assert fragment in error["message"]


def test_deleting_a_network_with_ports_is_a_409(alice):
    net = alice("POST", "/v2.0/networks", {"network": {"name": "busy"}}).json["network"]
    sub = alice("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "192.168.5.0/24", "ip_version": 4}})
    assert sub.status_int == 201, sub.text
    assert sub.json["subnet"]["allocation_pools"] == [{"start": "192.168.5.2",
                                                       "end": "192.168.5.254"}]
    port = alice("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}).json["port"]
    resp = alice("DELETE", f"/v2.0/networks/{net['id']}")
    assert resp.status_int == 409
    assert error_of(resp)["type"] == "NetworkInUse"
    assert alice("DELETE", f"/v2.0/ports/{port['id']}").status_int == 204
    assert alice("DELETE", f"/v2.0/networks/{net['id']}").status_int == 204
    assert alice("GET", f"/v2.0/subnets/{sub.json['subnet']['id']}").status_int == 404


def test_update_network(alice):
    net = alice("POST", "/v2.0/networks", {"network": {"name": "a"}}).json["network"]
    resp = alice("PUT", f"/v2.0/networks/{net['id']}",
                 {"network": {"name": "b", "description": "renamed"}})
    assert resp.status_int == 200
    assert (resp.json["network"]["name"], resp.json["network"]["description"]) == (
        "b", "renamed")
    assert resp.json["network"]["revision_number"] == net["revision_number"] + 1


def test_fields_and_pagination(admin):
    for name in ("n1", "n2", "n3"):
        admin("POST", "/v2.0/networks", {"network": {"name": name}})
    resp = admin("GET", "/v2.0/networks?fields=id&fields=name&sort_key=name&limit=2")
    page = resp.json
    assert [set(n) for n in page["networks"]] == [{"id", "name"}, {"id", "name"}]
    assert [n["name"] for n in page["networks"]] == ["n1", "n2"]
    (link,) = page["networks_links"]
    assert link["rel"] == "next" and link["href"].startswith(
        "http://cloud:8774/network/v2.0/networks?")
    rest = admin("GET", link["href"].removeprefix("http://cloud:8774/network")).json
    assert [n["name"] for n in rest["networks"]] == ["n3", "private"]
    assert "networks_links" not in rest


def test_extensions_advertise_port_binding_extended(alice):
    aliases = {e["alias"] for e in alice("GET", "/v2.0/extensions").json["extensions"]}
    assert {"binding", "binding-extended", "port-security", "standard-attr-tag"} <= aliases
    one = alice("GET", "/v2.0/extensions/binding-extended")
    assert one.json["extension"]["alias"] == "binding-extended"
    assert error_of(alice("GET", "/v2.0/extensions/warp-drive"))["type"] == (
        "ExtensionNotFound")


def test_default_security_group_per_project(alice, bob):
    mine = alice("GET", "/v2.0/security-groups?name=default").json["security_groups"]
    theirs = bob("GET", "/v2.0/security-groups?name=default").json["security_groups"]
    assert len(mine) == len(theirs) == 1 and mine[0]["id"] != theirs[0]["id"]
    shown = alice("GET", f"/v2.0/security-groups/{mine[0]['id']}").json["security_group"]
    assert shown["name"] == "default" and shown["security_group_rules"]
    assert bob("GET", f"/v2.0/security-groups/{mine[0]['id']}").status_int == 404


def test_port_bindings_api(admin, alice):
    port = admin("POST", "/v2.0/ports", {"port": {
        "network_id": private_id(admin), "device_owner": "compute:nova",
        "device_id": "vm-1", "binding:host_id": "source"}}).json["port"]
    assert port["binding:host_id"] == "source" and port["status"] == "ACTIVE"
    base = f"/v2.0/ports/{port['id']}/bindings"
    made = admin("POST", base, {"binding": {"host": "target"}})
    assert made.status_int == 201 and made.json["binding"]["status"] == "INACTIVE"
    assert error_of(admin("POST", base, {"binding": {"host": "target"}}))["type"] == (
        "PortBindingAlreadyExists")
    resp = admin("PUT", f"{base}/target/activate")
    assert resp.status_int == 200 and resp.json["binding"]["status"] == "ACTIVE"
    hosts = {b["host"]: b["status"] for b in admin("GET", base).json["bindings"]}
    assert hosts == {"source": "INACTIVE", "target": "ACTIVE"}
    assert admin("GET", f"/v2.0/ports/{port['id']}").json["port"]["binding:host_id"] == (
        "target")
    assert admin("DELETE", f"{base}/source").status_int == 204
    assert admin("GET", f"{base}/source").status_int == 404
    assert alice("GET", base).status_int in (403, 404)


def test_tags_api(alice):
    net = alice("POST", "/v2.0/networks", {"network": {"name": "t"}}).json["network"]
    base = f"/v2.0/networks/{net['id']}/tags"
    assert alice("PUT", base, {"tags": ["red", "blue"]}).json == {"tags": ["red", "blue"]}
    assert alice("PUT", f"{base}/green").status_int == 201
    assert alice("GET", f"{base}/red").status_int == 204
    assert alice("DELETE", f"{base}/red").status_int == 204
    assert alice("GET", f"{base}/red").status_int == 404
    found = alice("GET", "/v2.0/networks?tags=green").json["networks"]
    assert [n["id"] for n in found] == [net["id"]]


def test_unknown_route_and_method(alice):
    assert error_of(alice("GET", "/v2.0/floatingips"))["type"] == "HTTPNotFound"
    resp = alice("PATCH", "/v2.0/networks")
    assert resp.status_int == 405
