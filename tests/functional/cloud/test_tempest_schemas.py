"""Live responses checked against Tempest's own response schemas.

Tempest rejects any key its schema for the microversion does not allow, so
these checks are what "matches Nova's bodies exactly" means in practice.
"""

from __future__ import annotations

import importlib

import pytest
from tempest.lib.common import rest_client

COMPUTE = "/compute/v2.1"


class _Resp(dict):
    def __init__(self, response):
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_code


def schema(version: str, module: str, name: str) -> dict:
    return getattr(importlib.import_module(
        f"tempest.lib.api_schema.response.compute.{version}.{module}"), name)


def check(version: str, module: str, name: str, response) -> dict:
    body = response.json() if response.content else ""
    rest_client.RestClient.validate_response(schema(version, module, name), _Resp(response),
                                             body)
    return body


@pytest.fixture(scope="module")
def server(cloud):
    image = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]
    net = cloud.request("GET", "/network/v2.0/networks?name=private").json()["networks"][0]
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo", json={
        "server": {"name": "schema-check", "flavorRef": "1", "imageRef": image["id"],
                   "networks": [{"uuid": net["id"]}]}})
    body = check("v2_1", "servers", "create_server_with_admin_pass", resp)
    server_id = body["server"]["id"]
    cloud.wait_status(server_id, "ACTIVE")
    yield server_id
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}")
    check("v2_1", "servers", "delete_server", resp)
    cloud.wait_gone(server_id)


@pytest.mark.parametrize("cloud_name", ["transcell-admin", "transcell-demo"])
def test_server_bodies_at_2_1(cloud, server, cloud_name):
    path = f"{COMPUTE}/servers"
    check("v2_1", "servers", "get_server", cloud.request("GET", f"{path}/{server}",
                                                         cloud=cloud_name))
    check("v2_1", "servers", "list_servers", cloud.request("GET", path, cloud=cloud_name))
    check("v2_1", "servers", "list_servers_detail",
          cloud.request("GET", f"{path}/detail", cloud=cloud_name))
    check("v2_1", "servers", "list_addresses",
          cloud.request("GET", f"{path}/{server}/ips", cloud=cloud_name))


def test_server_bodies_at_later_microversions(cloud, server):
    for version, module in (("2.9", "v2_9"), ("2.16", "v2_16"), ("2.19", "v2_19"),
                            ("2.26", "v2_26"), ("2.47", "v2_47")):
        resp = cloud.request("GET", f"{COMPUTE}/servers/{server}", version=version)
        check(module, "servers", "get_server", resp)
        resp = cloud.request("GET", f"{COMPUTE}/servers/detail", version=version)
        check(module, "servers", "list_servers_detail", resp)


def test_actions_and_events_at_2_1(cloud, server):
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server}/action", json={"os-stop": None})
    check("v2_1", "servers", "server_actions_common_schema", resp)
    cloud.wait_status(server, "SHUTOFF")
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server}/action", json={"os-start": None})
    check("v2_1", "servers", "server_actions_common_schema", resp)
    cloud.wait_status(server, "ACTIVE")
    body = check("v2_1", "servers", "list_instance_actions",
                 cloud.request("GET", f"{COMPUTE}/servers/{server}/os-instance-actions"))
    request_id = body["instanceActions"][0]["request_id"]
    check("v2_1", "servers", "show_instance_action", cloud.request(
        "GET", f"{COMPUTE}/servers/{server}/os-instance-actions/{request_id}"))


def test_operator_bodies_at_2_1(cloud, server):
    check("v2_1", "flavors", "list_flavors", cloud.request("GET", f"{COMPUTE}/flavors"))
    check("v2_1", "flavors", "list_flavors_details",
          cloud.request("GET", f"{COMPUTE}/flavors/detail"))
    check("v2_1", "flavors", "create_update_get_flavor_details",
          cloud.request("GET", f"{COMPUTE}/flavors/1"))
    check("v2_1", "migrations", "list_migrations", cloud.request("GET", f"{COMPUTE}/os-migrations"))
    check("v2_1", "limits", "get_limit", cloud.request("GET", f"{COMPUTE}/limits"))
    check("v2_1", "availability_zone", "list_availability_zone_list",
          cloud.request("GET", f"{COMPUTE}/os-availability-zone"))
    check("v2_1", "availability_zone", "list_availability_zone_list_detail",
          cloud.request("GET", f"{COMPUTE}/os-availability-zone/detail"))
    check("v2_1", "hypervisors", "list_hypervisors_detail",
          cloud.request("GET", f"{COMPUTE}/os-hypervisors/detail"))
    check("v2_1", "services", "list_services", cloud.request("GET", f"{COMPUTE}/os-services"))
    check("v2_53", "hypervisors", "list_hypervisors_detail",
          cloud.request("GET", f"{COMPUTE}/os-hypervisors/detail", version="2.53"))
    check("v2_53", "services", "list_services",
          cloud.request("GET", f"{COMPUTE}/os-services", version="2.53"))


def test_keypair_bodies_at_2_1(cloud):
    resp = cloud.request("POST", f"{COMPUTE}/os-keypairs", cloud="transcell-demo",
                         json={"keypair": {"name": "schema-key"}})
    check("v2_1", "keypairs", "create_keypair", resp)
    check("v2_1", "keypairs", "list_keypairs",
          cloud.request("GET", f"{COMPUTE}/os-keypairs", cloud="transcell-demo"))
    check("v2_1", "keypairs", "get_keypair",
          cloud.request("GET", f"{COMPUTE}/os-keypairs/schema-key", cloud="transcell-demo"))
    check("v2_1", "keypairs", "delete_keypair",
          cloud.request("DELETE", f"{COMPUTE}/os-keypairs/schema-key", cloud="transcell-demo"))


# -- 2.54 to the maximum ------------------------------------------------------------------

#: The cloud's maximum microversion.
MAX = "2.91"

#: Tempest's server schema modules up to the cloud's maximum, 2.91.
SERVER_MODULES = (("2.54", "v2_54"), ("2.57", "v2_57"), ("2.58", "v2_58"), ("2.59", "v2_59"),
                  ("2.62", "v2_62"), ("2.63", "v2_63"), ("2.69", "v2_63"), ("2.70", "v2_70"),
                  ("2.71", "v2_71"), ("2.73", "v2_73"), ("2.74", "v2_73"), ("2.75", "v2_75"),
                  ("2.79", "v2_79"), ("2.80", "v2_80"), ("2.81", "v2_80"), ("2.84", "v2_84"),
                  ("2.89", "v2_89"), ("2.90", "v2_89"), ("2.91", "v2_89"))


def test_the_maximum_is_what_these_checks_reach(cloud):
    versions = cloud.request("GET", COMPUTE, token=None).json()["version"]
    assert versions["version"] == MAX == SERVER_MODULES[-1][0]


@pytest.mark.parametrize("cloud_name", ["transcell-admin", "transcell-demo"])
def test_server_bodies_from_254(cloud, server, cloud_name):
    path = f"{COMPUTE}/servers"
    for version, module in SERVER_MODULES:
        for name, url in (("get_server", f"{path}/{server}"), ("list_servers", path),
                          ("list_servers_detail", f"{path}/detail")):
            check(module, "servers", name, cloud.request("GET", url, cloud=cloud_name,
                                                         version=version))
        # the same name again: the body is what matters, not a change
        resp = cloud.request("PUT", f"{path}/{server}", cloud=cloud_name, version=version,
                             json={"server": {"name": "schema-check"}})
        check(module, "servers", "update_server", resp)


def test_action_bodies_from_258(cloud, server):
    path = f"{COMPUTE}/servers/{server}/os-instance-actions"
    for cloud_name in ("transcell-admin", "transcell-demo"):
        for version, module in (("2.58", "v2_58"), ("2.62", "v2_62"), ("2.73", "v2_73"),
                                ("2.84", "v2_84")):
            body = check(module, "servers", "list_instance_actions",
                         cloud.request("GET", path, cloud=cloud_name, version=version))
            request_id = body["instanceActions"][0]["request_id"]
            check(module, "servers", "show_instance_action", cloud.request(
                "GET", f"{path}/{request_id}", cloud=cloud_name, version=version))
        paged = check("v2_58", "servers", "list_instance_actions", cloud.request(
            "GET", f"{path}?limit=1", cloud=cloud_name, version="2.58"))
        assert paged["links"][0]["rel"] == "next"


def test_flavor_and_limit_bodies_from_255(cloud):
    path = f"{COMPUTE}/flavors"
    for version, module in (("2.55", "v2_55"), ("2.61", "v2_61"), ("2.73", "v2_61"),
                            ("2.75", "v2_61"), (MAX, "v2_61")):
        check(module, "flavors", "list_flavors", cloud.request("GET", path, version=version))
        check(module, "flavors", "list_flavors_details",
              cloud.request("GET", f"{path}/detail", version=version))
        check(module, "flavors", "create_update_get_flavor_details",
              cloud.request("GET", f"{path}/1", cloud="transcell-demo", version=version))
    made = check("v2_61", "flavors", "create_update_get_flavor_details", cloud.request(
        "POST", path, version="2.61", json={"flavor": {
            "name": "schema-described", "ram": 64, "vcpus": 1, "disk": 1,
            "description": "checked against Tempest"}}))
    flavor_id = made["flavor"]["id"]
    check("v2_55", "flavors", "create_update_get_flavor_details", cloud.request(
        "PUT", f"{path}/{flavor_id}", version="2.55",
        json={"flavor": {"description": "changed"}}))
    check("v2_55", "flavors", "delete_flavor",
          cloud.request("DELETE", f"{path}/{flavor_id}", version="2.55"))
    for version in ("2.57", "2.73", MAX):
        check("v2_57", "limits", "get_limit",
              cloud.request("GET", f"{COMPUTE}/limits", cloud="transcell-demo", version=version))


def test_operator_bodies_at_the_maximum(cloud, server):
    for version, module in (("2.59", "v2_59"), ("2.73", "v2_59"), ("2.80", "v2_80"),
                            (MAX, "v2_80")):
        check(module, "migrations", "list_migrations",
              cloud.request("GET", f"{COMPUTE}/os-migrations", version=version))
    # Tempest has no schema past 2.53's for hypervisors, whose usage figures 2.88 removed
    for version in ("2.73", "2.87"):
        check("v2_53", "hypervisors", "list_hypervisors_detail",
              cloud.request("GET", f"{COMPUTE}/os-hypervisors/detail", version=version))
    latest = cloud.request("GET", f"{COMPUTE}/os-hypervisors/detail", version=MAX).json()
    for hypervisor in latest["hypervisors"]:
        assert {"id", "hypervisor_hostname", "hypervisor_type", "host_ip", "service",
                "state", "status"} <= set(hypervisor)
        assert not {"vcpus", "memory_mb", "local_gb", "cpu_info", "running_vms"} & \
            set(hypervisor)
    # 2.69 changes only what a cell that is down shows; every cell here answers
    for version in ("2.69", MAX):
        check("v2_53", "services", "list_services",
              cloud.request("GET", f"{COMPUTE}/os-services", version=version))


def test_keypair_bodies_at_the_maximum(cloud):
    path = f"{COMPUTE}/os-keypairs"
    resp = cloud.request("POST", path, cloud="transcell-demo", version=MAX,
                         json={"keypair": {"name": "schema-key-max"}})
    check("v2_2", "keypairs", "create_keypair", resp)
    check("v2_2", "keypairs", "list_keypairs",
          cloud.request("GET", path, cloud="transcell-demo", version=MAX))
    check("v2_2", "keypairs", "get_keypair",
          cloud.request("GET", f"{path}/schema-key-max", cloud="transcell-demo", version=MAX))
    check("v2_2", "keypairs", "delete_keypair",
          cloud.request("DELETE", f"{path}/schema-key-max", cloud="transcell-demo",
                        version=MAX))


def test_a_server_on_a_chosen_host_at_274(cloud):
    """The create body with 2.74's host and hypervisor_hostname, and what it builds."""
    image = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]
    resp = cloud.request("POST", f"{COMPUTE}/servers", version="2.74", json={
        "server": {"name": "schema-placed", "flavorRef": "1", "imageRef": image["id"],
                   "networks": "none", "host": "cell2-host2",
                   "hypervisor_hostname": "cell2-host2"}})
    server_id = check("v2_1", "servers", "create_server_with_admin_pass",
                      resp)["server"]["id"]
    try:
        cloud.wait_status(server_id, "ACTIVE")
        shown = check("v2_84", "servers", "get_server", cloud.request(
            "GET", f"{COMPUTE}/servers/{server_id}", version=MAX))["server"]
        assert shown["OS-EXT-SRV-ATTR:host"] == "cell2-host2"
    finally:
        cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}")
        cloud.wait_gone(server_id)
