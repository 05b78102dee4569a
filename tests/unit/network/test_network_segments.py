"""Segments and the routed network: addresses follow the host's cell."""

from __future__ import annotations

import pytest

from transcell import exception
from transcell.network import NetworkService
from transcell.network import exceptions as exc
from transcell.network.cells import StaticCells

HOSTS = {"cell1": ["cell1-host1", "cell1-host2"], "cell2": ["cell2-host1"],
         "cell3": ["cell3-host1"]}


@pytest.fixture
def routed(service: NetworkService, admin) -> dict:
    service.cells = StaticCells(HOSTS)
    service.ensure_default_network(admin)
    (net,) = service.list_networks(admin, {"name": "routed"})
    return net


def _subnet_of_cell(service, admin, net, cell) -> dict:
    (segment,) = service.list_segments(admin, {"network_id": net["id"], "name": cell})
    (subnet,) = service.list_subnets(admin, {"segment_id": segment["id"]})
    return subnet


def test_routed_network_has_a_segment_and_subnet_per_cell(service, admin, alice, routed):
    segments = service.list_segments(admin, {"network_id": routed["id"]})
    assert sorted((s["name"], s["transcell:cells"]) for s in segments) == [
        ("cell1", ["cell1"]), ("cell2", ["cell2"]), ("cell3", ["cell3"])]
    subnets = service.list_subnets(alice, {"network_id": routed["id"]})
    assert sorted(s["cidr"] for s in subnets) == ["10.10.1.0/24", "10.10.2.0/24",
                                                  "10.10.3.0/24"]
    assert {s["segment_id"] for s in subnets} == {s["id"] for s in segments}
    assert len(routed["segments"]) == 3 and routed["l2_adjacency"] is False
    # a restart changes nothing; a cell added since gets its segment and subnet
    service.ensure_default_network(admin)
    assert len(service.list_segments(admin)) == 3
    service.cells = StaticCells({**HOSTS, "cell4": ["cell4-host1"]})
    service.ensure_default_network(admin)
    assert len(service.list_segments(admin)) == 4
    assert _subnet_of_cell(service, admin, routed, "cell4")["cidr"] == "10.10.4.0/24"
    assert len(service.list_networks(admin, {"name": "routed"})) == 1


def test_port_address_is_deferred_until_bound_then_from_the_hosts_cell(
        service, admin, alice, routed):
    port = service.create_port(alice, {"network_id": routed["id"]})
    assert port["ip_allocation"] == "deferred" and port["fixed_ips"] == []
    bound = service.bind_port(admin, port["id"], "cell2-host1")
    cell2 = _subnet_of_cell(service, admin, routed, "cell2")
    assert [ip["subnet_id"] for ip in bound["fixed_ips"]] == [cell2["id"]]
    assert bound["fixed_ips"][0]["ip_address"].startswith("10.10.2.")
    # bound now to a cell1 host: refused, nothing changed
    with pytest.raises(exc.HostNotCompatibleWithFixedIps, match="cell1-host1.*cell1") as err:
        service.bind_port(admin, port["id"], "cell1-host1")
    assert err.value.code == 409 and routed["id"] in str(err.value)
    after = service.get_port(admin, port["id"])
    assert after["binding:host_id"] == "cell2-host1"
    assert after["fixed_ips"] == bound["fixed_ips"]


def test_a_host_no_segment_reaches_is_refused(service, admin, alice, routed):
    with pytest.raises(exc.HostNotConnectedToAnySegment, match="nowhere-host"):
        service.create_port(admin, {"network_id": routed["id"],
                                    "binding:host_id": "nowhere-host"})
    assert service.list_ports(admin, {"network_id": routed["id"]}) == []
    made = service.create_port(admin, {"network_id": routed["id"],
                                       "binding:host_id": "cell1-host2"})
    assert made["fixed_ips"][0]["ip_address"] == "10.10.1.2"


def test_subnet_rules_on_a_network_with_segments(service, admin, routed):
    with pytest.raises(exc.SubnetsNotAllAssociatedWithSegments):
        service.create_subnet(admin, {"network_id": routed["id"], "cidr": "10.11.0.0/24"})
    other = service.create_network(admin, {"name": "other"})
    seg = service.create_segment(admin, {"network_id": other["id"], "network_type": "vlan",
                                         "physical_network": "p1"})
    assert seg["segmentation_id"] == 1
    with pytest.raises(exc.NetworkIdsDontMatch):
        service.create_subnet(admin, {"network_id": routed["id"], "cidr": "10.11.0.0/24",
                                      "segment_id": seg["id"]})
    with pytest.raises(exc.SegmentInUse):
        service.delete_segment(admin, _subnet_of_cell(service, admin, routed,
                                                      "cell1")["segment_id"])
    with pytest.raises(exception.Conflict, match="already uses vlan"):
        service.create_segment(admin, {"network_id": other["id"], "network_type": "vlan",
                                       "physical_network": "p1", "segmentation_id": 1})
    with pytest.raises(exception.Invalid, match="no cell is named 'cell9'"):
        service.update_segment(admin, seg["id"], {"transcell:cells": ["cell9"]})
    service.delete_segment(admin, seg["id"])


def test_check_readdress_and_restore(service, admin, alice, routed):
    port = service.create_port(admin, {"network_id": routed["id"], "device_owner":
                                       "compute:nova", "binding:host_id": "cell1-host1"})
    private = service.create_port(alice, {"network_id": service.list_networks(
        admin, {"name": "private"})[0]["id"]})
    plans = service.check_ports_for_host(admin, [port["id"], private["id"]], "cell2-host1")
    assert [p["action"] for p in plans] == ["readdress", "keep"]
    cell2 = _subnet_of_cell(service, admin, routed, "cell2")
    assert plans[0]["segment"] == cell2["segment_id"]
    assert plans[0]["fixed_ips"] == port["fixed_ips"]
    assert service.check_ports_for_host(admin, [port["id"]], "cell1-host2")[0]["action"] \
        == "keep"
    assert service.check_ports_for_host(admin, [port["id"]], "x")[0]["action"] == "blocked"

    moved = service.readdress_port(admin, port["id"], "cell2-host1")
    assert moved["old_fixed_ips"] == port["fixed_ips"]
    assert moved["new_fixed_ips"][0]["subnet_id"] == cell2["id"]
    assert service.readdress_port(admin, port["id"], "cell2-host1") == moved
    after = service.get_port(admin, port["id"])
    assert (after["id"], after["mac_address"]) == (port["id"], port["mac_address"])
    assert after["fixed_ips"] == moved["new_fixed_ips"]

    restored = service.restore_port_addresses(admin, port["id"], moved["old_fixed_ips"])
    assert restored["new_fixed_ips"] == port["fixed_ips"]
    assert service.restore_port_addresses(admin, port["id"], moved["old_fixed_ips"]) \
        ["new_fixed_ips"] == port["fixed_ips"]
    # the new address was given back: another port gets it
    again = service.readdress_port(admin, port["id"], "cell2-host1")
    thief = service.create_port(admin, {"network_id": routed["id"], "fixed_ips": [
        dict(port["fixed_ips"][0])]})
    with pytest.raises(exc.PortAddressTaken, match=thief["id"]):
        service.restore_port_addresses(admin, port["id"], again["old_fixed_ips"])
    assert service.get_port(admin, port["id"])["fixed_ips"] == again["new_fixed_ips"]
    with pytest.raises(exc.PolicyNotAuthorized):
        service.readdress_port(alice, port["id"], "cell2-host1")


def test_routed_port_keeps_to_its_hosts_segment_and_network_deletes_whole(
        service, admin, routed):
    port = service.create_port(admin, {"network_id": routed["id"],
                                       "binding:host_id": "cell1-host1"})
    cell2 = _subnet_of_cell(service, admin, routed, "cell2")
    with pytest.raises(exc.HostNotCompatibleWithFixedIps):
        service.update_port(admin, port["id"], {"fixed_ips": [{"subnet_id": cell2["id"]}]})
    assert service.get_port(admin, port["id"])["fixed_ips"] == port["fixed_ips"]
    # unbound, it may take any segment's address; bound again, it must fit the host
    service.update_port(admin, port["id"], {"binding:host_id": ""})
    moved = service.update_port(admin, port["id"], {"fixed_ips": [{"subnet_id": cell2["id"]}]})
    assert moved["fixed_ips"][0]["subnet_id"] == cell2["id"]
    with pytest.raises(exc.HostNotCompatibleWithFixedIps):
        service.bind_port(admin, port["id"], "cell1-host2")
    service.bind_port(admin, port["id"], "cell2-host1")
    service.delete_port(admin, port["id"])
    service.delete_network(admin, routed["id"])
    assert service.list_segments(admin) == []
    assert service.list_subnets(admin, {"network_id": routed["id"]}) == []


def test_segments_moves_and_groups_on_every_engine(engine_service, admin, alice):
    service = engine_service
    service.cells = StaticCells(HOSTS)
    service.ensure_default_network(admin)
    service.ensure_default_network(admin)
    (routed,) = service.list_networks(admin, {"name": "routed"})
    assert len(routed["segments"]) == 3
    port = service.create_port(admin, {"network_id": routed["id"],
                                       "binding:host_id": "cell1-host1"})
    moved = service.readdress_port(admin, port["id"], "cell3-host1")
    assert moved["new_fixed_ips"][0]["ip_address"] == "10.10.3.2"
    assert service.readdress_port(admin, port["id"], "cell3-host1") == moved
    service.create_port(admin, {"network_id": routed["id"],
                                "fixed_ips": moved["old_fixed_ips"]})
    with pytest.raises(exc.PortAddressTaken):
        service.restore_port_addresses(admin, port["id"], moved["old_fixed_ips"])
    assert service.get_port(admin, port["id"])["fixed_ips"] == moved["new_fixed_ips"]

    group = service.create_security_group(alice, {"name": "g"})
    rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80}
    service.create_security_group_rule(alice, rule)
    with pytest.raises(exc.SecurityGroupRuleExists):
        service.create_security_group_rule(alice, {**rule, "protocol": "6"})
    private = service.list_networks(admin, {"name": "private"})[0]["id"]
    used = service.create_port(alice, {"network_id": private,
                                       "security_groups": [group["id"]]})
    with pytest.raises(exc.SecurityGroupInUse):
        service.delete_security_group(alice, group["id"])
    service.delete_port(alice, used["id"])
    service.delete_security_group(alice, group["id"])

    for row in service.list_ports(admin, {"network_id": routed["id"]}):
        service.delete_port(admin, row["id"])
    service.delete_network(admin, routed["id"])
    assert service.list_segments(admin) == []


def test_concurrent_readdresses_of_one_port_agree(service, admin, routed):
    from concurrent.futures import ThreadPoolExecutor

    port = service.create_port(admin, {"network_id": routed["id"],
                                       "binding:host_id": "cell1-host1"})
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _i: service.readdress_port(
            admin, port["id"], "cell2-host1"), range(4)))
    assert all(result == results[0] for result in results)
    assert results[0]["old_fixed_ips"] == port["fixed_ips"]
    after = service.get_port(admin, port["id"])["fixed_ips"]
    assert after == results[0]["new_fixed_ips"] and len(after) == 1
