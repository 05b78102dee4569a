"""Port bindings: one active at a time, an inactive one waiting for a move."""

from __future__ import annotations

import pytest

from transcell.network import NetworkService
from transcell.network import exceptions as exc

INSTANCE = "0b7a3c55-8f1e-4f43-9d1a-4a6f3c2b1e99"


@pytest.fixture
def port(service: NetworkService, admin, alice, make_network) -> dict:
    net, _ = make_network()
    (vif,) = service.allocate_for_instance(alice, INSTANCE, "proj-a",
                                           [{"uuid": net["id"]}], "source")
    return service.get_port(admin, vif["id"])


def _statuses(service, admin, port_id) -> dict[str, str]:
    return {b["host"]: b["status"] for b in service.list_bindings(admin, port_id)}


def test_inactive_binding_then_activate_moves_the_port(service, admin, port):
    created = service.create_binding(admin, port["id"], "target")
    assert created["status"] == "INACTIVE" and created["vif_type"] == "ovs"
    assert _statuses(service, admin, port["id"]) == {"source": "ACTIVE", "target": "INACTIVE"}
    assert service.get_port(admin, port["id"])["binding:host_id"] == "source"

    activated = service.activate_binding(admin, port["id"], "target")
    assert activated["status"] == "ACTIVE"
    assert _statuses(service, admin, port["id"]) == {"source": "INACTIVE", "target": "ACTIVE"}
    moved = service.get_port(admin, port["id"])
    assert (moved["binding:host_id"], moved["status"]) == ("target", "ACTIVE")

    service.delete_binding(admin, port["id"], "source")
    assert _statuses(service, admin, port["id"]) == {"target": "ACTIVE"}


def test_revert_reactivates_the_source(service, admin, port):
    service.create_binding(admin, port["id"], "target")
    service.activate_binding(admin, port["id"], "target")
    service.activate_binding(admin, port["id"], "source")
    service.delete_binding(admin, port["id"], "target")
    assert _statuses(service, admin, port["id"]) == {"source": "ACTIVE"}


def test_binding_mistakes_are_named(service, admin, alice, port):
    with pytest.raises(exc.PortBindingAlreadyExists):
        service.create_binding(admin, port["id"], "source")
    with pytest.raises(exc.PortBindingAlreadyActive):
        service.activate_binding(admin, port["id"], "source")
    with pytest.raises(exc.PortBindingNotFound):
        service.activate_binding(admin, port["id"], "nowhere")
    with pytest.raises(exc.PortBindingNotFound):
        service.delete_binding(admin, port["id"], "nowhere")
    with pytest.raises(exc.PolicyNotAuthorized):
        service.create_binding(alice, port["id"], "target")
    assert _statuses(service, admin, port["id"]) == {"source": "ACTIVE"}


def test_only_compute_ports_get_extra_bindings(service, admin, make_network):
    net, _ = make_network("10.7.0.0/24")
    plain = service.create_port(admin, {"network_id": net["id"]})
    with pytest.raises(exc.PortBindingError):
        service.create_binding(admin, plain["id"], "h1")


def test_first_binding_of_an_unbound_port_is_active_the_neutron_way(service, admin, port):
    service.unbind_port(admin, port["id"])
    assert service.get_port(admin, port["id"])["status"] == "DOWN"
    made = service.create_binding(admin, port["id"], "h2", active=None)
    assert made["status"] == "ACTIVE"
    assert service.get_port(admin, port["id"])["binding:host_id"] == "h2"


def test_bind_port_replaces_the_active_binding_and_keeps_inactive_ones(service, admin, port):
    service.create_binding(admin, port["id"], "target")
    bound = service.bind_port(admin, port["id"], "elsewhere", vnic_type="direct")
    assert bound["binding:host_id"] == "elsewhere"
    assert bound["binding:vnic_type"] == "direct"
    assert _statuses(service, admin, port["id"]) == {"target": "INACTIVE",
                                                     "elsewhere": "ACTIVE"}


def test_deleting_the_active_binding_leaves_the_port_down(service, admin, port):
    service.delete_binding(admin, port["id"], "source")
    unbound = service.get_port(admin, port["id"])
    assert (unbound["status"], unbound["binding:host_id"], unbound["binding:vif_type"]) == (
        "DOWN", "", "unbound")
