"""openstacksdk against the network API on a real socket: what `openstack` relies on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from transcell.api.network import make_app
from transcell.network import NetworkService
from transcell.wsgi.server import HTTPService, PrefixDispatcher

openstack = pytest.importorskip("openstack")


@pytest.fixture
def endpoint(service: NetworkService, authenticate) -> Iterator[str]:
    server = HTTPService(PrefixDispatcher({"/network": make_app(service, authenticate)}),
                         "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}/network"
    server.stop()


def connect(endpoint: str, token: str):
    return openstack.connection.Connection(
        auth_type="admin_token", auth={"token": token, "endpoint": endpoint},
        network_endpoint_override=endpoint, region_name="RegionOne")


def test_sdk_finds_creates_pages_and_reads_errors(endpoint: str):
    conn = connect(endpoint, "alice:proj-a:member")
    net = conn.network.find_network("private")
    assert net is not None and net.is_shared
    port = conn.network.create_port(network_id=net.id, name="sdk-port", device_id="vm-9")
    assert port.mac_address.startswith("fa:16:3e:")
    assert port.fixed_ips[0]["ip_address"] == "10.0.0.2"
    assert [p.id for p in conn.network.ports(device_id="vm-9")] == [port.id]
    assert conn.network.find_port("sdk-port").id == port.id
    assert conn.network.find_security_group("default").name == "default"
    assert conn.network.find_extension("binding-extended") is not None

    for name in ("a", "b", "c"):
        conn.network.create_network(name=name)
    # limit=1 makes the SDK follow four "next" links to the end.
    assert len(list(conn.network.networks(limit=1))) == 4

    with pytest.raises(openstack.exceptions.NotFoundException, match="could not be found"):
        conn.network.get_network("private")
    busy = conn.network.create_network(name="busy")
    conn.network.create_subnet(network_id=busy.id, cidr="192.168.9.0/24", ip_version=4)
    conn.network.create_port(network_id=busy.id)
    with pytest.raises(openstack.exceptions.ConflictException, match="ports still in use"):
        conn.network.delete_network(busy.id, ignore_missing=False)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        conn.network.delete_network(net.id, ignore_missing=False)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        conn.network.create_network(name="s", shared=True)
    conn.network.delete_port(port)
    assert conn.network.find_port("sdk-port") is None
