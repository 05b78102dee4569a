"""Ports for servers: what compute asks for, and that failures leave nothing behind."""

from __future__ import annotations

import json

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.network import NetworkService, ipam
from transcell.network import exceptions as exc

INSTANCE = "5c1f7a7e-0d56-4b8a-9d4a-3f1f2f9e0a01"


def test_default_network_is_created_once(service: NetworkService, admin, alice):
    first = service.ensure_default_network(admin)
    again = service.ensure_default_network(admin)
    assert again["id"] == first["id"]
    assert first["shared"] is True and first["name"] == "private"
    (subnet,) = service.list_subnets(alice, {"network_id": first["id"]})
    assert (subnet["name"], subnet["cidr"], subnet["gateway_ip"]) == (
        "private-subnet", "10.0.0.0/22", "10.0.0.1")
    assert len(service.list_networks(admin, {"name": "private"})) == 1


def test_auto_picks_the_private_network_and_binds_to_the_host(service, admin, alice):
    net = service.ensure_default_network(admin)
    vifs = service.allocate_for_instance(alice, INSTANCE, "proj-a", "auto", "host1",
                                         availability_zone="az1")
    assert json.loads(json.dumps(vifs)) == vifs
    (vif,) = vifs
    assert vif["network_id"] == net["id"] and vif["network_name"] == "private"
    assert vif["address"].startswith("fa:16:3e:")
    assert vif["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    assert vif["fixed_ips"][0]["version"] == 4
    assert (vif["preexisting"], vif["host"], vif["active"]) == (False, "host1", True)
    port = service.get_port(alice, vif["id"])
    assert (port["device_id"], port["device_owner"]) == (INSTANCE, "compute:az1")
    assert (port["project_id"], port["binding:host_id"], port["status"]) == (
        "proj-a", "host1", "ACTIVE")


def test_auto_without_a_private_network_says_what_to_do(service, alice):
    with pytest.raises(exc.NetworkAutoAllocationFailed, match="create one") as caught:
        service.allocate_for_instance(alice, INSTANCE, "proj-a", "auto", "host1")
    assert caught.value.code == 409


def test_none_allocates_nothing(service, admin, alice):
    service.ensure_default_network(admin)
    assert service.allocate_for_instance(alice, INSTANCE, "proj-a", "none", "host1") == []
    assert service.list_ports(admin) == []


def test_requested_networks_fixed_ip_and_tags_in_order(service, admin, alice, make_network):
    net1, _ = make_network("10.1.0.0/24")
    net2, _ = make_network("10.2.0.0/24")
    requested = [{"uuid": net2["id"], "tag": "second-net"},
                 {"uuid": net1["id"], "fixed_ip": "10.1.0.77", "tag": "pinned"}]
    vifs = service.allocate_for_instance(alice, INSTANCE, "proj-a", requested, "host1")
    assert [v["network_id"] for v in vifs] == [net2["id"], net1["id"]]
    assert [v["tag"] for v in vifs] == ["second-net", "pinned"]
    assert vifs[1]["fixed_ips"][0]["ip_address"] == "10.1.0.77"
    assert service.get_instance_nw_info(alice, INSTANCE) == vifs


def test_an_existing_port_is_attached_and_later_given_back(service, admin, alice,
                                                           make_network):
    net, _ = make_network()
    mine = service.create_port(alice, {"network_id": net["id"], "name": "mine"})
    vifs = service.allocate_for_instance(alice, INSTANCE, "proj-a",
                                         [{"port": mine["id"], "tag": "t"}], "host1")
    assert vifs[0]["id"] == mine["id"] and vifs[0]["preexisting"] is True
    assert service.get_port(admin, mine["id"])["device_id"] == INSTANCE

    released = service.deallocate_for_instance(alice, INSTANCE, vifs)
    assert released == {"deleted": [], "detached": [mine["id"]]}
    port = service.get_port(admin, mine["id"])
    assert (port["device_id"], port["binding:host_id"], port["status"]) == ("", "", "DOWN")
    assert service.list_bindings(admin, mine["id"]) == []
    assert service.get_instance_nw_info(admin, INSTANCE) == []


def test_a_port_already_in_use_is_a_conflict(service, admin, alice, make_network):
    net, _ = make_network()
    port = service.create_port(alice, {"network_id": net["id"], "device_id": "other-vm"})
    with pytest.raises(exc.PortInUse):
        service.allocate_for_instance(alice, INSTANCE, "proj-a", [{"port": port["id"]}],
                                      "host1")
    assert service.get_port(alice, port["id"])["device_id"] == "other-vm"


def test_someone_elses_port_or_network_is_not_found(service, alice, bob, make_network):
    private, _ = make_network("10.3.0.0/24", ctx=bob)
    bobs_port = service.create_port(bob, {"network_id": private["id"]})
    with pytest.raises(exception.NetworkNotFound):
        service.allocate_for_instance(alice, INSTANCE, "proj-a", [{"uuid": private["id"]}],
                                      "h")
    with pytest.raises(exception.PortNotFound):
        service.allocate_for_instance(alice, INSTANCE, "proj-a",
                                      [{"port": bobs_port["id"]}], "h")


def test_a_failing_step_rolls_back_every_port(service, admin, alice, make_network):
    good, _ = make_network("10.1.0.0/24")
    full, _ = make_network("10.2.0.0/30")  # one address only
    mine = service.create_port(alice, {"network_id": good["id"], "name": "mine"})
    service.create_port(admin, {"network_id": full["id"], "name": "filler"})
    requested = [{"uuid": good["id"]}, {"port": mine["id"]}, {"uuid": full["id"]}]
    with pytest.raises(exc.IpAddressGenerationFailure):
        service.allocate_for_instance(alice, INSTANCE, "proj-a", requested, "host1")
    assert service.list_ports(admin, {"device_id": INSTANCE}) == []
    names = sorted(p["name"] for p in service.list_ports(admin))
    assert names == ["filler", "mine"]
    kept = service.get_port(admin, mine["id"])
    assert (kept["device_id"], kept["binding:host_id"]) == ("", "")


def test_rollback_also_covers_unexpected_errors(service, admin, alice, make_network,
                                                monkeypatch):
    net, _ = make_network("10.1.0.0/24")
    calls = {"n": 0}
    real = ipam.allocate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(ipam, "allocate", flaky)
    with pytest.raises(RuntimeError):
        service.allocate_for_instance(alice, INSTANCE, "proj-a",
                                      [{"uuid": net["id"]}, {"uuid": net["id"]}], "host1")
    assert service.list_ports(admin) == []


def test_bad_requests_are_refused_before_anything_is_made(service, admin, alice):
    for bad in ("everything", [{"network": "x"}], [{"uuid": "x", "color": "red"}]):
        with pytest.raises(exception.Invalid):
            service.allocate_for_instance(alice, INSTANCE, "proj-a", bad, "host1")
    assert service.list_ports(admin) == []


def test_deallocate_deletes_made_ports_and_keeps_brought_ones(service, admin, alice,
                                                              make_network):
    net, _ = make_network("10.1.0.0/24")
    mine = service.create_port(alice, {"network_id": net["id"]})
    vifs = service.allocate_for_instance(alice, INSTANCE, "proj-a",
                                         [{"uuid": net["id"]}, {"port": mine["id"]}], "h1")
    made = vifs[0]["id"]
    # No vifs passed: the ports themselves remember who made them.
    released = service.deallocate_for_instance(admin, INSTANCE)
    assert released == {"deleted": [made], "detached": [mine["id"]]}
    with pytest.raises(exception.PortNotFound):
        service.get_port(admin, made)
    assert service.get_port(admin, mine["id"])["device_id"] == ""


def test_audit_lists_server_ports_with_their_hosts(service, admin, alice, make_network):
    net, _ = make_network("10.1.0.0/24")
    service.create_port(alice, {"network_id": net["id"], "name": "not-a-server-port"})
    (vif,) = service.allocate_for_instance(alice, INSTANCE, "proj-a", [{"uuid": net["id"]}],
                                           "host1")
    service.create_binding(admin, vif["id"], "host2")
    report = service.audit_ports(admin)
    assert report == [{"id": vif["id"], "device_id": INSTANCE, "host": "host1",
                       "inactive_hosts": ["host2"], "network_id": net["id"],
                       "project_id": "proj-a", "status": "ACTIVE"}]
    with pytest.raises(exc.PolicyNotAuthorized):
        service.audit_ports(alice)


def test_results_are_plain_json(service, admin):
    ctx = RequestContext.from_dict(json.loads(json.dumps(admin.to_dict())))
    net = service.ensure_default_network(ctx)
    assert json.loads(json.dumps(net)) == net
