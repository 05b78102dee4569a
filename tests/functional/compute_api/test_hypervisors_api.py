"""Hypervisors of both cells: integer ids below 2.53, uuids from 2.53."""

from __future__ import annotations

import datetime as dt
import json

from compute_api_fixtures import DEMO

from transcell.db.types import utcnow

DETAIL_KEYS_21 = {"id", "hypervisor_hostname", "state", "status", "vcpus", "memory_mb",
                  "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                  "hypervisor_type", "hypervisor_version", "free_ram_mb", "free_disk_gb",
                  "current_workload", "running_vms", "disk_available_least", "host_ip",
                  "service", "cpu_info"}


def _arrange(cloud):
    svc1, node1 = cloud.add_compute(cloud.cell1, "cell1-host1", vcpus_used=2,
                                    memory_mb_used=1024, local_gb_used=20, running_vms=1)
    svc2, node2 = cloud.add_compute(cloud.cell2, "cell2-host1")
    server = cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1",
                                task_state="resize_prep")
    cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1", hidden=True)
    return (svc1, node1), (svc2, node2), server


def test_index_and_detail_at_21_use_integer_ids(cloud):
    (svc1, node1), (svc2, node2), _ = _arrange(cloud)
    index = cloud.get("/os-hypervisors").json["hypervisors"]
    assert index == [
        {"id": node1.id, "hypervisor_hostname": "cell1-host1", "state": "up",
         "status": "enabled"},
        {"id": node2.id, "hypervisor_hostname": "cell2-host1", "state": "up",
         "status": "enabled"}]
    assert node1.id == node2.id == 1  # each cell numbers its own nodes

    detail = cloud.get("/os-hypervisors/detail").json["hypervisors"]
    first = detail[0]
    assert set(first) == DETAIL_KEYS_21
    assert first["service"] == {"id": svc1.id, "host": "cell1-host1", "disabled_reason": None}
    assert (first["free_ram_mb"], first["free_disk_gb"], first["current_workload"]) == \
        (32768 - 1024, 480, 1)
    assert isinstance(first["cpu_info"], str) and json.loads(first["cpu_info"])
    assert isinstance(cloud.get("/os-hypervisors/detail", version="2.28")
                      .json["hypervisors"][0]["cpu_info"], dict)

    shown = cloud.get("/os-hypervisors/1").json["hypervisor"]
    assert shown["hypervisor_hostname"] == "cell1-host1"
    missing = cloud.get("/os-hypervisors/abc")
    assert missing.status_int == 404
    assert missing.json["itemNotFound"]["message"] == \
        "Hypervisor with ID 'abc' could not be found."


def test_253_uses_uuids_and_lists_servers(cloud):
    (svc1, node1), (_, node2), server = _arrange(cloud)
    index = cloud.get("/os-hypervisors?with_servers=true", version="2.53").json["hypervisors"]
    assert [h["id"] for h in index] == [node1.uuid, node2.uuid]
    assert [s["uuid"] for s in index[0]["servers"]] == [server]
    assert index[0]["servers"][0]["name"].startswith("instance-")
    assert "servers" not in index[1]

    shown = cloud.get(f"/os-hypervisors/{node1.uuid}", version="2.53").json["hypervisor"]
    assert shown["id"] == node1.uuid
    assert shown["service"]["id"] == svc1.uuid
    assert "servers" not in shown
    bad = cloud.get("/os-hypervisors/1", version="2.53")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"] == "Invalid uuid 1"

    found = cloud.get("/os-hypervisors?hypervisor_hostname_pattern=cell2", version="2.53")
    assert [h["id"] for h in found.json["hypervisors"]] == [node2.uuid]
    none = cloud.get("/os-hypervisors?hypervisor_hostname_pattern=cell9", version="2.53")
    assert none.status_int == 404
    assert none.json["itemNotFound"]["message"] == \
        "No hypervisor matching 'cell9' could be found."
    assert cloud.get("/os-hypervisors?colour=red", version="2.53").status_int == 400


def test_paging_from_233(cloud):
    _, (_, node2), _ = _arrange(cloud)
    page = cloud.get("/os-hypervisors?limit=1", version="2.53").json
    assert len(page["hypervisors"]) == 1
    marker = page["hypervisors"][0]["id"]
    assert page["hypervisors_links"][0]["href"] == \
        f"http://localhost/v2.1/os-hypervisors?limit=1&marker={marker}"
    rest = cloud.get(f"/os-hypervisors?limit=1&marker={marker}", version="2.53").json
    assert [h["id"] for h in rest["hypervisors"]] == [node2.uuid]
    assert cloud.get("/os-hypervisors?marker=nope", version="2.33").status_int == 400


def test_state_status_statistics_and_policy(cloud):
    cloud.add_compute(cloud.cell1, "cell1-host1", vcpus_used=4)
    old = utcnow() - dt.timedelta(hours=1)
    svc = cloud.add_service(cloud.cell2, "cell2-host1", seen=old, created_at=old,
                            disabled=True, disabled_reason="maintenance")
    cloud.add_node(cloud.cell2, "cell2-host1", service_id=svc.id)
    hypervisors = cloud.get("/os-hypervisors").json["hypervisors"]
    assert [(h["state"], h["status"]) for h in hypervisors] == \
        [("up", "enabled"), ("down", "disabled")]

    stats = cloud.get("/os-hypervisors/statistics").json["hypervisor_statistics"]
    assert stats["count"] == 1  # disabled hosts are not counted, as in Nova
    assert (stats["vcpus"], stats["vcpus_used"], stats["memory_mb"]) == (16, 4, 32768)
    assert set(stats) == {"count", "vcpus", "memory_mb", "local_gb", "vcpus_used",
                          "memory_mb_used", "local_gb_used", "free_ram_mb", "free_disk_gb",
                          "current_workload", "running_vms", "disk_available_least"}

    denied = cloud.get("/os-hypervisors", token=DEMO)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-hypervisors:list to be performed."


def test_275_always_answers_with_servers_when_asked(cloud):
    (_, node1), (_, node2), server = _arrange(cloud)
    below = cloud.get("/os-hypervisors?with_servers=true", version="2.74").json
    assert "servers" not in below["hypervisors"][1]
    index = cloud.get("/os-hypervisors?with_servers=true", version="2.75").json["hypervisors"]
    assert [[s["uuid"] for s in h["servers"]] for h in index] == [[server], []]
    shown = cloud.get(f"/os-hypervisors/{node2.uuid}?with_servers=1",
                      version="2.75").json["hypervisor"]
    assert shown["servers"] == []
    # not asking still leaves the key out
    plain = cloud.get("/os-hypervisors/detail", version="2.75").json["hypervisors"]
    assert all("servers" not in h for h in plain)
    assert "servers" not in cloud.get(f"/os-hypervisors/{node2.uuid}",
                                      version="2.75").json["hypervisor"]
