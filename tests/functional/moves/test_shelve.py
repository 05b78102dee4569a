"""Shelve, shelve-offload and unshelve across cells, end to end on a two-cell cloud.

A shelved server's disk goes into the global image store; offloaded, it holds no
host, no allocation and no disk anywhere, but keeps its ports; unshelved, into
its own cell or the other one, it is the same server (id, ports, bytes on disk),
its snapshot is gone and the audit is clean. A failure while unshelving leaves it
offloaded and unshelve-able again.
"""

from __future__ import annotations

import os

import movehelpers as mh
import pytest

from transcell.compute.virt import disk

COMPUTE = mh.COMPUTE
#: m1.small: no hardware-generation trait, so it fits the hosts of either cell
FLAVOR = "2"
PATTERNS = {
    0: b"shelved and back " * 8,
    5 * 1024 * 1024 + 11: os.urandom(8192),
    1024 ** 3 + 777: b"far into the disk" * 30,
}


def write_patterns(cloud, sid: str, host: str) -> None:
    path = mh.root_disk(cloud, sid, host)
    for offset, data in PATTERNS.items():
        disk.guest_write(path, offset, data)


def assert_patterns(cloud, sid: str, host: str) -> None:
    path = mh.root_disk(cloud, sid, host)
    for offset, data in PATTERNS.items():
        assert disk.guest_read(path, offset, len(data)) == data, offset


def ports_of(cloud, sid: str) -> dict[str, dict]:
    resp = cloud.request("GET", f"/network/v2.0/ports?device_id={sid}")
    assert resp.status_code == 200, resp.text
    return {p["id"]: p for p in resp.json()["ports"]}


def shelved_images(cloud, name: str) -> list[dict]:
    resp = cloud.request("GET", f"/image/v2/images?name={name}-shelved")
    assert resp.status_code == 200, resp.text
    return resp.json()["images"]


def other_cell(host: str) -> str:
    return "cell2" if mh.cell_of_host(host) == "cell1" else "cell1"


def shelve_to_offloaded(cloud, name: str) -> tuple[dict, dict[str, dict]]:
    """Boot, write known bytes, shelve: the server ends offloaded, its host freed."""
    srv = mh.boot(cloud, name, flavor=FLAVOR)
    sid, src = srv["id"], mh.host_of(srv)
    write_patterns(cloud, sid, src)
    ports = ports_of(cloud, sid)
    assert ports and all(p["binding:host_id"] == src for p in ports.values())
    mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    assert mh.host_of(found) is None
    assert found["OS-EXT-SRV-ATTR:hypervisor_hostname"] is None
    assert mh.consumer_allocations(cloud, sid) == {}
    assert sid not in mh.provider_allocations(cloud, src)
    where = mh.locate(cloud, sid)
    assert where["disks"] == [], where["disks"]
    assert [(r["cell"], r["hidden"]) for r in where["rows"]] == [(mh.cell_of_host(src), False)]
    images = shelved_images(cloud, name)
    assert [i["status"] for i in images] == ["active"], images
    assert images[0]["owner"] == found["tenant_id"]
    kept = ports_of(cloud, sid)
    assert set(kept) == set(ports)  # the same ports, unbound but kept
    for port_id, port in kept.items():
        assert port["mac_address"] == ports[port_id]["mac_address"]
        assert port["fixed_ips"] == ports[port_id]["fixed_ips"]
        assert not port["binding:host_id"]
    events = {e["event"]: e["result"] for e in mh.actions(cloud, sid)["shelve"]}
    assert events == {"compute_shelve_instance": "Success",
                      "compute_shelve_offload_instance": "Success"}
    mh.assert_audit_clean(cloud)
    return found | {"source_host": src}, ports


def assert_unshelved(cloud, sid: str, name: str, ports: dict[str, dict], cell: str) -> dict:
    found = mh.wait_status(cloud, sid, "ACTIVE")
    host = mh.host_of(found)
    assert mh.cell_of_host(host) == cell
    assert found["OS-EXT-AZ:availability_zone"] == cell
    assert_patterns(cloud, sid, host)
    where = mh.locate(cloud, sid)
    assert where["mapping"]["cell"] == cell
    assert [(r["cell"], r["hidden"]) for r in where["rows"]] == [(cell, False)]
    assert {d["host"] for d in where["disks"]} == {host}
    now = ports_of(cloud, sid)
    assert set(now) == set(ports)
    for port_id, port in now.items():
        assert port["mac_address"] == ports[port_id]["mac_address"]
        assert port["binding:host_id"] == host
        assert port["status"] == "ACTIVE"
    flavor = mh.flavor(cloud, FLAVOR)
    assert mh.provider_allocations(cloud, host)[sid] == mh.flavor_resources(flavor)
    assert shelved_images(cloud, name) == []  # the snapshot went with the unshelve
    assert "compute_unshelve_instance" in {e["event"] for e in mh.actions(cloud, sid)["unshelve"]}
    mh.assert_audit_clean(cloud)
    return found


def delete(cloud, sid: str) -> None:
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_unshelve_into_the_same_cell(mcloud):
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "shelf-same")
    home = mh.cell_of_host(srv["source_host"])
    mh.action(cloud, srv["id"], {"unshelve": {"availability_zone": home}}, cloud_name=mh.USER,
              version="2.77")
    assert_unshelved(cloud, srv["id"], "shelf-same", ports, home)
    delete(cloud, srv["id"])
    mh.assert_audit_clean(cloud)


def test_unshelve_into_the_other_cell_by_zone(mcloud):
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "shelf-away")
    away = other_cell(srv["source_host"])
    mh.action(cloud, srv["id"], {"unshelve": {"availability_zone": away}}, cloud_name=mh.USER,
              version="2.77")
    found = assert_unshelved(cloud, srv["id"], "shelf-away", ports, away)
    # and it is an ordinary server there: it can be shelved and brought home again
    mh.action(cloud, srv["id"], {"shelve": {}}, cloud_name=mh.USER)
    mh.wait_status(cloud, srv["id"], "SHELVED_OFFLOADED")
    home = mh.cell_of_host(srv["source_host"])
    mh.action(cloud, srv["id"], {"unshelve": {"availability_zone": home}}, version="2.77")
    assert_unshelved(cloud, srv["id"], "shelf-away", ports, home)
    assert found["id"] == srv["id"]
    delete(cloud, srv["id"])
    mh.assert_audit_clean(cloud)


def test_a_failed_spawn_leaves_the_server_offloaded(mcloud):
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "shelf-fault")
    sid = srv["id"]
    away = other_cell(srv["source_host"])
    armed = []
    for host in (f"{away}-host1", f"{away}-host2"):
        faults = os.path.join(cloud.state_dir, "hosts", host, "faults")
        os.makedirs(faults, exist_ok=True)
        armed.append(os.path.join(faults, "spawn"))
        with open(armed[-1], "w") as fh:
            fh.write(f"{host} cannot spawn")
    try:
        mh.action(cloud, sid, {"unshelve": {"availability_zone": away}}, version="2.77")
        found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
        assert len([p for p in armed if os.path.exists(p)]) == 1  # one host was tried
    finally:
        for path in armed:
            if os.path.exists(path):
                os.unlink(path)
    assert mh.host_of(found) is None
    assert mh.consumer_allocations(cloud, sid) == {}
    where = mh.locate(cloud, sid)
    assert where["mapping"]["cell"] == mh.cell_of_host(srv["source_host"])
    assert [(r["cell"], r["hidden"]) for r in where["rows"]] == [
        (mh.cell_of_host(srv["source_host"]), False)]
    assert where["disks"] == []
    assert all(not p["binding:host_id"] for p in ports_of(cloud, sid).values())
    assert [i["status"] for i in shelved_images(cloud, "shelf-fault")] == ["active"]
    events = {e["event"]: e["result"] for e in mh.actions(cloud, sid)["unshelve"]}
    assert events["compute_unshelve_instance"] == "Error"
    assert events["conductor_unshelve_instance"] == "Error"
    mh.assert_audit_clean(cloud)
    # nothing was lost: the same unshelve now succeeds, bytes intact
    mh.action(cloud, sid, {"unshelve": {"availability_zone": away}}, version="2.77")
    assert_unshelved(cloud, sid, "shelf-fault", ports, away)
    delete(cloud, sid)


def test_refusals(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "shelf-refusals", flavor=FLAVOR)
    sid = srv["id"]
    # unshelve of a server that is not shelved, shelveOffload of one not shelved: 409
    mh.action(cloud, sid, {"unshelve": None}, expect=409)
    mh.action(cloud, sid, {"shelveOffload": None}, expect=409)
    # bad bodies: 400, nothing changes
    mh.action(cloud, sid, {"shelve": {"force": True}}, expect=400)
    # policy: offload is the administrator's
    with open(os.path.join(cloud.state_dir, "policy.yaml"), "w") as fh:
        fh.write('"os_compute_api:os-shelve:shelve": "!"\n')
    try:
        import time
        deadline = time.monotonic() + 10
        while True:
            resp = cloud.request("POST", f"{COMPUTE}/servers/{sid}/action", cloud=mh.USER,
                                 json={"shelve": None})
            if resp.status_code == 403 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert resp.status_code == 403, resp.text
    finally:
        with open(os.path.join(cloud.state_dir, "policy.yaml"), "w") as fh:
            fh.write("{}\n")
    assert mh.server(cloud, sid)["status"] == "ACTIVE"
    resp = cloud.request("POST", f"{COMPUTE}/servers/{sid}/action", cloud=mh.USER,
                         json={"shelveOffload": None})
    assert resp.status_code == 403, resp.text
    mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
    mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    for body, version, status in (
            ({"unshelve": {"availability_zone": 5}}, "2.77", 400),
            ({"unshelve": {"availability_zone": "cell1", "host": "x"}}, "2.77", 400),
            ({"unshelve": {"availability_zone": "nowhere"}}, "2.77", 400),
            ({"unshelve": {"availability_zone": ""}}, "2.77", 400),
            ({"unshelve": "now"}, "2.1", 400),
            ({"shelve": None}, None, 409),
            ({"shelveOffload": None}, None, 409)):
        mh.action(cloud, sid, body, expect=status, version=version)
    found = mh.server(cloud, sid)
    assert found["status"] == "SHELVED_OFFLOADED" and found["OS-EXT-STS:task_state"] is None
    mh.action(cloud, sid, {"unshelve": {}}, cloud_name=mh.USER)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)
    delete(cloud, sid)


def test_delete_an_offloaded_server(mcloud):
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "shelf-delete")
    delete(cloud, srv["id"])
    assert ports_of(cloud, srv["id"]) == {}
    assert shelved_images(cloud, "shelf-delete") == []
    mh.assert_audit_clean(cloud)


@pytest.mark.parametrize("command", ["openstack"])
def test_openstack_cli_shelve_and_unshelve_into_the_other_cell(mcloud, command):
    cloud = mcloud
    srv = mh.boot(cloud, "shelf-cli", flavor=FLAVOR)
    sid, src = srv["id"], mh.host_of(srv)
    write_patterns(cloud, sid, src)
    ports = ports_of(cloud, sid)
    cloud.openstack("server", "shelve", "--wait", sid, cloud=mh.USER)
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    assert mh.host_of(found) is None
    away = other_cell(src)
    cloud.openstack("--os-compute-api-version", "2.77", "server", "unshelve",
                    "--availability-zone", away, "--wait", sid, cloud=mh.USER)
    shown = cloud.openstack_json("server", "show", sid)
    assert shown["status"] == "ACTIVE"
    assert shown["OS-EXT-AZ:availability_zone"] == away
    assert_unshelved(cloud, sid, "shelf-cli", ports, away)
    delete(cloud, sid)


def served_version(cloud) -> tuple[int, int]:
    found = cloud.request("GET", "/compute/v2.1/").json()["version"]["version"]
    major, minor = found.split(".")
    return int(major), int(minor)


def test_unshelve_onto_a_host_of_the_other_cell_at_291(mcloud):
    """2.91: the administrator names the host (the member policy may not), and a null
    zone unpins the server. Runs once the cloud serves 2.91."""
    cloud = mcloud
    if served_version(cloud) < (2, 91):
        pytest.skip("the compute API does not serve microversion 2.91 yet")
    srv, ports = shelve_to_offloaded(cloud, "shelf-host")
    sid = srv["id"]
    away = other_cell(srv["source_host"])
    target = f"{away}-host2"
    resp = cloud.request("POST", f"{COMPUTE}/servers/{sid}/action", cloud=mh.USER,
                         json={"unshelve": {"host": target}}, version="2.91")
    assert resp.status_code == 403, resp.text
    mh.action(cloud, sid, {"unshelve": {"host": "no-such-host"}}, version="2.91", expect=400)
    mh.action(cloud, sid, {"unshelve": {"host": target, "availability_zone": None}},
              version="2.91")
    found = assert_unshelved(cloud, sid, "shelf-host", ports, away)
    assert mh.host_of(found) == target
    delete(cloud, sid)


def test_shelve_a_paused_server_and_a_locked_one(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "shelf-paused", flavor=FLAVOR)
    sid = srv["id"]
    mh.action(cloud, sid, {"lock": None}, cloud_name=mh.USER)
    mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER, expect=409)
    mh.action(cloud, sid, {"unlock": None}, cloud_name=mh.USER)
    mh.action(cloud, sid, {"pause": None}, cloud_name=mh.USER)
    mh.wait_status(cloud, sid, "PAUSED")
    mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    assert mh.host_of(found) is None
    mh.action(cloud, sid, {"unshelve": None}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert found["OS-EXT-STS:power_state"] == 1
    mh.assert_audit_clean(cloud)
    delete(cloud, sid)
