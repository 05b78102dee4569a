"""Availability zones: one per cell, named after it; "internal" for admins only."""

from __future__ import annotations

from compute_api_fixtures import DEMO


def _arrange(cloud):
    cloud.add_service(cloud.cell0, "control", "nova-conductor")
    cloud.add_service(cloud.cell0, "control", "nova-scheduler")
    cloud.add_compute(cloud.cell1, "cell1-host1")
    cloud.add_compute(cloud.cell1, "cell1-host2")
    cloud.add_service(cloud.cell2, "cell2-host1", disabled=True)


def test_users_see_one_zone_per_cell(cloud):
    _arrange(cloud)
    resp = cloud.get("/os-availability-zone", token=DEMO)
    assert resp.status_int == 200
    assert resp.json == {"availabilityZoneInfo": [
        {"zoneName": "cell1", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "cell2", "zoneState": {"available": False}, "hosts": None}]}


def test_admins_see_hosts_and_the_internal_zone(cloud):
    _arrange(cloud)
    zones = cloud.get("/os-availability-zone/detail").json["availabilityZoneInfo"]
    by_name = {z["zoneName"]: z for z in zones}
    assert set(by_name) == {"internal", "cell1", "cell2"}
    assert set(by_name["internal"]["hosts"]["control"]) == {"nova-conductor", "nova-scheduler"}
    assert set(by_name["cell1"]["hosts"]) == {"cell1-host1", "cell1-host2"}
    compute = by_name["cell1"]["hosts"]["cell1-host1"]["nova-compute"]
    assert compute["available"] is True and compute["active"] is True
    assert compute["updated_at"].endswith("Z")
    assert by_name["cell2"] == {"zoneName": "cell2", "zoneState": {"available": False},
                                "hosts": None}
    denied = cloud.get("/os-availability-zone/detail", token=DEMO)
    assert denied.status_int == 403
