"""The same flows through openstacksdk's proxies, at the microversions it negotiates."""

from __future__ import annotations


def test_sdk_builds_and_deletes_a_server(cloud):
    conn = cloud.sdk("transcell-demo")
    image = conn.image.find_image("transcell-base")
    flavor = conn.compute.find_flavor("m1.tiny")
    network = conn.network.find_network("private")
    server = conn.compute.create_server(name="sdk-server", image_id=image.id,
                                        flavor_id=flavor.id, networks=[{"uuid": network.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=0.5)
    assert server.flavor.original_name == "m1.tiny"
    assert server.flavor.ram == 512
    assert server.image.id == image.id
    assert "private" in server.addresses
    assert conn.compute.find_server("sdk-server").id == server.id
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=120, interval=0.5)
    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=0.5)
    actions = list(conn.compute.server_actions(server))
    assert {a.action for a in actions} == {"create", "stop", "start"}
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120, interval=0.5)


def test_sdk_operator_views(cloud):
    conn = cloud.sdk("transcell-admin")
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert len(hypervisors) == 4
    services = [s for s in conn.compute.services() if s.binary == "nova-compute"]
    assert len(services) == 4 and all(s.state == "up" for s in services)
    zones = {z.name for z in conn.compute.availability_zones()}
    assert {"cell1", "cell2"} <= zones
    limits = conn.compute.get_limits()
    assert limits.absolute.instances >= 1
    assert list(conn.compute.migrations()) == []


def test_sdk_keypair_and_server_with_key(cloud):
    conn = cloud.sdk("transcell-demo")
    keypair = conn.compute.create_keypair(name="sdk-key")
    assert keypair.private_key and keypair.fingerprint
    try:
        assert conn.compute.find_keypair("sdk-key").fingerprint == keypair.fingerprint
    finally:
        conn.compute.delete_keypair("sdk-key")
    assert conn.compute.find_keypair("sdk-key", ignore_missing=True) is None
