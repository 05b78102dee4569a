"""POST /servers on a real cloud: several servers in one request, Nova's create-time
refusals (each leaving nothing behind), and server groups from the openstack CLI."""

from __future__ import annotations

import json

import pytest

COMPUTE = "/compute/v2.1"
DEMO = "transcell-demo"


def _ids(cloud, kind: str, name: str) -> str:
    if kind == "image":
        return cloud.request("GET", f"/image/v2/images?name={name}").json()["images"][0]["id"]
    return cloud.request("GET", f"/network/v2.0/networks?name={name}").json()[
        "networks"][0]["id"]


def _body(cloud, name: str, **extra) -> dict:
    server = {"name": name, "flavorRef": "1", "imageRef": _ids(cloud, "image",
                                                                 "transcell-base"),
              "networks": [{"uuid": _ids(cloud, "network", "private")}]}
    server.update(extra)
    return {"server": server}


def _project_servers(cloud) -> set[str]:
    resp = cloud.request("GET", f"{COMPUTE}/servers", cloud=DEMO)
    assert resp.status_code == 200
    return {s["id"] for s in resp.json()["servers"]}


def _delete_all(cloud, ids) -> None:
    for sid in ids:
        cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    for sid in ids:
        cloud.wait_gone(sid)


def test_min_max_count_builds_named_servers_with_one_reservation(cloud):
    before = _project_servers(cloud)
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=DEMO, version="2.52",
                         json=_body(cloud, "multi", min_count=3, max_count=3))
    assert resp.status_code == 202, resp.text
    first = resp.json()["server"]["id"]
    made = _project_servers(cloud) - before
    try:
        assert len(made) == 3 and first in made
        shown = {}
        for sid in made:
            cloud.wait_status(sid, "ACTIVE", cloud=DEMO)
            shown[sid] = cloud.request("GET", f"{COMPUTE}/servers/{sid}",
                                       version="2.3").json()["server"]
        assert sorted(s["name"] for s in shown.values()) == ["multi-1", "multi-2", "multi-3"]
        assert sorted(s["OS-EXT-SRV-ATTR:hostname"] for s in shown.values()) == \
            ["multi-1", "multi-2", "multi-3"]
        reservations = {s["OS-EXT-SRV-ATTR:reservation_id"] for s in shown.values()}
        assert len(reservations) == 1
        listed = cloud.request("GET", f"{COMPUTE}/servers?reservation_id="
                               f"{reservations.pop()}", cloud=DEMO).json()["servers"]
        assert {s["id"] for s in listed} == made
    finally:
        _delete_all(cloud, made)


def test_return_reservation_id_and_a_range_the_quota_cuts_short(cloud):
    before = _project_servers(cloud)
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=DEMO,
                         json=_body(cloud, "reserved", min_count=2, max_count=500,
                                    return_reservation_id=True))
    assert resp.status_code == 202, resp.text
    reservation = resp.json()["reservation_id"]
    assert set(resp.json()) == {"reservation_id"}
    made = _project_servers(cloud) - before
    try:
        listed = cloud.request("GET", f"{COMPUTE}/servers?reservation_id={reservation}",
                               cloud=DEMO).json()["servers"]
        assert {s["id"] for s in listed} == made
        # as many as the project's instance quota left, at least min_count
        limits = cloud.request("GET", f"{COMPUTE}/limits", cloud=DEMO).json()["limits"][
            "absolute"]
        assert 2 <= len(made) <= limits["maxTotalInstances"]
        assert limits["totalInstancesUsed"] == limits["maxTotalInstances"] or \
            limits["totalCoresUsed"] + 1 > limits["maxTotalCores"] or \
            limits["totalRAMUsed"] + 512 > limits["maxTotalRAMSize"]
    finally:
        _delete_all(cloud, made)


def _admin_port(cloud) -> str:
    resp = cloud.request("POST", "/network/v2.0/ports",
                         json={"port": {"network_id": _ids(cloud, "network", "private")}})
    assert resp.status_code == 201, resp.text
    return resp.json()["port"]["id"]


MESSAGES = {
    "metadata_count": "Maximum number of metadata items exceeds 128",
    "metadata_key": "Invalid input for field/attribute metadata",
    "security_group": "Security group no-such-group not found",
    "min_ram": "Flavor's memory is too small for requested image",
    "private_flavor": "could not be found; check flavorRef",
    "other_port": "Port",
    "personality_count": "Personality file limit exceeded",
    "personality_path": "Personality file path exceeds maximum 255",
    "personality_content": "Personality file content exceeds maximum 10240",
    "min_over_max": "min_count must be <= max_count",
    "min_over_quota": "Quota exceeded for ",
    "port_for_many": "Unable to launch multiple instances with a single configured port",
    "unknown_group": "Invalid server group",
    "group_members": "Quota exceeded, too many servers in group",
    "zero_count": "min_count",
}


@pytest.mark.parametrize("case", [
    "metadata_count", "metadata_key", "security_group", "min_ram", "private_flavor",
    "other_port", "personality_count", "personality_path", "personality_content",
    "min_over_max", "min_over_quota", "port_for_many", "unknown_group", "group_members",
    "zero_count"])
def test_create_time_refusals_leave_nothing_behind(cloud, case):
    before = _project_servers(cloud)
    version = "2.52"
    cleanup = []
    expect = 400
    body: dict
    if case == "metadata_count":
        body, expect = _body(cloud, case, metadata={str(i): "v" for i in range(129)}), 403
    elif case == "metadata_key":
        body = _body(cloud, case, metadata={"k" * 256: "v"})
    elif case == "security_group":
        body = _body(cloud, case, security_groups=[{"name": "no-such-group"}])
    elif case == "min_ram":
        image = _ids(cloud, "image", "transcell-base")
        patch = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        resp = cloud.request("PATCH", f"/image/v2/images/{image}", headers=patch,
                             data=json.dumps([{"op": "replace", "path": "/min_ram",
                                               "value": 100000}]))
        assert resp.status_code == 200, resp.text
        cleanup.append(lambda: cloud.request(
            "PATCH", f"/image/v2/images/{image}", headers=patch,
            data=json.dumps([{"op": "replace", "path": "/min_ram", "value": 0}])))
        body = _body(cloud, case)
    elif case == "private_flavor":
        resp = cloud.request("POST", f"{COMPUTE}/flavors", json={"flavor": {
            "name": "h4-private", "ram": 256, "vcpus": 1, "disk": 1,
            "os-flavor-access:is_public": False}})
        assert resp.status_code == 200, resp.text
        flavor = resp.json()["flavor"]["id"]
        cleanup.append(lambda: cloud.request("DELETE", f"{COMPUTE}/flavors/{flavor}"))
        body = _body(cloud, case, flavorRef=flavor)
    elif case == "other_port":
        port = _admin_port(cloud)
        cleanup.append(lambda: cloud.request("DELETE", f"/network/v2.0/ports/{port}"))
        body = _body(cloud, case, networks=[{"port": port}])
    elif case == "personality_count":
        version = "2.56"
        body = _body(cloud, case, personality=[{"path": f"/etc/f{i}", "contents": "YQ=="}
                                               for i in range(6)])
        expect = 403
    elif case == "personality_path":
        version = "2.56"
        body = _body(cloud, case, personality=[{"path": "/" + "p" * 300, "contents": "YQ=="}])
        expect = 403
    elif case == "personality_content":
        version = "2.56"
        import base64
        big = base64.b64encode(b"x" * 10241).decode()
        body = _body(cloud, case, personality=[{"path": "/etc/big", "contents": big}])
        expect = 403
    elif case == "min_over_max":
        body = _body(cloud, case, min_count=3, max_count=2)
    elif case == "min_over_quota":
        body, expect = _body(cloud, case, min_count=500, max_count=500), 403
    elif case == "port_for_many":
        port = _admin_port(cloud)
        cleanup.append(lambda: cloud.request("DELETE", f"/network/v2.0/ports/{port}"))
        body = _body(cloud, case, networks=[{"port": port}], min_count=2, max_count=2)
    elif case == "unknown_group":
        body = _body(cloud, case)
        body["os:scheduler_hints"] = {"group": "9f6c5bd4-0000-4000-8000-000000000000"}
    elif case == "group_members":
        resp = cloud.request("POST", f"{COMPUTE}/os-server-groups", cloud=DEMO, json={
            "server_group": {"name": "h4-members", "policies": ["soft-anti-affinity"]}},
            version="2.15")
        assert resp.status_code == 200, resp.text
        group = resp.json()["server_group"]["id"]
        cleanup.append(lambda: cloud.request("DELETE", f"{COMPUTE}/os-server-groups/{group}"))
        body = _body(cloud, case, min_count=11, max_count=11)
        body["os:scheduler_hints"] = {"group": group}
        expect = 403
    else:  # zero_count
        body = _body(cloud, case, min_count=0)
    try:
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=DEMO, json=body,
                             version=version)
        assert resp.status_code == expect, resp.text
        key = "badRequest" if expect == 400 else "forbidden"
        assert resp.json()[key]["code"] == expect
        assert MESSAGES[case] in resp.json()[key]["message"]
        assert _project_servers(cloud) == before
        if case == "group_members":
            shown = cloud.request("GET", f"{COMPUTE}/os-server-groups/{group}", cloud=DEMO)
            assert shown.json()["server_group"]["members"] == []
    finally:
        for undo in cleanup:
            undo()


@pytest.mark.cli
def test_server_group_and_hint_with_the_cli(cloud):
    group = cloud.openstack_json("server", "group", "create", "--policy", "anti-affinity",
                                 "cli-group", cloud=DEMO)
    assert group["name"] == "cli-group"
    created = []
    try:
        for name in ("cli-g1", "cli-g2"):
            server = cloud.openstack_json(
                "server", "create", "--flavor", "m1.tiny", "--image", "transcell-base",
                "--network", "private", "--hint", f"group={group['id']}", "--wait", name,
                cloud=DEMO)
            created.append(server["id"])
        shown = cloud.openstack_json("server", "group", "show", "cli-group", cloud=DEMO)
        assert sorted(shown["members"] if isinstance(shown["members"], list)
                      else shown["members"].split(", ")) == sorted(created)
        hosts = {cloud.request("GET", f"{COMPUTE}/servers/{sid}").json()["server"][
            "OS-EXT-SRV-ATTR:host"] for sid in created}
        assert len(hosts) == 2
        listed = cloud.openstack_json("server", "group", "list", cloud=DEMO)
        assert group["id"] in {g["ID"] for g in listed}
    finally:
        for sid in created:
            cloud.openstack("server", "delete", "--wait", sid, cloud=DEMO)
        cloud.openstack("server", "group", "delete", group["id"], cloud=DEMO)
    assert group["id"] not in {g["ID"] for g in cloud.openstack_json(
        "server", "group", "list", cloud=DEMO)}


def test_server_group_and_metadata_through_openstacksdk(cloud):
    conn = cloud.sdk(DEMO)
    group = conn.compute.create_server_group(name="sdk-group", policy="soft-anti-affinity")
    server = None
    try:
        assert group.policy == "soft-anti-affinity"
        server = conn.compute.create_server(
            name="sdk-member", flavor_id="1",
            image_id=_ids(cloud, "image", "transcell-base"),
            networks=[{"uuid": _ids(cloud, "network", "private")}],
            scheduler_hints={"group": group.id}, metadata={"made-by": "sdk"})
        server = conn.compute.wait_for_server(server, wait=120)
        assert conn.compute.get_server_group(group.id).member_ids == [server.id]
        conn.compute.set_server_metadata(server, role="web", tier="1")
        assert conn.compute.get_server_metadata(server).metadata == {
            "made-by": "sdk", "role": "web", "tier": "1"}
        conn.compute.delete_server_metadata(server, ["tier"])
        assert conn.compute.get_server_metadata(server).metadata == {
            "made-by": "sdk", "role": "web"}
    finally:
        if server is not None:
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=120)
        assert conn.compute.get_server_group(group.id).member_ids == []
        conn.compute.delete_server_group(group)
