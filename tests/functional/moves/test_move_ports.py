"""Servers on the routed network (one segment per cell) moving between cells.

Without re-addressing such a move is refused before the guest stops, with
the reason, exactly as its move plan says; with it the port keeps its id and
MAC and gets an address of the target cell's segment, which a revert gives
back.
"""

from __future__ import annotations

import ipaddress
import json

import movehelpers as mh
import pytest
import volhelpers as vh
from cloudclients import CloudProcess, start_cloud, stop_cloud

TO_CELL2 = {"resize": {"flavorRef": "21"}}


@pytest.fixture(scope="module")
def pcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("moveports"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


def address_cell(cloud, network_id: str, ip: str) -> str:
    """The cell whose segment's subnet holds ``ip``."""
    subnets = cloud.request("GET", f"/network/v2.0/subnets?network_id={network_id}").json()
    segments = {s["id"]: s for s in cloud.request(
        "GET", f"/network/v2.0/segments?network_id={network_id}").json()["segments"]}
    for subnet in subnets["subnets"]:
        if ipaddress.ip_address(ip) in ipaddress.ip_network(subnet["cidr"]):
            return segments[subnet["segment_id"]]["transcell:cells"][0]
    raise AssertionError(f"{ip} is in no subnet of {network_id}")


def plan(cloud, body: dict) -> dict:
    resp = cloud.request("POST", f"{mh.COMPUTE}/os-transcell-move-plans",
                         json={"move_plan": body})
    assert resp.status_code == 200, resp.text
    return resp.json()["move_plans"][0]


def test_move_off_the_routed_segment_is_refused_before_the_guest_stops(pcloud):
    net = vh.routed(pcloud)
    sid = vh.boot_on(pcloud, "routed-refused", net["id"])["id"]
    port = vh.port_of(pcloud, sid)
    src = mh.host_of(mh.server(pcloud, sid))
    predicted = plan(pcloud, {"server_id": sid, "flavorRef": "21"})
    assert not predicted["movable"]
    assert [p["action"] for p in predicted["ports"]] == ["blocked"]
    assert any("segment" in reason for reason in predicted["blockers"])

    mh.action(pcloud, sid, TO_CELL2, cloud_name=mh.USER)
    mh.wait_migration(pcloud, sid, "error")
    found = mh.wait_task_done(pcloud, sid)
    assert found["status"] == "ACTIVE" and mh.host_of(found) == src
    assert "segment" in json.dumps(mh.server(pcloud, sid).get("fault") or
                                   mh.actions(pcloud, sid))
    after = vh.port_of(pcloud, sid)
    assert after["fixed_ips"] == port["fixed_ips"] and after["binding:host_id"] == src
    # the guest never stopped: the step that stops it never ran
    events = [e["event"] for action in mh.actions(pcloud, sid).values() for e in action]
    assert "compute_prep_snapshot_based_resize_at_source" not in events, events
    mh.assert_audit_clean(pcloud)


def test_readdressing_keeps_the_port_and_revert_gives_the_address_back(pcloud):
    net = vh.routed(pcloud)
    sid = vh.boot_on(pcloud, "routed-readdress", net["id"])["id"]
    before = vh.port_of(pcloud, sid)
    old_ip = before["fixed_ips"][0]["ip_address"]
    assert address_cell(pcloud, net["id"], old_ip) == "cell1"
    predicted = plan(pcloud, {"server_id": sid, "flavorRef": "21", "readdress_ports": True})
    assert predicted["movable"] and [p["action"] for p in predicted["ports"]] == ["readdress"]

    body = {"resize": {"flavorRef": "21", "transcell:readdress_ports": True}}
    mh.action(pcloud, sid, body, cloud_name=mh.USER)
    found = mh.wait_status(pcloud, sid, "VERIFY_RESIZE")
    dst = mh.host_of(found)
    moved = vh.port_of(pcloud, sid)
    assert (moved["id"], moved["mac_address"]) == (before["id"], before["mac_address"])
    assert moved["security_groups"] == before["security_groups"]
    new_ip = moved["fixed_ips"][0]["ip_address"]
    assert address_cell(pcloud, net["id"], new_ip) == "cell2"
    assert moved["binding:host_id"] == dst
    events = mh.actions(pcloud, sid)
    readdressed = [e for action in events.values() for e in action
                   if e.get("event") == "conductor_readdress_ports"]
    assert readdressed and old_ip in json.dumps(readdressed) and new_ip in json.dumps(readdressed)

    mh.action(pcloud, sid, {"revertResize": None}, cloud_name=mh.USER)
    mh.wait_status(pcloud, sid, "ACTIVE")
    back = vh.port_of(pcloud, sid)
    assert back["fixed_ips"][0]["ip_address"] == old_ip
    assert back["binding:host_id"] == mh.host_of(mh.server(pcloud, sid))
    mh.assert_audit_clean(pcloud)


def test_the_move_plan_of_a_cell_changes_nothing(pcloud):
    sid = mh.boot(pcloud, "plan-cell")["id"]
    before = mh.server(pcloud, sid)
    proc = pcloud.transcell("move", "plan", "--cell", "cell1", "--json", check=False)
    assert proc.returncode in (0, 3), proc.stderr
    plans = json.loads(proc.stdout)
    mine = next(p for p in plans if p["server_id"] == sid)
    # its gen1 flavor fits no host outside cell1: leaving the cell is blocked, and says why
    assert not mine["movable"] and mine["target"] is None
    assert any("hosts available" in reason for reason in mine["blockers"]), mine
    resized = json.loads(pcloud.transcell("move", "plan", sid, "--flavor", "21",
                                          "--json").stdout)[0]
    assert resized["movable"] and resized["target"]["cell"] == "cell2"
    assert resized["predicted"]["move_seconds"] > 0
    assert resized["disk"]["allocated_bytes"] > 0
    assert resized["bytes_to_move"] == resized["disk"]["allocated_bytes"]
    after = mh.server(pcloud, sid)
    assert (after["status"], after["updated"], mh.host_of(after)) == \
        (before["status"], before["updated"], mh.host_of(before))
    assert mh.migrations(pcloud, sid) == []
    text = pcloud.transcell("move", "plan", sid, "--flavor", "21").stdout
    assert "cell2" in text and "MiB to move" in text


@pytest.mark.parametrize("body, status", [
    ({"move_plan": {}}, 400),
    ({"move_plan": {"server_id": "not-a-uuid"}}, 400),
    ({"move_plan": {"cell": "nowhere"}}, 400),
    ({"move_plan": {"cell": "cell1", "flavorRef": "21"}}, 400),
    ({"plan": {}}, 400),
])
def test_bad_move_plan_requests(pcloud, body, status):
    resp = pcloud.request("POST", f"{mh.COMPUTE}/os-transcell-move-plans", json=body)
    assert resp.status_code == status, resp.text
    assert "badRequest" in resp.json()


def test_move_plans_are_for_admins(pcloud):
    sid = mh.boot(pcloud, "plan-policy")["id"]
    resp = pcloud.request("POST", f"{mh.COMPUTE}/os-transcell-move-plans", cloud=mh.USER,
                          json={"move_plan": {"server_id": sid}})
    assert resp.status_code == 403, resp.text
