"""Addresses: pools around the gateway, first free address, exhaustion, races."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest

from transcell.context import RequestContext
from transcell.network import NetworkService, ipam
from transcell.network import exceptions as exc
from transcell.network.models import Subnet


def _ip(port: dict) -> str:
    return port["fixed_ips"][0]["ip_address"]


def test_default_pools_skip_network_broadcast_and_gateway():
    net = ipaddress.ip_network("10.0.0.0/24")
    assert ipam.default_pools(net, "10.0.0.1") == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert ipam.default_pools(net, "10.0.0.100") == [
        {"start": "10.0.0.1", "end": "10.0.0.99"}, {"start": "10.0.0.101", "end": "10.0.0.254"}]
    assert ipam.default_pools(net, None) == [{"start": "10.0.0.1", "end": "10.0.0.254"}]


def test_pool_validation_names_the_problem():
    net = ipaddress.ip_network("10.0.0.0/24")
    with pytest.raises(exc.InvalidAllocationPool):
        ipam.validate_pools(net, [{"start": "10.0.0.20", "end": "10.0.0.10"}], None)
    with pytest.raises(exc.InvalidAllocationPool):
        ipam.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.1.10"}], None)
    with pytest.raises(exc.OverlappingAllocationPools):
        ipam.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.0.10"},
                                  {"start": "10.0.0.5", "end": "10.0.0.20"}], None)
    with pytest.raises(exc.GatewayConflictWithAllocationPools):
        ipam.validate_pools(net, [{"start": "10.0.0.1", "end": "10.0.0.10"}], "10.0.0.1")


def test_cidr_with_host_bits_is_refused_with_the_right_cidr():
    with pytest.raises(exc.InvalidInput, match="use '10.0.0.0/24' instead"):
        ipam.parse_cidr("10.0.0.7/24")
    with pytest.raises(exc.InvalidInput, match="does not match the ip_version"):
        ipam.parse_cidr("fd00::/64", 4)


def test_candidates_never_offer_the_gateway_even_inside_a_pool():
    subnet = Subnet(ip_version=4, gateway_ip="10.0.0.3",
                    allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.5"}])
    assert list(ipam.candidates(subnet, used={"10.0.0.4"})) == ["10.0.0.2", "10.0.0.5"]


def test_addresses_are_handed_out_in_order_skipping_the_gateway(
        service: NetworkService, admin: RequestContext, make_network):
    net, sub = make_network("10.9.0.0/29", gateway_ip="10.9.0.3")
    assert sub["allocation_pools"] == [{"start": "10.9.0.1", "end": "10.9.0.2"},
                                       {"start": "10.9.0.4", "end": "10.9.0.6"}]
    ips = [_ip(service.create_port(admin, {"network_id": net["id"]})) for _ in range(4)]
    assert ips == ["10.9.0.1", "10.9.0.2", "10.9.0.4", "10.9.0.5"]


def test_a_freed_address_is_reused_first(service, admin, make_network):
    net, _sub = make_network()
    ports = [service.create_port(admin, {"network_id": net["id"]}) for _ in range(3)]
    service.delete_port(admin, ports[1]["id"])
    assert _ip(service.create_port(admin, {"network_id": net["id"]})) == _ip(ports[1])


def test_exhaustion_is_a_clear_conflict_and_leaves_no_port(service, admin, make_network):
    net, _sub = make_network("10.9.0.0/29")  # .2 to .6: five addresses
    for _ in range(5):
        service.create_port(admin, {"network_id": net["id"]})
    with pytest.raises(exc.IpAddressGenerationFailure, match=net["id"]):
        service.create_port(admin, {"network_id": net["id"], "name": "one-too-many"})
    assert service.list_ports(admin, {"name": "one-too-many"}) == []
    assert len(service.list_ports(admin, {"network_id": net["id"]})) == 5


def test_requested_addresses_are_checked(service, admin, make_network):
    net, sub = make_network("10.9.0.0/29")
    port = service.create_port(admin, {"network_id": net["id"],
                                       "fixed_ips": [{"ip_address": "10.9.0.5"}]})
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.9.0.5"}]
    with pytest.raises(exc.IpAddressAlreadyAllocated):
        service.create_port(admin, {"network_id": net["id"],
                                    "fixed_ips": [{"ip_address": "10.9.0.5"}]})
    with pytest.raises(exc.InvalidIpForSubnet):
        service.create_port(admin, {"network_id": net["id"],
                                    "fixed_ips": [{"subnet_id": sub["id"],
                                                   "ip_address": "10.9.0.1"}]})
    with pytest.raises(exc.InvalidIpForNetwork):
        service.create_port(admin, {"network_id": net["id"],
                                    "fixed_ips": [{"ip_address": "192.0.2.9"}]})
    assert len(service.list_ports(admin)) == 1


def test_a_stale_view_of_used_addresses_moves_on_to_the_next(
        engine_service: NetworkService, monkeypatch):
    """Another transaction took the address after we looked: the unique key says so,
    and only the savepoint of that one attempt is rolled back."""
    admin = RequestContext.admin()
    net = engine_service.create_network(admin, {"name": "stale"})
    engine_service.create_subnet(admin, {"network_id": net["id"], "cidr": "10.9.0.0/29",
                                         "ip_version": 4})
    first = engine_service.create_port(admin, {"network_id": net["id"]})
    monkeypatch.setattr(ipam, "used_addresses", lambda session, subnet_id: set())
    second = engine_service.create_port(admin, {"network_id": net["id"], "name": "second"})
    assert (_ip(first), _ip(second)) == ("10.9.0.2", "10.9.0.3")
    assert engine_service.get_port(admin, second["id"])["fixed_ips"] == second["fixed_ips"]


def test_concurrent_allocation_gives_unique_addresses(engine_service: NetworkService):
    admin = RequestContext.admin()
    net = engine_service.create_network(admin, {"name": "race"})
    engine_service.create_subnet(admin, {"network_id": net["id"], "cidr": "10.8.0.0/27",
                                         "ip_version": 4})

    def create(_n: int) -> str:
        return _ip(engine_service.create_port(admin, {"network_id": net["id"]}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        ips = list(pool.map(create, range(24)))
    assert len(set(ips)) == 24
    assert "10.8.0.1" not in ips
    assert {ipaddress.ip_address(ip) for ip in ips} <= set(
        ipaddress.ip_network("10.8.0.0/27").hosts())
