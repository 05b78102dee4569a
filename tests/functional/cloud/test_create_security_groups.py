"""A server created with security groups is built with them, as Nova builds it: the
create answer, the server's views and its ports name the groups asked for, not the
default group; a create naming none gets the default group."""

from __future__ import annotations

import uuid

from test_server_lifecycle import COMPUTE, create_server

USER = "transcell-demo"


def _group(cloud, name: str) -> dict:
    resp = cloud.request("POST", "/network/v2.0/security-groups", cloud=USER,
                         json={"security_group": {"name": name}})
    assert resp.status_code == 201, resp.text
    return resp.json()["security_group"]


def _port_groups(cloud, server_id: str) -> list[set[str]]:
    resp = cloud.request("GET", f"/network/v2.0/ports?device_id={server_id}", cloud=USER)
    assert resp.status_code == 200, resp.text
    return [set(p["security_groups"]) for p in resp.json()["ports"]]


def _shown(cloud, server_id: str) -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}", cloud=USER)
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def test_a_server_shows_and_has_the_groups_it_was_created_with(cloud):
    suffix = uuid.uuid4().hex[:6]
    web, db = _group(cloud, f"web-{suffix}"), _group(cloud, f"db-{suffix}")
    # by name and by id, one named twice: each group once, in the order asked
    made = create_server(cloud, f"sg-create-{suffix}", security_groups=[
        {"name": web["name"]}, {"name": db["id"]}, {"name": web["name"]}])
    wanted = [{"name": web["name"]}, {"name": db["name"]}]
    assert made["security_groups"] == wanted
    cloud.wait_status(made["id"], "ACTIVE", cloud=USER)
    assert _shown(cloud, made["id"])["security_groups"] == wanted
    listed = cloud.request("GET", f"{COMPUTE}/servers/detail", cloud=USER).json()["servers"]
    assert next(s for s in listed if s["id"] == made["id"])["security_groups"] == wanted
    assert _port_groups(cloud, made["id"]) == [{web["id"], db["id"]}]
    groups = cloud.request("GET", f"{COMPUTE}/servers/{made['id']}/os-security-groups",
                           cloud=USER).json()["security_groups"]
    assert sorted(g["name"] for g in groups) == sorted([web["name"], db["name"]])
    assert cloud.request("DELETE", f"{COMPUTE}/servers/{made['id']}",
                         cloud=USER).status_code == 204
    cloud.wait_gone(made["id"])


def test_a_server_created_without_groups_has_the_default_group(cloud):
    made = create_server(cloud, "sg-create-default")
    assert made["security_groups"] == [{"name": "default"}]
    cloud.wait_status(made["id"], "ACTIVE", cloud=USER)
    assert _shown(cloud, made["id"])["security_groups"] == [{"name": "default"}]
    default = cloud.request("GET", "/network/v2.0/security-groups?name=default",
                            cloud=USER).json()["security_groups"]
    assert _port_groups(cloud, made["id"]) == [{default[0]["id"]}]
    assert cloud.request("DELETE", f"{COMPUTE}/servers/{made['id']}",
                         cloud=USER).status_code == 204
    cloud.wait_gone(made["id"])


def test_an_unknown_group_is_refused_and_nothing_is_built(cloud):
    name = f"sg-create-refused-{uuid.uuid4().hex[:6]}"
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=USER, json={"server": {
        "name": name, "flavorRef": "1", "imageRef": _image(cloud),
        "security_groups": [{"name": "no-such-group"}]}})
    assert resp.status_code == 400 and "badRequest" in resp.json()
    listed = cloud.request("GET", f"{COMPUTE}/servers?name={name}", cloud=USER)
    assert listed.json()["servers"] == []


def _image(cloud) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]
