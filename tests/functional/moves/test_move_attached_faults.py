"""Faults and kills in the steps that carry volumes and ports.

Every server here has a data volume on ``local-cell1`` (migrated on the way
to cell2) and its port on the ``routed`` network (re-addressed there). A
failure injected after a step, or the whole cloud killed there and
restarted, leaves each server either back where it was with its old
address and its volume's bytes on the old backend, or (past the point of no
return) moved with both, and the audit clean.
"""

from __future__ import annotations

import ipaddress
import os

import movehelpers as mh
import pytest
import volhelpers as vh
from cloudclients import CloudProcess, start_cloud, stop_cloud
from test_kill_matrix import hold, kill_and_restart, wait_reached

from transcell.move import plan

#: The fault and kill matrix of the volume and port steps: in `make test`, not in
#: `make test-fast`.
pytestmark = pytest.mark.slow

MOVE = {"resize": {"flavorRef": "21", "transcell:readdress_ports": True}}
#: The steps after which a kill lands; "allocations" and "target_db" touch neither
#: volumes nor ports and are covered by the kill matrix.
KILL_AFTER = ("prep_dest", "prep_source", "volumes", "finish_dest", "flip")


def attached_server(cloud, name: str) -> dict:
    net = vh.routed(cloud)
    sid = vh.boot_on(cloud, name, net["id"])["id"]
    vid = vh.create_volume(cloud, f"{name}-data", "local-cell1")["id"]
    vh.attach(cloud, sid, vid)
    written = vh.write_pattern(vh.volume_file(cloud, vid, "local-cell1"), name.encode())
    port = vh.port_of(cloud, sid)
    return {"id": sid, "volume": vid, "written": written, "port": port,
            "source": mh.host_of(mh.server(cloud, sid)), "network": net["id"]}


def in_cell(cloud, network_id: str, ip: str, cell: str) -> bool:
    segments = {s["id"]: s["transcell:cells"] for s in cloud.request(
        "GET", f"/network/v2.0/segments?network_id={network_id}").json()["segments"]}
    subnets = cloud.request("GET", f"/network/v2.0/subnets?network_id={network_id}").json()
    for subnet in subnets["subnets"]:
        if ipaddress.ip_address(ip) in ipaddress.ip_network(subnet["cidr"]):
            return cell in segments[subnet["segment_id"]]
    return False


def assert_undone(cloud, srv: dict, why: str) -> None:
    found = mh.wait_task_done(cloud, srv["id"])
    assert found["status"] == "ACTIVE" and mh.host_of(found) == srv["source"], why
    vol = vh.wait_volume(cloud, srv["volume"], "in-use")
    assert vh.backend_of(vol) == "local-cell1", why
    vh.assert_pattern(vh.volume_file(cloud, srv["volume"], "local-cell1"), srv["written"])
    assert not os.path.exists(vh.volume_file(cloud, srv["volume"], "local-cell2")), why
    assert vh.attachment_hosts(cloud, srv["volume"]) == [srv["source"]], why
    port = vh.port_of(cloud, srv["id"])
    assert port["fixed_ips"] == srv["port"]["fixed_ips"], why
    assert port["binding:host_id"] == srv["source"], why


def assert_moved_and_confirmed(cloud, srv: dict, why: str) -> None:
    found = mh.wait_status(cloud, srv["id"], "VERIFY_RESIZE")
    dst = mh.host_of(found)
    assert mh.cell_of_host(dst) == "cell2", why
    mh.action(cloud, srv["id"], {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(cloud, srv["id"], "ACTIVE")
    vol = vh.wait_volume(cloud, srv["volume"], "in-use")
    assert vh.backend_of(vol) == "local-cell2", why
    vh.assert_pattern(vh.volume_file(cloud, srv["volume"], "local-cell2"), srv["written"])
    assert not os.path.exists(vh.volume_file(cloud, srv["volume"], "local-cell1")), why
    port = vh.port_of(cloud, srv["id"])
    assert port["id"] == srv["port"]["id"] and port["mac_address"] == srv["port"]["mac_address"]
    assert in_cell(cloud, srv["network"], port["fixed_ips"][0]["ip_address"], "cell2"), why
    assert port["binding:host_id"] == dst, why


@pytest.fixture(scope="module")
def fcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("attachedfaults"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


@pytest.mark.parametrize("step", ["prep_dest", "prep_source", "volumes", "finish_dest"])
def test_a_fault_after_each_step_is_undone(fcloud, step):
    """prep_dest made the target's attachments, prep_source re-addressed the port,
    volumes migrated the volume, finish_dest attached it at the target: all undone."""
    srv = attached_server(fcloud, f"fault-{step}")
    with open(os.path.join(mh.fault_dir(fcloud), step), "w") as fh:
        fh.write(f"injected failure after {step}")
    mh.action(fcloud, srv["id"], MOVE, cloud_name=mh.USER)
    mh.wait_migration(fcloud, srv["id"], "error")
    assert_undone(fcloud, srv, step)
    mh.assert_audit_clean(fcloud)


def test_kill_after_each_step_then_restart(tmp_path):
    assert set(KILL_AFTER) <= set(plan.STEP_NAMES)
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        servers = {step: attached_server(cloud, f"kill-{step}") for step in KILL_AFTER}
        paths = [hold(cloud, step, srv["id"]) for step, srv in servers.items()]
        for srv in servers.values():
            mh.action(cloud, srv["id"], MOVE, cloud_name=mh.USER)
        wait_reached(paths)
        proc, cloud = kill_and_restart(proc, state, paths)
        for step, srv in servers.items():
            if step == "flip":  # past the point of no return: finished
                assert_moved_and_confirmed(cloud, srv, step)
            else:
                assert mh.wait_migration(cloud, srv["id"], "error")
                assert_undone(cloud, srv, step)
        mh.assert_audit_clean(cloud)
    finally:
        stop_cloud(proc)
