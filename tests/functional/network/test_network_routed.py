"""Segments and the routed network of a running cloud, through the Neutron API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

NET = "/network/v2.0"
COMPUTE = "/compute/v2.1"
ADMIN = "transcell-admin"
USER = "transcell-demo"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[CloudProcess]:
    state_dir = str(tmp_path_factory.mktemp("routed"))
    proc = start_cloud(state_dir)
    try:
        yield CloudProcess(state_dir, proc.port)
    finally:
        stop_cloud(proc)


def _get(cloud: CloudProcess, path: str, cloud_name: str = ADMIN) -> dict:
    resp = cloud.request("GET", f"{NET}{path}", cloud=cloud_name)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _routed(cloud: CloudProcess) -> dict:
    (net,) = _get(cloud, "/networks?name=routed")["networks"]
    return net


def _segment_subnets(cloud: CloudProcess) -> dict[str, dict]:
    """Each cell's subnet of the routed network, by cell name."""
    net = _routed(cloud)
    segments = _get(cloud, f"/segments?network_id={net['id']}")["segments"]
    subnets = _get(cloud, f"/subnets?network_id={net['id']}")["subnets"]
    found = {}
    for segment in segments:
        (cell,) = segment["transcell:cells"]
        found[cell] = next(sub for sub in subnets if sub["segment_id"] == segment["id"])
    return found


def _error(resp, status: int, kind: str | None = None) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()["NeutronError"]
    if kind:
        assert body["type"] == kind, body
    return body["message"]


def test_routed_network_has_one_segment_per_cell(cloud):
    net = _routed(cloud)
    assert net["shared"] is True and net["l2_adjacency"] is False
    assert len(net["segments"]) == 2
    assert {s["provider:physical_network"] for s in net["segments"]} == {"cell1", "cell2"}
    segments = _get(cloud, f"/segments?network_id={net['id']}")["segments"]
    assert sorted((s["name"], s["transcell:cells"]) for s in segments) == [
        ("cell1", ["cell1"]), ("cell2", ["cell2"])]
    cidrs = {cell: sub["cidr"] for cell, sub in _segment_subnets(cloud).items()}
    assert cidrs == {"cell1": "10.10.1.0/24", "cell2": "10.10.2.0/24"}
    # users see the network but neither its segments nor the segment API's objects
    (seen,) = _get(cloud, "/networks?name=routed", USER)["networks"]
    assert "segments" not in seen and "provider:network_type" not in seen
    assert _get(cloud, "/segments", USER)["segments"] == []
    assert "segment" in {e["alias"] for e in _get(cloud, "/extensions")["extensions"]}
    (private,) = _get(cloud, "/networks?name=private")["networks"]
    assert private["l2_adjacency"] is True and "segments" not in private


def test_segment_crud_and_errors(cloud):
    net = cloud.request("POST", f"{NET}/networks", json={"network": {"name": "segd"}}).json()
    net_id = net["network"]["id"]
    body = {"segment": {"network_id": net_id, "network_type": "vlan",
                        "physical_network": "rack9", "segmentation_id": 77,
                        "name": "s1", "transcell:cells": ["cell1"]}}
    made = cloud.request("POST", f"{NET}/segments", json=body)
    assert made.status_code == 201, made.text
    segment = made.json()["segment"]
    assert (segment["segmentation_id"], segment["transcell:cells"]) == (77, ["cell1"])
    sid = segment["id"]

    # the same wire twice, bad types, unknown cells, a user: refused, nothing made
    _error(cloud.request("POST", f"{NET}/segments", json=body), 409)
    bad = {"segment": {"network_id": net_id, "network_type": "token-ring"}}
    _error(cloud.request("POST", f"{NET}/segments", json=bad), 400)
    flat = {"segment": {"network_id": net_id, "network_type": "flat"}}
    assert "physical_network" in _error(cloud.request("POST", f"{NET}/segments",
                                                      json=flat), 400)
    unknown = {"segment": {"network_id": net_id, "network_type": "vxlan",
                           "transcell:cells": ["cell7"]}}
    assert "cell7" in _error(cloud.request("POST", f"{NET}/segments", json=unknown), 400)
    _error(cloud.request("POST", f"{NET}/segments", cloud=USER, json={"segment": {
        "network_id": _routed(cloud)["id"], "network_type": "vxlan"}}), 403)
    _error(cloud.request("GET", f"{NET}/segments/{sid}", cloud=USER), 404, "SegmentNotFound")
    assert [s["id"] for s in _get(cloud, f"/segments?network_id={net_id}")["segments"]] \
        == [sid]

    changed = cloud.request("PUT", f"{NET}/segments/{sid}", json={"segment": {
        "name": "renamed", "description": "rack 9", "transcell:cells": ["cell1", "cell2"]}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["segment"]["name"] == "renamed"
    assert changed.json()["segment"]["transcell:cells"] == ["cell1", "cell2"]
    _error(cloud.request("PUT", f"{NET}/segments/{sid}", json={"segment": {
        "network_type": "flat"}}), 400)

    # a network with segments: every subnet names one; a used segment stays
    plain = {"subnet": {"network_id": net_id, "cidr": "192.168.70.0/24", "ip_version": 4}}
    _error(cloud.request("POST", f"{NET}/subnets", json=plain), 400,
           "SubnetsNotAllAssociatedWithSegments")
    plain["subnet"]["segment_id"] = sid
    sub = cloud.request("POST", f"{NET}/subnets", json=plain)
    assert sub.status_code == 201 and sub.json()["subnet"]["segment_id"] == sid
    foreign = {"subnet": {"network_id": _routed(cloud)["id"], "cidr": "10.20.0.0/24",
                          "ip_version": 4, "segment_id": sid}}
    _error(cloud.request("POST", f"{NET}/subnets", json=foreign), 400, "NetworkIdsDontMatch")
    _error(cloud.request("DELETE", f"{NET}/segments/{sid}"), 409, "SegmentInUse")
    assert cloud.request("DELETE", f"{NET}/subnets/{sub.json()['subnet']['id']}"
                         ).status_code == 204
    assert cloud.request("DELETE", f"{NET}/segments/{sid}").status_code == 204
    _error(cloud.request("GET", f"{NET}/segments/{sid}"), 404, "SegmentNotFound")
    assert cloud.request("DELETE", f"{NET}/networks/{net_id}").status_code == 204


def test_port_address_follows_the_binding_hosts_cell(cloud):
    routed = _routed(cloud)
    subnets = _segment_subnets(cloud)
    made = cloud.request("POST", f"{NET}/ports", cloud=USER,
                         json={"port": {"network_id": routed["id"], "name": "p1"}})
    assert made.status_code == 201, made.text
    port = made.json()["port"]
    assert port["ip_allocation"] == "deferred" and port["fixed_ips"] == []

    bound = cloud.request("PUT", f"{NET}/ports/{port['id']}",
                          json={"port": {"binding:host_id": "cell1-host1"}})
    assert bound.status_code == 200, bound.text
    (ip,) = bound.json()["port"]["fixed_ips"]
    assert ip["subnet_id"] == subnets["cell1"]["id"] and ip["ip_address"].startswith("10.10.1.")

    other = cloud.request("POST", f"{NET}/ports", json={"port": {
        "network_id": routed["id"], "binding:host_id": "cell2-host1"}}).json()["port"]
    assert other["fixed_ips"][0]["subnet_id"] == subnets["cell2"]["id"]

    # a cell1 address cannot be bound in cell2: 409 naming host, cell and network
    refused = cloud.request("PUT", f"{NET}/ports/{port['id']}",
                            json={"port": {"binding:host_id": "cell2-host2"}})
    message = _error(refused, 409, "HostNotCompatibleWithFixedIps")
    assert "cell2-host2" in message and "cell2" in message and routed["id"] in message
    after = _get(cloud, f"/ports/{port['id']}")["port"]
    assert after["binding:host_id"] == "cell1-host1"
    assert after["fixed_ips"] == bound.json()["port"]["fixed_ips"]
    assert after["revision_number"] == bound.json()["port"]["revision_number"]

    # a host no cell has: no segment reaches it, no port is made
    lost = cloud.request("POST", f"{NET}/ports", json={"port": {
        "network_id": routed["id"], "name": "lost", "binding:host_id": "nowhere"}})
    _error(lost, 409, "HostNotConnectedToAnySegment")
    assert _get(cloud, "/ports?name=lost")["ports"] == []


def test_port_bindings_api_checks_the_segment(cloud):
    routed = _routed(cloud)
    port = cloud.request("POST", f"{NET}/ports", json={"port": {
        "network_id": routed["id"], "device_owner": "compute:nova", "device_id": "vm-x",
        "binding:host_id": "cell2-host1"}}).json()["port"]
    refused = cloud.request("POST", f"{NET}/ports/{port['id']}/bindings",
                            json={"binding": {"host": "cell1-host2"}})
    _error(refused, 409, "HostNotCompatibleWithFixedIps")
    assert [b["host"] for b in _get(cloud, f"/ports/{port['id']}/bindings")["bindings"]] \
        == ["cell2-host1"]
    same_cell = cloud.request("POST", f"{NET}/ports/{port['id']}/bindings",
                              json={"binding": {"host": "cell2-host2"}})
    assert same_cell.status_code == 201, same_cell.text
    assert same_cell.json()["binding"]["status"] == "INACTIVE"


def _image(cloud: CloudProcess) -> str:
    resp = cloud.request("GET", "/image/v2/images?name=transcell-base")
    return resp.json()["images"][0]["id"]


@pytest.mark.parametrize("cell", ["cell1", "cell2"])
def test_server_on_routed_gets_an_address_of_its_hosts_cell(cloud, cell):
    routed = _routed(cloud)
    body = {"server": {"name": f"on-{cell}", "flavorRef": "1", "imageRef": _image(cloud),
                       "networks": [{"uuid": routed["id"]}], "host": f"{cell}-host1"}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", json=body, version="2.74")
    assert resp.status_code == 202, resp.text
    server = cloud.wait_status(resp.json()["server"]["id"], "ACTIVE")
    host = server["OS-EXT-SRV-ATTR:host"]
    assert host.startswith(f"{cell}-")
    (port,) = _get(cloud, f"/ports?device_id={server['id']}")["ports"]
    assert port["binding:host_id"] == host
    (ip,) = port["fixed_ips"]
    assert ip["subnet_id"] == _segment_subnets(cloud)[cell]["id"]
    assert [a["addr"] for a in server["addresses"]["routed"]] == [ip["ip_address"]]
    assert cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}").status_code == 204
    cloud.wait_gone(server["id"])
    assert _get(cloud, f"/ports?device_id={server['id']}")["ports"] == []


def test_openstacksdk_reads_and_manages_segments(cloud):
    conn = cloud.sdk(ADMIN)
    routed = conn.network.find_network("routed")
    found = sorted(s.name for s in conn.network.segments(network_id=routed.id))
    assert found == ["cell1", "cell2"]
    net = conn.network.create_network(name="sdk-seg")
    made = conn.network.create_segment(network_id=net.id, network_type="vxlan", name="sdk")
    assert made.segmentation_id is not None
    assert conn.network.update_segment(made, description="d").description == "d"
    conn.network.delete_segment(made, ignore_missing=False)
    assert conn.network.find_segment("sdk", network_id=net.id) is None
    conn.network.delete_network(net, ignore_missing=False)
