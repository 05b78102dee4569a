"""``transcell audit`` against a running two-cell cloud: each kind of damage a crash or a
race leaves is planted straight into the databases, Placement, the network service,
the image store or a host's disks; the audit must name exactly it, ``--fix`` must
repair what is safe and say so, and the audit must then be clean again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid as uuidlib

import movehelpers as mh
import pytest

PLANT = os.path.join(os.path.dirname(__file__), "plant.py")
OLD = 3600  # seconds: longer ago than any grace or stale threshold


def plant(cloud, *actions: tuple[str, dict]) -> list:
    proc = subprocess.run([sys.executable, PLANT, cloud.state_dir, json.dumps(actions)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def audit(cloud, *args: str, grace: int | None = None) -> dict:
    """Run the audit; ``grace`` overrides [audit] fix_grace_seconds for this run only
    (the conductor releases stranded rows itself after a minute, so a test cannot
    wait out the default grace without racing it)."""
    if grace is not None:
        conf = os.path.join(cloud.state_dir, "transcell.conf")
        override = os.path.join(cloud.state_dir, "audit-grace.conf")
        with open(conf) as fh, open(override, "w") as out:
            out.write(fh.read() + f"\n[audit]\nfix_grace_seconds = {grace}\n")
        args = (*args, "--config-file", override)
    proc = cloud.transcell("audit", "--json", *args, check=False)
    report = json.loads(proc.stdout)
    assert (proc.returncode == 0) == report["ok"], proc.stderr
    return report


def kinds(report: dict) -> set[tuple[str, str]]:
    return {(p["kind"], p.get("subject")) for p in report["problems"]}


def assert_clean(cloud, attempts: int = 20) -> None:
    """Clean, allowing a moment for asynchronous usage refreshes to settle."""
    report: dict = {}
    for _ in range(attempts):
        report = audit(cloud)
        if report["ok"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"audit found problems: {report['problems']}")


def assert_flags(cloud, expected: set[tuple[str, str]]) -> dict:
    report = audit(cloud)
    assert not report["ok"]
    assert kinds(report) == expected, report["problems"]
    return report


def fix(cloud, expected: set[tuple[str, str]], grace: int | None = None) -> dict:
    """--fix repairs exactly ``expected`` and reports the cloud clean afterwards."""
    report = audit(cloud, "--fix", grace=grace)
    done = {(f["kind"], f["subject"]) for f in report["fixed"]}
    assert done == expected, report
    assert all(f["action"] for f in report["fixed"])
    assert report["ok"] and report["problems"] == [], report
    return report


@pytest.fixture(scope="module")
def servers(acloud) -> dict[str, dict]:
    """A server at rest, and one left in VERIFY_RESIZE by a finished cross-cell move."""
    found = {"idle": mh.boot(acloud, "audit-idle"), "verify": mh.boot(acloud, "audit-verify")}
    mh.action(acloud, found["verify"]["id"], {"resize": {"flavorRef": "21"}},
              cloud_name=mh.USER)
    mh.wait_status(acloud, found["verify"]["id"], "VERIFY_RESIZE")
    return found


def test_healthy_cloud_with_a_move_in_flight_is_clean(acloud, servers):
    assert_clean(acloud)
    srv = mh.boot(acloud, "audit-moving")
    faults = mh.fault_dir(acloud)
    hold = os.path.join(faults, "hold-finish_dest")
    reached = os.path.join(faults, "reached-finish_dest")
    open(hold, "w").close()
    try:
        mh.action(acloud, srv["id"], {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
        deadline = time.monotonic() + 120
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the move never reached finish_dest"
            time.sleep(0.1)
        # two rows, disks on two hosts, two consumers, ports bound twice: all owned
        assert len(mh.locate(acloud, srv["id"])["rows"]) == 2
        assert_clean(acloud)
    finally:
        os.unlink(hold)
    mh.wait_status(acloud, srv["id"], "VERIFY_RESIZE")
    assert_clean(acloud)
    mh.action(acloud, srv["id"], {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(acloud, srv["id"], "ACTIVE")
    assert_clean(acloud)


def test_stranded_move_task_is_cleared_once_old_enough(acloud, servers):
    sid = servers["idle"]["id"]
    plant(acloud, ("row", {"uuid": sid, "values": {"task_state": "resize_prep"}}))
    assert_flags(acloud, {("stranded-task", sid)})
    # just written: a request may be between its write and the conductor's, so hands off
    report = audit(acloud, "--fix")
    assert report["fixed"] == []
    assert [(s["kind"], s["subject"]) for s in report["skipped"]] == [("stranded-task", sid)]
    assert "ago" in report["skipped"][0]["reason"]
    plant(acloud, ("row", {"uuid": sid, "values": {"task_state": "resize_migrating"}}))
    report = fix(acloud, {("stranded-task", sid)}, grace=0)
    assert "resize_migrating -> None" in report["fixed"][0]["action"]
    assert mh.server(acloud, sid)["status"] == "ACTIVE"
    assert_clean(acloud)


def test_verify_resize_left_by_a_rolled_back_move_goes_back(acloud, servers):
    sid, host = servers["idle"]["id"], mh.host_of(servers["idle"])
    move = str(uuidlib.uuid4())
    plant(acloud,
          ("saga", {"uuid": move, "instance_uuid": sid, "status": "rolled_back",
                    "resources": {"old_vm_state": "active", "source_host": host}}),
          ("row", {"uuid": sid, "values": {"vm_state": "resized",
                                           "task_state": "resize_reverting"}}))
    assert_flags(acloud, {("stranded-task", sid), ("orphan-verify-resize", sid)})
    report = fix(acloud, {("stranded-task", sid)}, grace=0)
    assert "vm_state resized -> active" in report["fixed"][0]["action"]
    assert mh.server(acloud, sid)["status"] == "ACTIVE"


def test_stale_tasks_and_deletes_are_reported_not_fixed(acloud, servers):
    sid = servers["idle"]["id"]
    plant(acloud, ("row", {"uuid": sid, "values": {"task_state": "powering-off"}, "age": OLD}),
          ("mapping", {"uuid": sid, "queued_for_delete": True, "age": OLD}))
    assert_flags(acloud, {("stale-task", sid), ("stale-delete", sid)})
    report = audit(acloud, "--fix")
    assert report["fixed"] == [] and not report["ok"]
    # a task state changed a moment ago is someone's work in progress
    plant(acloud, ("row", {"uuid": sid, "values": {"task_state": "powering-off"}}),
          ("mapping", {"uuid": sid, "queued_for_delete": False}))
    assert_clean(acloud)
    plant(acloud, ("row", {"uuid": sid, "values": {"task_state": None}}))
    assert_clean(acloud)


def test_two_moves_in_flight_for_one_server(acloud, servers):
    sid = servers["idle"]["id"]
    first, second = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    plant(acloud, ("saga", {"uuid": first, "instance_uuid": sid, "status": "moved",
                            "resources": {}}),
          ("saga", {"uuid": second, "instance_uuid": sid, "status": "moved",
                    "resources": {}}))
    assert_flags(acloud, {("duplicate-move", sid)})
    assert audit(acloud, "--fix")["fixed"] == []
    plant(acloud, ("saga", {"uuid": first, "instance_uuid": sid, "status": "rolled_back",
                            "resources": {}}),
          ("saga", {"uuid": second, "instance_uuid": sid, "status": "rolled_back",
                    "resources": {}}))
    assert_clean(acloud)


def test_a_confirmed_move_that_kept_everything(acloud, servers):
    srv = mh.boot(acloud, "audit-confirmed")
    sid, source = srv["id"], mh.host_of(srv)
    mh.action(acloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
    moved = mh.wait_status(acloud, sid, "VERIFY_RESIZE")
    mh.action(acloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(acloud, sid, "ACTIVE")
    assert_clean(acloud)
    move = mh.migrations(acloud, sid)[0]["uuid"]
    snapshot = str(uuidlib.uuid5(uuidlib.UUID("1d2e6f0a-4a3b-5c6d-8e9f-0a1b2c3d4e5f"), move))
    stray = str(uuidlib.uuid4())
    disk_dir = os.path.join(acloud.state_dir, "hosts", source, "instances", sid)
    plant(acloud, ("allocate", {"consumer": move, "node": source,
                                "resources": {"VCPU": 1, "MEMORY_MB": 64}}),
          ("allocate", {"consumer": stray, "node": source, "resources": {"VCPU": 1}}),
          ("image", {"image_id": snapshot, "owner": moved["tenant_id"], "migration": move}),
          ("hidden_copy", {"uuid": sid, "into": mh.cell_of_host(source)}))
    os.makedirs(disk_dir)
    with open(os.path.join(disk_dir, "disk"), "wb") as fh:
        fh.write(b"left behind")
    expected = {("ended-move-allocation", move), ("orphan-allocation", stray),
                ("orphan-snapshot", snapshot), ("stray-hidden-row", sid),
                ("orphan-disk", sid)}
    assert_flags(acloud, expected)
    report = fix(acloud, expected)
    print("\n".join(f["action"] for f in report["fixed"]))
    assert not os.path.exists(disk_dir)
    assert plant(acloud, ("allocations", {"consumer": move}),
                 ("allocations", {"consumer": stray})) == [{}, {}]
    assert [r["cell"] for r in mh.locate(acloud, sid)["rows"]] == ["cell2"]
    assert mh.server(acloud, sid)["status"] == "ACTIVE"


def test_ports_and_servers_that_lost_each_other(acloud, servers):
    net = mh.network_id(acloud)
    gone = mh.boot(acloud, "audit-gone")
    acloud.request("DELETE", f"{mh.COMPUTE}/servers/{gone['id']}").raise_for_status()
    acloud.wait_gone(gone["id"])
    kept = servers["idle"]["id"]

    def port(device: str) -> str:
        resp = acloud.request("POST", "/network/v2.0/ports", json={"port": {
            "network_id": net, "device_id": device, "device_owner": "compute:nova"}})
        assert resp.status_code == 201, resp.text
        return resp.json()["port"]["id"]

    left, unlisted = port(gone["id"]), port(kept)
    assert_flags(acloud, {("port-without-server", left), ("port-without-server", unlisted)})
    report = audit(acloud, "--fix")
    assert [(f["kind"], f["subject"]) for f in report["fixed"]] == [
        ("port-without-server", left)]
    assert "unbound" in report["fixed"][0]["action"] and left in report["fixed"][0]["action"]
    released = acloud.request("GET", f"/network/v2.0/ports/{left}").json()["port"]
    assert released["device_id"] == "" and released["binding:host_id"] in ("", None)
    # a port the server does not list may be an attach in progress: reported, left alone
    assert kinds(report) == {("port-without-server", unlisted)}
    acloud.request("DELETE", f"/network/v2.0/ports/{unlisted}").raise_for_status()
    acloud.request("DELETE", f"/network/v2.0/ports/{left}").raise_for_status()
    assert_clean(acloud)

    victim = mh.boot(acloud, "audit-portless")
    ports = acloud.request("GET", f"/network/v2.0/ports?device_id={victim['id']}").json()
    for found in ports["ports"]:
        acloud.request("DELETE", f"/network/v2.0/ports/{found['id']}").raise_for_status()
    assert_flags(acloud, {("server-without-port", victim["id"])})
    assert audit(acloud, "--fix")["fixed"] == []
    acloud.request("DELETE", f"{mh.COMPUTE}/servers/{victim['id']}").raise_for_status()
    acloud.wait_gone(victim["id"])
    assert_clean(acloud)


def test_projects_over_quota(acloud, servers):
    sid = servers["idle"]["id"]
    before = plant(acloud, ("get_row", {"uuid": sid}))[0]
    plant(acloud, ("row", {"uuid": sid, "values": {"vcpus": 999}}))
    report = assert_flags(acloud, {("over-quota", before["project_id"])})
    detail = report["problems"][0]["detail"]
    assert "cores" in detail and "instances" not in detail and "ram" not in detail
    assert audit(acloud, "--fix")["fixed"] == []
    plant(acloud, ("row", {"uuid": sid, "values": {"vcpus": before["vcpus"]}}))
    assert_clean(acloud)


def test_disks_of_no_server_and_hidden_rows_of_no_move(acloud, servers):
    stray = str(uuidlib.uuid4())
    host = mh.host_of(servers["idle"])
    path = os.path.join(acloud.state_dir, "hosts", host, "instances", stray)
    os.makedirs(path)
    with open(os.path.join(path, "disk"), "wb") as fh:
        fh.write(b"nobody's")
    assert_flags(acloud, {("orphan-disk", stray)})
    fix(acloud, {("orphan-disk", stray)})
    assert not os.path.exists(path)

    # a hidden copy with no move, in the other cell from the live server: debris
    sid = servers["idle"]["id"]
    other = "cell2" if mh.cell_of_host(host) == "cell1" else "cell1"
    plant(acloud, ("hidden_copy", {"uuid": sid, "into": other}))
    assert_flags(acloud, {("stray-hidden-row", sid)})
    fix(acloud, {("stray-hidden-row", sid)})
    assert [r["cell"] for r in mh.locate(acloud, sid)["rows"]] == [mh.cell_of_host(host)]


def test_an_orphan_spool_file_is_reported_and_removed(acloud):
    """A move's spool that no image holds (a kill mid-upload or mid-take-over)."""
    spools = os.path.join(acloud.state_dir, "images", "spools")
    name = str(uuidlib.uuid4())
    path = os.path.join(spools, name)
    with open(path, "wb") as fh:
        fh.write(b"chunks of a move cut short")
    assert_flags(acloud, {("orphan-spool", name)})
    # written just now: it may be a running upload's, so --fix leaves it for later
    assert audit(acloud, "--fix")["fixed"] == []
    assert os.path.exists(path)
    old = time.time() - 3600
    os.utime(path, (old, old))
    report = fix(acloud, {("orphan-spool", name)})
    assert name in report["fixed"][0]["action"]
    assert not os.path.exists(path)
