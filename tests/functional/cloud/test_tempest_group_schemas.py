"""Server group and server metadata responses checked against Tempest's own schemas,
at each microversion where Tempest's schema changes (2.1, 2.13, 2.64, 2.71)."""

from __future__ import annotations

import pytest
from test_tempest_schemas import check

COMPUTE = "/compute/v2.1"
DEMO = "transcell-demo"


@pytest.mark.parametrize("version,module_version,body", [
    ("2.1", "v2_1", {"name": "t1", "policies": ["affinity"]}),
    ("2.13", "v2_13", {"name": "t13", "policies": ["anti-affinity"]}),
    ("2.15", "v2_13", {"name": "t15", "policies": ["soft-affinity"]}),
    ("2.64", "v2_64", {"name": "t64", "policy": "anti-affinity",
                       "rules": {"max_server_per_host": 2}}),
    ("2.64", "v2_64", {"name": "t64b", "policy": "soft-anti-affinity"}),
])
def test_server_group_bodies(cloud, version, module_version, body):
    path = f"{COMPUTE}/os-server-groups"
    made = check(module_version, "server_groups", "create_show_server_group",
                 cloud.request("POST", path, cloud=DEMO, version=version,
                               json={"server_group": body}))
    gid = made["server_group"]["id"]
    check(module_version, "server_groups", "create_show_server_group",
          cloud.request("GET", f"{path}/{gid}", cloud=DEMO, version=version))
    listed = check(module_version, "server_groups", "list_server_groups",
                   cloud.request("GET", path, cloud=DEMO, version=version))
    assert gid in {g["id"] for g in listed["server_groups"]}
    check(module_version, "server_groups", "list_server_groups",
          cloud.request("GET", f"{path}?all_projects=True", version=version))
    check(module_version, "server_groups", "delete_server_group",
          cloud.request("DELETE", f"{path}/{gid}", cloud=DEMO, version=version))


def test_member_and_metadata_bodies(cloud):
    group = check("v2_64", "server_groups", "create_show_server_group", cloud.request(
        "POST", f"{COMPUTE}/os-server-groups", cloud=DEMO, version="2.64",
        json={"server_group": {"name": "schema-members", "policy": "affinity"}}))
    gid = group["server_group"]["id"]
    image = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]
    net = cloud.request("GET", "/network/v2.0/networks?name=private").json()["networks"][0]
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=DEMO, json={
        "server": {"name": "schema-member", "flavorRef": "1", "imageRef": image["id"],
                   "networks": [{"uuid": net["id"]}], "metadata": {"a": "1"}},
        "os:scheduler_hints": {"group": gid}})
    sid = check("v2_1", "servers", "create_server_with_admin_pass", resp)["server"]["id"]
    try:
        cloud.wait_status(sid, "ACTIVE", cloud=DEMO)
        shown = check("v2_71", "servers", "get_server", cloud.request(
            "GET", f"{COMPUTE}/servers/{sid}", cloud=DEMO, version="2.71"))
        assert shown["server"]["server_groups"] == [gid]
        members = check("v2_64", "server_groups", "create_show_server_group", cloud.request(
            "GET", f"{COMPUTE}/os-server-groups/{gid}", cloud=DEMO, version="2.64"))
        assert members["server_group"]["members"] == [sid]
        base = f"{COMPUTE}/servers/{sid}/metadata"
        check("v2_1", "servers", "set_server_metadata", cloud.request(
            "PUT", base, cloud=DEMO, json={"metadata": {"a": "1", "b": "2"}}))
        check("v2_1", "servers", "update_server_metadata", cloud.request(
            "POST", base, cloud=DEMO, json={"metadata": {"c": "3"}}))
        listed = check("v2_1", "servers", "list_server_metadata",
                       cloud.request("GET", base, cloud=DEMO))
        assert listed["metadata"] == {"a": "1", "b": "2", "c": "3"}
        check("v2_1", "servers", "set_show_server_metadata_item", cloud.request(
            "PUT", f"{base}/d", cloud=DEMO, json={"meta": {"d": "4"}}))
        check("v2_1", "servers", "set_show_server_metadata_item",
              cloud.request("GET", f"{base}/d", cloud=DEMO))
        check("v2_1", "servers", "delete_server_metadata_item",
              cloud.request("DELETE", f"{base}/d", cloud=DEMO))
    finally:
        cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
        cloud.wait_gone(sid)
        cloud.request("DELETE", f"{COMPUTE}/os-server-groups/{gid}")
