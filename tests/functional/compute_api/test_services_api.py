"""Services of every cell: listing, enabling and disabling, deleting."""

from __future__ import annotations

import datetime as dt

from compute_api_fixtures import DEMO
from sqlalchemy import select

from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import utcnow

KEYS_21 = {"id", "binary", "host", "zone", "status", "state", "updated_at",
           "disabled_reason"}


def _arrange(cloud):
    conductor = cloud.add_service(cloud.cell0, "control", "nova-conductor")
    scheduler = cloud.add_service(cloud.cell0, "control", "nova-scheduler")
    compute1, _ = cloud.add_compute(cloud.cell1, "cell1-host1")
    old = utcnow() - dt.timedelta(minutes=10)
    compute2 = cloud.add_service(cloud.cell2, "cell2-host1", seen=old, created_at=old)
    cloud.add_node(cloud.cell2, "cell2-host1", service_id=compute2.id)
    return conductor, scheduler, compute1, compute2


def test_list_at_21_211_and_253(cloud):
    conductor, scheduler, compute1, compute2 = _arrange(cloud)
    listed = cloud.get("/os-services").json["services"]
    assert all(set(s) == KEYS_21 for s in listed)
    assert [(s["id"], s["binary"], s["host"], s["zone"], s["state"]) for s in listed] == [
        (conductor.id, "nova-conductor", "control", "internal", "up"),
        (scheduler.id, "nova-scheduler", "control", "internal", "up"),
        (compute1.id, "nova-compute", "cell1-host1", "cell1", "up"),
        (compute2.id, "nova-compute", "cell2-host1", "cell2", "down")]
    assert listed[2]["status"] == "enabled"

    forced = cloud.get("/os-services", version="2.11").json["services"]
    assert all(s["forced_down"] is False for s in forced)
    uuids = cloud.get("/os-services", version="2.53").json["services"]
    assert [s["id"] for s in uuids] == [conductor.uuid, scheduler.uuid, compute1.uuid,
                                        compute2.uuid]

    computes = cloud.get("/os-services?binary=nova-compute&host=cell2-host1").json["services"]
    assert [s["host"] for s in computes] == ["cell2-host1"]
    assert cloud.get("/os-services", token=DEMO).status_int == 403


def test_update_by_uuid_at_253(cloud):
    _, scheduler, compute1, _ = _arrange(cloud)
    path = f"/os-services/{compute1.uuid}"
    resp = cloud.put(path, {"status": "disabled", "disabled_reason": "hardware"},
                     version="2.53")
    assert resp.status_int == 200
    service = resp.json["service"]
    assert (service["id"], service["status"], service["disabled_reason"],
            service["forced_down"]) == (compute1.uuid, "disabled", "hardware", False)
    assert cloud.get("/os-services?host=cell1-host1").json["services"][0]["status"] == \
        "disabled"

    forced = cloud.put(path, {"forced_down": True}, version="2.53").json["service"]
    assert (forced["forced_down"], forced["state"]) == (True, "down")

    enabled = cloud.put(path, {"status": "enabled"}, version="2.53").json["service"]
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)

    contradictory = cloud.put(path, {"status": "enabled", "disabled_reason": "x"},
                              version="2.53")
    assert contradictory.status_int == 400
    assert contradictory.json["badRequest"]["message"] == \
        "Specifying 'disabled_reason' with status 'enabled' is invalid."
    assert cloud.put(path, {}, version="2.53").status_int == 400
    not_compute = cloud.put(f"/os-services/{scheduler.uuid}", {"status": "disabled"},
                            version="2.53")
    assert not_compute.status_int == 400
    assert not_compute.json["badRequest"]["message"] == \
        "Updating a nova-scheduler service is not supported. Only nova-compute services " \
        "can be updated."
    assert cloud.put("/os-services/not-a-uuid", {"status": "enabled"},
                     version="2.53").status_int == 400
    # a uuid path does not exist before 2.53
    old_style = cloud.put(path, {"host": "cell1-host1", "binary": "nova-compute"})
    assert old_style.status_int == 404
    assert old_style.json["itemNotFound"]["message"] == "Unknown action"


def test_legacy_actions_below_253(cloud):
    _arrange(cloud)
    body = {"host": "cell2-host1", "binary": "nova-compute", "disabled_reason": "old disk"}
    resp = cloud.put("/os-services/disable-log-reason", body)
    assert resp.json == {"service": {"host": "cell2-host1", "binary": "nova-compute",
                                     "status": "disabled", "disabled_reason": "old disk"}}
    enabled = cloud.put("/os-services/enable", {"host": "cell2-host1",
                                                "binary": "nova-compute"})
    assert enabled.json["service"]["status"] == "enabled"
    forced = cloud.put("/os-services/force-down", {"host": "cell2-host1",
                                                   "binary": "nova-compute",
                                                   "forced_down": True}, version="2.11")
    assert forced.json == {"service": {"host": "cell2-host1", "binary": "nova-compute",
                                       "forced_down": True}}
    unknown = cloud.put("/os-services/enable", {"host": "nowhere", "binary": "nova-compute"})
    assert unknown.status_int == 404
    assert unknown.json["itemNotFound"]["message"] == "Host 'nowhere' is not mapped to any cell"


def test_delete_refuses_busy_hosts_and_forgets_idle_ones(cloud):
    _, _, compute1, compute2 = _arrange(cloud)
    cloud.add_instance(cloud.cell1, host="cell1-host1")
    busy = cloud.delete(f"/os-services/{compute1.uuid}", version="2.53")
    assert busy.status_int == 409
    assert busy.json["conflictingRequest"]["message"] == (
        "Unable to delete compute service that is hosting instances. Migrate or delete the "
        "instances first.")
    assert cloud.delete(f"/os-services/{compute2.id}", token=DEMO).status_int == 403
    ambiguous = cloud.delete("/os-services/1")
    assert ambiguous.status_int == 400  # id 1 exists in cell0, cell1 and cell2

    assert cloud.delete(f"/os-services/{compute2.uuid}", version="2.53").status_int == 204
    hosts = [s["host"] for s in cloud.get("/os-services").json["services"]]
    assert "cell2-host1" not in hosts
    assert cloud.get("/os-hypervisors").json["hypervisors"][-1]["hypervisor_hostname"] == \
        "cell1-host1"
    with api_session() as s:
        assert s.scalar(select(am.HostMapping).where(am.HostMapping.host == "cell2-host1")) \
            is None
    with cell_session(cloud.cell2) as s:
        assert s.scalar(select(cm.ComputeNode.deleted)) != 0
    missing = cloud.delete(f"/os-services/{compute2.uuid}", version="2.53")
    assert missing.status_int == 404
