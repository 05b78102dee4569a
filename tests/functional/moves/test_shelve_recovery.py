"""Unshelve across cells under failure: a fault in any step before the flip, or a
killed cloud, leaves the server SHELVED_OFFLOADED in its old cell (never lost, never
in two cells) and unshelve-able again; past the flip it is finished. A server shelved
with ``[compute] shelved_offload_time`` > 0 keeps its host until offloaded by the
action or the periodic task, and unshelves where it is."""

from __future__ import annotations

import os
import signal
import time

import movehelpers as mh
import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud
from test_shelve import (
    FLAVOR,
    assert_patterns,
    assert_unshelved,
    delete,
    other_cell,
    ports_of,
    shelve_to_offloaded,
    shelved_images,
    write_patterns,
)

#: The fault and kill matrix of the unshelve: in `make test`, not in `make test-fast`.
pytestmark = pytest.mark.slow

COMPUTE = mh.COMPUTE


def assert_still_offloaded(cloud, sid: str, home: str) -> dict:
    found = mh.wait_task_done(cloud, sid)
    assert found["status"] == "SHELVED_OFFLOADED", found
    assert mh.host_of(found) is None
    assert mh.consumer_allocations(cloud, sid) == {}
    where = mh.locate(cloud, sid)
    assert where["mapping"]["cell"] == home
    assert [(r["cell"], r["hidden"]) for r in where["rows"]] == [(home, False)]
    assert where["disks"] == []
    assert all(not p["binding:host_id"] for p in ports_of(cloud, sid).values())
    mh.assert_audit_clean(cloud)
    return found


@pytest.mark.parametrize("step", ["schedule", "target_db", "ports", "volumes", "spawn",
                                  "unshelve-flip"])
def test_failure_in_each_step_is_undone(mcloud, step):
    cloud = mcloud
    name = f"unshelve-fault-{step}"
    srv, ports = shelve_to_offloaded(cloud, name)
    sid, home = srv["id"], mh.cell_of_host(srv["source_host"])
    with open(os.path.join(mh.fault_dir(cloud), step), "w") as fh:
        fh.write(f"injected failure in {step}")
    mh.action(cloud, sid, {"unshelve": {"availability_zone": other_cell(srv["source_host"])}},
              version="2.77")
    assert_still_offloaded(cloud, sid, home)
    assert [i["status"] for i in shelved_images(cloud, name)] == ["active"]
    events = {e["event"]: e["result"] for e in mh.actions(cloud, sid)["unshelve"]}
    assert events["conductor_unshelve_instance"] == "Error"
    mh.action(cloud, sid, {"unshelve": {"availability_zone": other_cell(srv["source_host"])}},
              version="2.77")
    assert_unshelved(cloud, sid, name, ports, other_cell(srv["source_host"]))
    delete(cloud, sid)


def test_failure_after_the_flip_is_finished(mcloud):
    """Past its flip an unshelve is only ever finished (on the conductor's next pass)."""
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "unshelve-after-flip")
    with open(os.path.join(mh.fault_dir(cloud), "flip"), "w") as fh:
        fh.write("injected failure after the flip")
    away = other_cell(srv["source_host"])
    mh.action(cloud, srv["id"], {"unshelve": {"availability_zone": away}}, version="2.77")
    assert_unshelved(cloud, srv["id"], "unshelve-after-flip", ports, away)
    delete(cloud, srv["id"])


@pytest.mark.parametrize("hold_after, outcome", [
    ("spawn", "undone"),      # the guest runs on the target host, the flip not recorded
    ("flip", "finished"),     # past the point of no return
])
def test_kill_mid_unshelve_then_restart(tmp_path, hold_after, outcome):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        srv, ports = shelve_to_offloaded(cloud, f"unshelve-crash-{hold_after}")
        sid, home = srv["id"], mh.cell_of_host(srv["source_host"])
        away = other_cell(srv["source_host"])
        faults = mh.fault_dir(cloud)
        hold = os.path.join(faults, f"hold-{hold_after}@{sid}")
        reached = os.path.join(faults, f"reached-{hold_after}@{sid}")
        open(hold, "w").close()
        mh.action(cloud, sid, {"unshelve": {"availability_zone": away}}, version="2.77")
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the unshelve never reached the hold point"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.unlink(hold)
        os.unlink(reached)

        proc = start_cloud(state)
        cloud = CloudProcess(state, proc.port)
        if outcome == "undone":
            assert_still_offloaded(cloud, sid, home)
            mh.action(cloud, sid, {"unshelve": {"availability_zone": away}}, version="2.77")
        assert_unshelved(cloud, sid, f"unshelve-crash-{hold_after}", ports, away)
    finally:
        stop_cloud(proc)


@pytest.fixture(scope="module")
def kept_cloud(tmp_path_factory):
    """A cloud that keeps shelved servers on their host for a while, then offloads them."""
    state = str(tmp_path_factory.mktemp("shelf-kept"))
    with open(os.path.join(state, "transcell.conf"), "w") as fh:
        fh.write("[compute]\nshelved_offload_time = 12\nreport_interval = 2\n")
    proc = start_cloud(state)
    yield CloudProcess(state, proc.port)
    stop_cloud(proc)


def test_shelved_server_keeps_its_host_until_offloaded(kept_cloud):
    cloud = kept_cloud
    srv = mh.boot(cloud, "kept", flavor=FLAVOR)
    sid, host = srv["id"], mh.host_of(srv)
    write_patterns(cloud, sid, host)
    ports = ports_of(cloud, sid)
    flavor = mh.flavor(cloud, FLAVOR)

    def shelve_kept() -> dict:
        mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
        found = mh.wait_status(cloud, sid, "SHELVED")
        assert mh.host_of(found) == host
        assert found["OS-EXT-STS:power_state"] == 4  # shut down, still defined there
        assert mh.provider_allocations(cloud, host)[sid] == mh.flavor_resources(flavor)
        assert {d["host"] for d in mh.locate(cloud, sid)["disks"]} == {host}
        assert [i["status"] for i in shelved_images(cloud, "kept")] == ["active"]
        mh.assert_audit_clean(cloud)
        return found

    # shelved, then unshelved where it is: no scheduling, no zone or host allowed
    shelve_kept()
    mh.action(cloud, sid, {"unshelve": {"availability_zone": "cell2"}}, version="2.77",
              expect=409)
    mh.action(cloud, sid, {"unshelve": None}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(found) == host and found["OS-EXT-STS:power_state"] == 1
    assert_patterns(cloud, sid, host)
    assert shelved_images(cloud, "kept") == []
    mh.assert_audit_clean(cloud)

    # shelved, then offloaded by the administrator's action
    shelve_kept()
    resp = cloud.request("POST", f"{COMPUTE}/servers/{sid}/action", cloud=mh.USER,
                         json={"shelveOffload": None})
    assert resp.status_code == 403, resp.text
    mh.action(cloud, sid, {"shelveOffload": None})
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    assert mh.host_of(found) is None and sid not in mh.provider_allocations(cloud, host)
    assert mh.locate(cloud, sid)["disks"] == []
    mh.assert_audit_clean(cloud)
    away = other_cell(host)
    mh.action(cloud, sid, {"unshelve": {"availability_zone": away}}, version="2.77")
    found = assert_unshelved(cloud, sid, "kept", ports, away)
    host = mh.host_of(found)

    # shelved, then offloaded by the periodic task once shelved_offload_time passed
    shelve_kept()
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED", timeout=60)
    assert mh.host_of(found) is None and sid not in mh.provider_allocations(cloud, host)
    mh.assert_audit_clean(cloud)
    mh.action(cloud, sid, {"unshelve": None})
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert_patterns(cloud, sid, mh.host_of(found))
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)


_STRAND = """
import datetime as dt, json, sys
from transcell.cli.main import build_parser, load_config
load_config(build_parser().parse_args(["audit", "--json", "--state-dir", sys.argv[1]]))
from transcell import cell as cells
from transcell.compute import instance as inst
from transcell.conductor import unshelve
uuid = sys.argv[2]
cell = cells.cell_of_instance(uuid)
old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=600)
inst.update(cell, uuid, task_state="unshelving")
young = unshelve.release_stranded(older_than=60)
from sqlalchemy import update
from transcell.db import cell_models as cm
from transcell.db.session import cell_session

with cell_session(cell) as s:
    s.execute(update(cm.Instance).where(cm.Instance.uuid == uuid).values(updated_at=old))
print(json.dumps({"young": young, "old": unshelve.release_stranded(older_than=60)}))
"""


def test_an_unshelve_the_api_never_recorded_is_released(mcloud):
    """An API process that died between taking the task state and recording the saga
    answered no 202: the conductor's sweep gives the server back, once it is stale."""
    import json
    import subprocess
    import sys
    cloud = mcloud
    srv, ports = shelve_to_offloaded(cloud, "unshelve-stranded")
    sid = srv["id"]
    out = subprocess.run([sys.executable, "-c", _STRAND, cloud.state_dir, sid],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"young": [], "old": [sid]}, result
    found = mh.server(cloud, sid)
    assert found["status"] == "SHELVED_OFFLOADED" and found["OS-EXT-STS:task_state"] is None
    home = mh.cell_of_host(srv["source_host"])
    mh.action(cloud, sid, {"unshelve": {"availability_zone": home}}, version="2.77")
    assert_unshelved(cloud, sid, "unshelve-stranded", ports, home)
    delete(cloud, sid)


@pytest.mark.parametrize("hold_at", ["accepted-shelve", "accepted-shelve-offload"])
def test_kill_mid_shelve_then_restart(tmp_path, hold_at):
    """The 202 of a shelve promised an offloaded server: a cloud killed before the host
    started, or between the upload and the offload, finishes it after a restart."""
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        srv = mh.boot(cloud, f"shelve-crash-{hold_at}", flavor=FLAVOR)
        sid, src = srv["id"], mh.host_of(srv)
        write_patterns(cloud, sid, src)
        ports = ports_of(cloud, sid)
        faults = mh.fault_dir(cloud)
        hold = os.path.join(faults, f"hold-{hold_at}@{sid}")
        reached = os.path.join(faults, f"reached-{hold_at}@{sid}")
        open(hold, "w").close()
        mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the shelve never reached the hold point"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.unlink(hold)
        os.unlink(reached)

        proc = start_cloud(state)
        cloud = CloudProcess(state, proc.port)
        found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
        assert mh.host_of(found) is None
        assert mh.locate(cloud, sid)["disks"] == []
        assert [i["status"] for i in shelved_images(cloud, f"shelve-crash-{hold_at}")] == [
            "active"]
        mh.assert_audit_clean(cloud)
        home = mh.cell_of_host(src)
        mh.action(cloud, sid, {"unshelve": {"availability_zone": home}}, version="2.77")
        assert_unshelved(cloud, sid, f"shelve-crash-{hold_at}", ports, home)
    finally:
        stop_cloud(proc)
