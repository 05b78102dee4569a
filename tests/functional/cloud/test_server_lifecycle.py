"""Servers through the public API of a running two-cell cloud, as a user and an operator."""

from __future__ import annotations

import json
import os
import uuid

import pytest

COMPUTE = "/compute/v2.1"


def _image_id(cloud) -> str:
    resp = cloud.request("GET", "/image/v2/images?name=transcell-base")
    return resp.json()["images"][0]["id"]


def _network_id(cloud) -> str:
    resp = cloud.request("GET", "/network/v2.0/networks?name=private")
    return resp.json()["networks"][0]["id"]


def create_server(cloud, name: str, flavor: str = "1", cloud_name: str = "transcell-demo",
                  **extra) -> dict:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": _image_id(cloud),
                       "networks": [{"uuid": _network_id(cloud)}], **extra}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=cloud_name, json=body)
    assert resp.status_code == 202, resp.text
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    return resp.json()["server"]


def locate(cloud, server_id: str) -> dict:
    return json.loads(cloud.transcell("instance", "locate", server_id, "--json").stdout)


def test_version_documents_need_no_token(cloud):
    resp = cloud.request("GET", "/compute/", token=None)
    assert resp.status_code == 200
    current = [v for v in resp.json()["versions"] if v["status"] == "CURRENT"][0]
    assert current["links"][0]["href"] == f"{cloud.base_url}/compute/v2.1/"
    assert current["min_version"] == "2.1"
    resp = cloud.request("GET", "/compute/v2.1", token=None)
    assert resp.json()["version"]["id"] == "v2.1"


def test_microversions_are_negotiated_like_nova(cloud):
    resp = cloud.request("GET", f"{COMPUTE}/flavors", version="2.53")
    assert resp.headers["OpenStack-API-Version"] == "compute 2.53"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.53"
    resp = cloud.request("GET", f"{COMPUTE}/flavors")
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
    resp = cloud.request("GET", f"{COMPUTE}/flavors", version="2.999")
    assert resp.status_code == 406
    assert "maximum is" in resp.json()["computeFault"]["message"]
    resp = cloud.request("GET", f"{COMPUTE}/flavors", version="two")
    assert resp.status_code == 400
    assert "invalid format" in resp.json()["badRequest"]["message"]


def test_lifecycle_build_stop_start_delete(cloud):
    server = create_server(cloud, "life-1")
    assert set(server) >= {"id", "links"}
    active = cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-demo")
    assert active["OS-EXT-STS:power_state"] == 1
    assert active["addresses"]["private"][0]["addr"].startswith("10.0.")
    assert active["image"]["id"] == _image_id(cloud)
    report = locate(cloud, server["id"])
    assert report["mapping"]["cell"] in ("cell1", "cell2")
    assert [r["hidden"] for r in report["rows"]] == [False]
    assert report["disks"] and report["disks"][0]["host"] == report["rows"][0]["host"]

    resp = cloud.request("POST", f"{COMPUTE}/servers/{server['id']}/action",
                         cloud="transcell-demo", json={"os-stop": None})
    assert resp.status_code == 202
    stopped = cloud.wait_status(server["id"], "SHUTOFF", cloud="transcell-demo")
    assert stopped["OS-EXT-STS:power_state"] == 4
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server['id']}/action",
                         cloud="transcell-demo", json={"os-stop": None})
    assert resp.status_code == 409
    assert "vm_state stopped" in resp.json()["conflictingRequest"]["message"]
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server['id']}/action",
                         cloud="transcell-demo", json={"os-start": {}})
    assert resp.status_code == 202
    cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-demo")

    actions = cloud.request("GET", f"{COMPUTE}/servers/{server['id']}/os-instance-actions",
                            cloud="transcell-demo").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["start", "stop", "create"]
    create = cloud.request(
        "GET", f"{COMPUTE}/servers/{server['id']}/os-instance-actions/"
        f"{actions[-1]['request_id']}", version="2.51").json()["instanceAction"]
    assert {e["event"] for e in create["events"]} >= {"compute__do_build_and_run_instance"}
    assert all(e["result"] == "Success" for e in create["events"])

    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    assert resp.status_code == 204
    cloud.wait_gone(server["id"])
    report = locate(cloud, server["id"])
    assert report["disks"] == []
    assert all(r["deleted"] for r in report["rows"])


def test_traits_choose_the_cell(cloud):
    gen1 = create_server(cloud, "gen1-server", flavor="11")
    gen2 = create_server(cloud, "gen2-server", flavor="21")
    one = cloud.wait_status(gen1["id"], "ACTIVE")
    two = cloud.wait_status(gen2["id"], "ACTIVE")
    assert one["OS-EXT-AZ:availability_zone"] == "cell1"
    assert two["OS-EXT-AZ:availability_zone"] == "cell2"
    assert one["OS-EXT-SRV-ATTR:host"].startswith("cell1-")
    assert two["OS-EXT-SRV-ATTR:host"].startswith("cell2-")
    assert locate(cloud, gen1["id"])["mapping"]["cell"] == "cell1"
    assert locate(cloud, gen2["id"])["mapping"]["cell"] == "cell2"
    for server in (gen1, gen2):
        cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}")
    for server in (gen1, gen2):
        cloud.wait_gone(server["id"])


def test_no_valid_host_leaves_an_error_server_in_cell0(cloud):
    flavor = {"flavor": {"name": f"nowhere-{uuid.uuid4().hex[:6]}", "ram": 256, "vcpus": 1,
                         "disk": 1}}
    resp = cloud.request("POST", f"{COMPUTE}/flavors", json=flavor)
    assert resp.status_code == 200, resp.text
    flavor_id = resp.json()["flavor"]["id"]
    resp = cloud.request("POST", f"{COMPUTE}/flavors/{flavor_id}/os-extra_specs",
                         json={"extra_specs": {"trait:CUSTOM_NO_HOST_HAS_THIS": "required"}})
    assert resp.status_code == 200, resp.text
    server = create_server(cloud, "too-big", flavor=flavor_id, cloud_name="transcell-admin")
    errored = cloud.wait_status(server["id"], "ERROR")
    assert "No valid host" in errored["fault"]["message"]
    assert locate(cloud, server["id"])["mapping"]["cell"] == "cell0"
    assert cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}").status_code == 204
    cloud.wait_gone(server["id"])
    cloud.request("DELETE", f"{COMPUTE}/flavors/{flavor_id}")


def test_projects_are_isolated(cloud):
    server = create_server(cloud, "alt-private", cloud_name="transcell-alt")
    cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-alt")
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"Instance {server['id']} could not be found.")
    listed = cloud.request("GET", f"{COMPUTE}/servers", cloud="transcell-demo").json()
    assert server["id"] not in {s["id"] for s in listed["servers"]}
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    assert resp.status_code == 404
    everyone = cloud.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1").json()
    assert server["id"] in {s["id"] for s in everyone["servers"]}
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-alt")
    cloud.wait_gone(server["id"])


def test_reader_reads_but_cannot_act(cloud):
    resp = cloud.request("GET", f"{COMPUTE}/servers", cloud="transcell-reader")
    assert resp.status_code == 200
    body = {"server": {"name": "nope", "flavorRef": "1", "imageRef": _image_id(cloud),
                       "networks": "auto"}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-reader", json=body,
                         version="2.37")
    assert resp.status_code == 403
    assert "os_compute_api:servers:create" in resp.json()["forbidden"]["message"]


def test_audit_is_clean_after_the_lifecycle(cloud):
    proc = cloud.transcell("audit", "--json", check=False)
    report = json.loads(proc.stdout)
    assert report["problems"] == [] and proc.returncode == 0, report


def test_cell_list_shows_cell0_and_two_cells(cloud):
    cells = json.loads(cloud.transcell("cell", "list", "--json").stdout)
    assert [c["name"] for c in cells] == ["cell0", "cell1", "cell2"]


@pytest.mark.parametrize("server_id", ["does-not-exist", str(uuid.uuid4())])
def test_unknown_server_is_404(cloud, server_id):
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}")
    assert resp.status_code == 404
    assert "could not be found" in resp.json()["itemNotFound"]["message"]


def _arm_spawn_fault(cloud, host: str, message: str) -> str:
    faults = os.path.join(cloud.state_dir, "hosts", host, "faults")
    os.makedirs(faults, exist_ok=True)
    path = os.path.join(faults, "spawn")
    with open(path, "w") as fh:
        fh.write(message)
    return path


def _build_events(cloud, server_id: str) -> list[dict]:
    actions = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions"
                            ).json()["instanceActions"]
    create = [a for a in actions if a["action"] == "create"][0]
    detail = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions/"
                           f"{create['request_id']}", version="2.51").json()["instanceAction"]
    return [e for e in detail["events"] if e["event"] == "compute__do_build_and_run_instance"]


def test_failed_spawn_is_rescheduled_to_an_alternate(cloud):
    # an empty cell2 puts the first gen2 server on cell2-host1 (spread, then name)
    armed = _arm_spawn_fault(cloud, "cell2-host1", "disk controller on fire")
    server = create_server(cloud, "resched-ok", flavor="21", cloud_name="transcell-admin")
    active = cloud.wait_status(server["id"], "ACTIVE")
    assert not os.path.exists(armed), "the armed host was never tried"
    assert active["OS-EXT-SRV-ATTR:host"] == "cell2-host2"
    results = sorted(e["result"] for e in _build_events(cloud, server["id"]))
    assert results == ["Error", "Success"]
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}")
    cloud.wait_gone(server["id"])


def test_spawn_failing_everywhere_ends_in_error_with_a_fault(cloud):
    for host in ("cell2-host1", "cell2-host2"):
        _arm_spawn_fault(cloud, host, f"no luck on {host}")
    server = create_server(cloud, "resched-fail", flavor="21", cloud_name="transcell-admin")
    errored = cloud.wait_status(server["id"], "ERROR")
    assert "No valid host" in errored["fault"]["message"]
    assert "no luck on" in errored["fault"]["message"]
    assert [e["result"] for e in _build_events(cloud, server["id"])] == ["Error", "Error"]
    report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
    assert report["problems"] == []
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}")
    cloud.wait_gone(server["id"])
