"""Bulk create of networks, subnets and ports through the Neutron API: all or nothing.

Also the small things Tempest's network tests ask of the subset: a network
owner's port MAC, Neutron's wording for bad security group rule ranges, and
the (empty) agent list.
"""

from __future__ import annotations

import pytest
from test_network_api import error_of, private_id


def names(client, collection: str, **query: str) -> list[str]:
    path = f"/v2.0/{collection}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                    if query else "")
    resp = client("GET", path)
    assert resp.status_int == 200, resp.text
    return sorted(item.get("name") or "" for item in resp.json[collection])


def network(client, name: str) -> dict:
    resp = client("POST", "/v2.0/networks", {"network": {"name": name}})
    assert resp.status_int == 201, resp.text
    return resp.json["network"]


def subnet(client, net_id: str, cidr: str, name: str = "") -> dict:
    resp = client("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net_id, "cidr": cidr, "ip_version": 4, "name": name}})
    assert resp.status_int == 201, resp.text
    return resp.json["subnet"]


def test_bulk_networks_in_request_order(alice):
    resp = alice("POST", "/v2.0/networks", {"networks": [
        {"name": "bulk-a"}, {"name": "bulk-b", "admin_state_up": False}]})
    assert resp.status_int == 201, resp.text
    made = resp.json["networks"]
    assert [n["name"] for n in made] == ["bulk-a", "bulk-b"]
    assert made[1]["admin_state_up"] is False and made[0]["project_id"] == "proj-a"
    assert {"bulk-a", "bulk-b"} <= set(names(alice, "networks"))
    only_ids = alice("POST", "/v2.0/networks?fields=id", {"networks": [{"name": "bulk-c"}]})
    assert only_ids.status_int == 201 and set(only_ids.json["networks"][0]) == {"id"}


def test_a_bad_network_creates_none(alice):
    before = names(alice, "networks")
    resp = alice("POST", "/v2.0/networks", {"networks": [
        {"name": "fine-1"}, {"name": "fine-2"}, {"name": "bad", "mtu": 5}]})
    assert resp.status_int == 400, resp.text
    assert error_of(resp)["type"]
    assert names(alice, "networks") == before


def test_a_forbidden_item_is_refused_before_anything_is_made(alice, admin):
    before = names(admin, "networks")
    resp = alice("POST", "/v2.0/networks", {"networks": [
        {"name": "mine"}, {"name": "everyones", "shared": True}]})
    assert resp.status_int == 403
    assert error_of(resp)["type"] == "PolicyNotAuthorized"
    assert names(admin, "networks") == before


def test_bulk_subnets_and_a_failure_leaves_no_trace(alice):
    one, two = network(alice, "sub-one"), network(alice, "sub-two")
    resp = alice("POST", "/v2.0/subnets", {"subnets": [
        {"network_id": one["id"], "cidr": "10.20.0.0/24", "ip_version": 4, "name": "s1"},
        {"network_id": two["id"], "cidr": "10.21.0.0/24", "ip_version": 4}]})
    assert resp.status_int == 201, resp.text
    assert [s["cidr"] for s in resp.json["subnets"]] == ["10.20.0.0/24", "10.21.0.0/24"]

    three = network(alice, "sub-three")
    revision = three["revision_number"]
    resp = alice("POST", "/v2.0/subnets", {"subnets": [
        {"network_id": three["id"], "cidr": "10.30.0.0/24", "ip_version": 4},
        {"network_id": three["id"], "cidr": "10.30.0.128/25", "ip_version": 4}]})
    assert resp.status_int == 400, resp.text
    assert "overlaps" in error_of(resp)["message"]
    assert alice("GET", f"/v2.0/subnets?network_id={three['id']}").json["subnets"] == []
    after = alice("GET", f"/v2.0/networks/{three['id']}").json["network"]
    # one transaction: the network was never touched, not even its revision
    assert (after["subnets"], after["revision_number"]) == ([], revision)


def test_bulk_ports_and_a_failure_takes_no_address(alice):
    net = network(alice, "ports-net")
    subnet(alice, net["id"], "10.40.0.0/24")
    resp = alice("POST", "/v2.0/ports", {"ports": [
        {"network_id": net["id"], "name": "p1"}, {"network_id": net["id"], "name": "p2"}]})
    assert resp.status_int == 201, resp.text
    made = resp.json["ports"]
    assert [p["name"] for p in made] == ["p1", "p2"]
    assert len({p["mac_address"] for p in made}) == 2

    wanted = [{"ip_address": "10.40.0.50"}]
    resp = alice("POST", "/v2.0/ports", {"ports": [
        {"network_id": net["id"], "name": "p3", "fixed_ips": wanted},
        {"network_id": net["id"], "name": "p4", "fixed_ips": wanted}]})
    assert resp.status_int == 409, resp.text
    assert error_of(resp)["type"] == "IpAddressAlreadyAllocated"
    assert names(alice, "ports", network_id=net["id"]) == ["p1", "p2"]
    # the address the first port of the failed request would have had is free
    again = alice("POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                   "fixed_ips": wanted}})
    assert again.status_int == 201, again.text


def test_bulk_ports_on_a_network_the_caller_cannot_see(alice, bob):
    hidden = network(bob, "bobs")
    subnet(bob, hidden["id"], "10.50.0.0/24")
    mine = network(alice, "alices")
    subnet(alice, mine["id"], "10.51.0.0/24")
    resp = alice("POST", "/v2.0/ports", {"ports": [
        {"network_id": mine["id"], "name": "ok"}, {"network_id": hidden["id"]}]})
    assert resp.status_int in (403, 404), resp.text
    assert names(alice, "ports", network_id=mine["id"]) == []


@pytest.mark.parametrize("body", [
    {"networks": []}, {"networks": {"name": "x"}}, {"networks": ["x"]},
    {"networks": [{"name": "x"}], "extra": 1}])
def test_malformed_bulk_bodies(alice, body):
    before = names(alice, "networks")
    resp = alice("POST", "/v2.0/networks", body)
    assert resp.status_int == 400, (body, resp.text)
    assert error_of(resp)["type"] == "HTTPBadRequest"
    assert names(alice, "networks") == before


def test_segments_are_not_created_in_bulk(admin):
    resp = admin("POST", "/v2.0/segments", {"segments": [{"network_id": "x"}]})
    assert resp.status_int == 400
    assert "Bulk creation" in error_of(resp)["message"]


def test_a_network_owner_picks_a_ports_mac(alice):
    net = network(alice, "mac-net")
    subnet(alice, net["id"], "10.60.0.0/24")
    resp = alice("POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                  "mac_address": "fa:16:3e:00:00:01"}})
    assert resp.status_int == 201, resp.text
    port = resp.json["port"]
    assert port["mac_address"] == "fa:16:3e:00:00:01"
    # on a network someone else owns, and on update, it stays the administrator's
    shared = alice("POST", "/v2.0/ports", {"port": {"network_id": private_id(alice),
                                                    "mac_address": "fa:16:3e:00:00:02"}})
    assert shared.status_int == 403
    assert error_of(shared)["type"] == "PolicyNotAuthorized"
    changed = alice("PUT", f"/v2.0/ports/{port['id']}",
                    {"port": {"mac_address": "fa:16:3e:00:00:03"}})
    assert changed.status_int == 403
    assert alice("GET", f"/v2.0/ports/{port['id']}").json["port"]["mac_address"] == (
        "fa:16:3e:00:00:01")


@pytest.mark.parametrize(("protocol", "low", "high", "words"), [
    ("tcp", -16, 80, "Invalid value for port -16"),
    ("tcp", 80, 65536, "Invalid value for port 65536"),
    ("tcp", 80, 79, "port_range_min must be <= port_range_max"),
    ("tcp", None, 6, "port_range_min must be <= port_range_max"),
    ("icmp", 1, 256, "Invalid value for ICMP code"),
    ("icmp", 300, 1, "Invalid value for ICMP type"),
    ("icmp", None, 6, "ICMP type (port-range-min) is missing"),
])
def test_security_group_rule_ranges_in_neutrons_words(alice, protocol, low, high, words):
    group = alice("POST", "/v2.0/security-groups", {"security_group": {"name": "g"}})
    group_id = group.json["security_group"]["id"]
    resp = alice("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", "protocol": protocol,
        "port_range_min": low, "port_range_max": high}})
    assert resp.status_int == 400
    assert words in error_of(resp)["message"]


def test_no_agents(alice, admin):
    for client in (alice, admin):
        resp = client("GET", "/v2.0/agents")
        assert resp.status_int == 200 and resp.json == {"agents": []}
    assert alice("GET", "/v2.0/agents", token=None).status_int == 401


def test_the_network_tag_extension_is_listed_with_standard_attr_tag(alice):
    aliases = {e["alias"] for e in alice("GET", "/v2.0/extensions").json["extensions"]}
    assert {"tag", "standard-attr-tag"} <= aliases
    assert alice("GET", "/v2.0/extensions/tag").json["extension"]["alias"] == "tag"
