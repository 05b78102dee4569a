"""Networks, subnets and ports as Neutron keeps them: filters, scoping, checks."""

from __future__ import annotations

import re

import pytest

from transcell import exception
from transcell.network import NetworkService
from transcell.network import exceptions as exc


def test_projects_see_their_own_and_shared_networks_only(service: NetworkService, admin,
                                                         alice, bob, make_network):
    shared, shared_sub = make_network("10.1.0.0/24")
    mine, mine_sub = make_network("10.2.0.0/24", ctx=alice)
    theirs, _ = make_network("10.3.0.0/24", ctx=bob)

    assert {n["id"] for n in service.list_networks(alice)} == {shared["id"], mine["id"]}
    assert {s["id"] for s in service.list_subnets(alice)} == {shared_sub["id"],
                                                              mine_sub["id"]}
    assert len(service.list_networks(admin)) == 3
    with pytest.raises(exception.NetworkNotFound):
        service.get_network(alice, theirs["id"])
    with pytest.raises(exception.NetworkNotFound):
        service.delete_network(alice, theirs["id"])
    with pytest.raises(exc.PolicyNotAuthorized):
        service.update_network(alice, shared["id"], {"name": "hijacked"})


def test_ports_are_private_to_their_project(service, admin, alice, bob, make_network):
    net, _ = make_network()
    port = service.create_port(alice, {"network_id": net["id"]})
    assert service.list_ports(bob) == []
    with pytest.raises(exception.PortNotFound):
        service.get_port(bob, port["id"])
    with pytest.raises(exception.PortNotFound):
        service.delete_port(bob, port["id"])
    assert [p["id"] for p in service.list_ports(alice)] == [port["id"]]


def test_only_admins_share_networks_or_act_for_other_projects(service, alice):
    with pytest.raises(exc.PolicyNotAuthorized):
        service.create_network(alice, {"name": "n", "shared": True})
    with pytest.raises(exc.PolicyNotAuthorized):
        service.create_network(alice, {"name": "n", "router:external": True})
    with pytest.raises(exception.Invalid, match="requires admin"):
        service.create_network(alice, {"name": "n", "project_id": "proj-b"})
    assert service.create_network(alice, {"name": "n", "shared": False})["shared"] is False


def test_unknown_and_read_only_attributes_are_refused(service, alice):
    with pytest.raises(exception.Invalid, match="Unrecognized attribute"):
        service.create_network(alice, {"name": "n", "colour": "blue"})
    net = service.create_network(alice, {"name": "n"})
    with pytest.raises(exception.Invalid, match="read-only attribute"):
        service.update_network(alice, net["id"], {"project_id": "proj-b"})
    with pytest.raises(exception.Invalid, match="Invalid input for mtu"):
        service.update_network(alice, net["id"], {"mtu": 1})


def test_filters_follow_neutron(service, admin, alice, make_network):
    shared, sub = make_network("10.1.0.0/24")
    own = service.create_network(alice, {"name": "own"})
    assert [n["id"] for n in service.list_networks(alice, {"shared": "true"})] == [
        shared["id"]]
    assert [n["id"] for n in service.list_networks(alice, {"name": ["own", "nope"]})] == [
        own["id"]]
    assert service.list_networks(alice, {"tenant_id": "proj-a"})[0]["id"] == own["id"]
    first = service.create_port(alice, {"network_id": shared["id"], "device_id": "vm-1"})
    service.create_port(alice, {"network_id": shared["id"], "device_owner": "compute:nova"})
    ip = first["fixed_ips"][0]["ip_address"]
    assert [p["id"] for p in service.list_ports(alice, {"fixed_ips": f"ip_address={ip}"})
            ] == [first["id"]]
    assert len(service.list_ports(alice, {"fixed_ips": f"subnet_id={sub['id']}"})) == 2
    assert [p["id"] for p in service.list_ports(alice, {"device_id": "vm-1"})] == [
        first["id"]]
    assert len(service.list_ports(alice, {"device_owner": "compute:nova"})) == 1
    with pytest.raises(exception.Invalid, match="invalid attribute for filtering"):
        service.list_networks(alice, {"flavour": "x"})


def test_mac_addresses_are_openstack_style_and_unique(service, admin, make_network):
    net, _ = make_network("10.1.0.0/24")
    macs = {service.create_port(admin, {"network_id": net["id"]})["mac_address"]
            for _ in range(10)}
    assert len(macs) == 10
    assert all(re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", mac) for mac in macs)
    taken = next(iter(macs))
    with pytest.raises(exc.MacAddressInUse):
        service.create_port(admin, {"network_id": net["id"], "mac_address": taken})
    other = service.create_port(admin, {"network_id": net["id"]})
    with pytest.raises(exc.MacAddressInUse):
        service.update_port(admin, other["id"], {"mac_address": taken})
    changed = service.update_port(admin, other["id"], {"mac_address": "FA:16:3E:00:00:01"})
    assert changed["mac_address"] == "fa:16:3e:00:00:01"
    service.bind_port(admin, other["id"], "host1")
    with pytest.raises(exc.PortBound):
        service.update_port(admin, other["id"], {"mac_address": "fa:16:3e:00:00:02"})


def test_network_with_ports_cannot_be_deleted(service, admin, make_network):
    net, sub = make_network()
    port = service.create_port(admin, {"network_id": net["id"]})
    with pytest.raises(exc.NetworkInUse) as caught:
        service.delete_network(admin, net["id"])
    assert caught.value.code == 409
    with pytest.raises(exc.SubnetInUse):
        service.delete_subnet(admin, sub["id"])
    service.delete_port(admin, port["id"])
    service.delete_network(admin, net["id"])
    with pytest.raises(exc.SubnetNotFound):
        service.get_subnet(admin, sub["id"])


def test_subnet_checks(service, admin, alice, make_network):
    net, _ = make_network("10.1.0.0/24")
    with pytest.raises(exc.InvalidInput, match="overlaps"):
        service.create_subnet(admin, {"network_id": net["id"], "cidr": "10.1.0.128/25",
                                      "ip_version": 4})
    with pytest.raises(exc.InvalidInput, match="Gateway is not valid"):
        service.create_subnet(admin, {"network_id": net["id"], "cidr": "10.5.0.0/24",
                                      "ip_version": 4, "gateway_ip": "10.6.0.1"})
    with pytest.raises(exc.PolicyNotAuthorized):
        service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.5.0.0/24",
                                      "ip_version": 4})
    v6 = service.create_subnet(admin, {"network_id": net["id"], "cidr": "fd00:1::/64",
                                       "ip_version": 6})
    assert v6["gateway_ip"] == "fd00:1::1"
    port = service.create_port(admin, {"network_id": net["id"]})
    assert sorted(ip["ip_address"] for ip in port["fixed_ips"]) == ["10.1.0.2", "fd00:1::2"]


def test_port_update_changes_addresses_and_binding(service, admin, alice, make_network):
    net, sub = make_network("10.1.0.0/24")
    port = service.create_port(alice, {"network_id": net["id"], "name": "p"})
    moved = service.update_port(admin, port["id"], {
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.1.0.50"}],
        "binding:host_id": "host9", "name": "renamed"})
    assert moved["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.1.0.50"}]
    assert (moved["binding:host_id"], moved["status"], moved["name"]) == (
        "host9", "ACTIVE", "renamed")
    assert moved["revision_number"] > port["revision_number"]
    again = service.create_port(admin, {"network_id": net["id"]})
    assert again["fixed_ips"][0]["ip_address"] == "10.1.0.2"  # the old address was freed
    with pytest.raises(exc.PolicyNotAuthorized):
        service.update_port(alice, port["id"], {"binding:host_id": "elsewhere"})
    unbound = service.update_port(admin, port["id"], {"binding:host_id": ""})
    assert (unbound["binding:host_id"], unbound["status"]) == ("", "DOWN")


def test_default_security_group_is_made_once_per_project(service, alice, bob):
    first = service.list_security_groups(alice, {"name": "default"})
    again = service.list_security_groups(alice)
    assert [g["id"] for g in first] == [g["id"] for g in again]
    assert len(first) == 1 and first[0]["project_id"] == "proj-a"
    assert {r["direction"] for r in first[0]["security_group_rules"]} == {"ingress",
                                                                          "egress"}
    (bobs,) = service.list_security_groups(bob)
    assert bobs["id"] != first[0]["id"]
    with pytest.raises(exc.SecurityGroupNotFound):
        service.get_security_group(alice, bobs["id"])


def test_tags(service, alice):
    net = service.create_network(alice, {"name": "tagged"})
    assert service.replace_tags(alice, "networks", net["id"], ["a", "b", "a"]) == ["a", "b"]
    service.add_tag(alice, "networks", net["id"], "c")
    service.remove_tag(alice, "networks", net["id"], "a")
    assert service.get_network(alice, net["id"])["tags"] == ["b", "c"]
    assert service.list_networks(alice, {"tags": "b,c"})[0]["id"] == net["id"]
    assert service.list_networks(alice, {"not-tags-any": "c"}) == []
    with pytest.raises(exc.TagNotFound):
        service.check_tag(alice, "networks", net["id"], "a")
