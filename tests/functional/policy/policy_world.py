"""A real ``transcell up`` with objects of the demo project for the policy tests to aim at."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cloudclients import CloudProcess

COMPUTE = "/compute/v2.1"
PLACEMENT_VERSION = {"OpenStack-API-Version": "placement 1.39"}


def ok(resp, *codes: int) -> Any:
    assert resp.status_code in (codes or (200,)), (resp.status_code, resp.text[:500])
    return resp.json() if resp.content else None


@dataclass
class World:
    """Objects of the demo project (and a few of the operator's), by name."""

    cloud: CloudProcess
    ids: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.ids[key]

    def watched(self) -> list[tuple[str, dict[str, str]]]:
        """What admin reads before and after each refused request: none of it may change."""
        i = self.ids
        p = PLACEMENT_VERSION
        return [
            (f"{COMPUTE}/servers/{i['server']}", {}),
            (f"{COMPUTE}/servers/{i['server']}/tags", {}),
            (f"{COMPUTE}/servers?all_tenants=1", {}),
            (f"{COMPUTE}/os-keypairs/{i['keypair']}?user_id={i['demo_user']}",
             {"OpenStack-API-Version": "compute 2.10"}),
            (f"{COMPUTE}/flavors/detail?is_public=None", {}),
            (f"{COMPUTE}/flavors/{i['flavor']}/os-extra_specs", {}),
            (f"{COMPUTE}/os-aggregates/{i['aggregate']}", {}),
            (f"{COMPUTE}/os-services", {"OpenStack-API-Version": "compute 2.53"}),
            (f"{COMPUTE}/os-quota-sets/{i['demo_project']}", {}),
            (f"{COMPUTE}/os-quota-class-sets/default", {}),
            (f"/image/v2/images/{i['image']}", {}),
            ("/image/v2/images?limit=1000", {}),
            (f"/image/v2/metadefs/namespaces/{i['namespace']}", {}),
            ("/image/v2/metadefs/namespaces?limit=1000", {}),
            ("/image/v2/metadefs/resource_types", {}),
            (f"/network/v2.0/networks/{i['network']}", {}),
            ("/network/v2.0/networks", {}),
            (f"/network/v2.0/subnets/{i['subnet']}", {}),
            (f"/network/v2.0/ports/{i['port']}", {}),
            (f"/network/v2.0/ports/{i['server_port']}", {}),
            (f"/network/v2.0/ports/{i['server_port']}/bindings", {}),
            ("/network/v2.0/ports", {}),
            (f"/network/v2.0/security-groups/{i['security_group']}", {}),
            (f"/network/v2.0/routers/{i['router']}", {}),
            (f"/network/v2.0/ports?device_id={i['router']}", {}),
            (f"/network/v2.0/subnetpools/{i['subnetpool']}", {}),
            (f"/volume/v3/volumes/{i['volume']}", {}),
            ("/volume/v3/volumes/detail?all_tenants=1", {}),
            ("/volume/v3/snapshots/detail?all_tenants=1", {}),
            (f"/volume/v3/attachments/{i['attachment']}",
             {"OpenStack-API-Version": "volume 3.44"}),
            (f"{COMPUTE}/servers/{i['server']}/os-volume_attachments", {}),
            ("/placement/resource_providers", p),
            (f"/placement/resource_providers/{i['provider']}/inventories", p),
            (f"/placement/resource_providers/{i['provider']}/traits", p),
            (f"/placement/resource_providers/{i['provider']}/aggregates", p),
            (f"/placement/allocations/{i['server']}", p),
            ("/placement/resource_classes", p),
            ("/placement/traits?name=startswith:CUSTOM_", p),
            ("/identity/v3/projects", {}),
            ("/identity/v3/users", {}),
            ("/identity/v3/roles", {}),
            ("/identity/v3/role_assignments", {}),
        ]

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for path, headers in self.watched():
            resp = self.cloud.request("GET", path, headers=headers)
            state[path] = (resp.status_code, resp.json() if resp.content else None)
        resp = self.cloud.request("GET", "/identity/v3/auth/tokens",
                                  headers={"X-Subject-Token": self.ids["demo_token"]})
        state["demo token"] = resp.status_code
        return state


def _wait_volume(cloud: CloudProcess, volume_id: str, status: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = ok(cloud.request("GET", f"/volume/v3/volumes/{volume_id}"))["volume"]
        if found["status"] == status:
            return found
        time.sleep(0.2)
    raise AssertionError(f"volume {volume_id} never became {status}")


def _wait_active(cloud: CloudProcess, server_id: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        server = ok(cloud.request("GET", f"{COMPUTE}/servers/{server_id}"))["server"]
        if server["status"] == "ACTIVE" and server.get("OS-EXT-STS:task_state") is None:
            return
        assert server["status"] != "ERROR", server.get("fault")
        time.sleep(0.3)
    raise AssertionError(f"server {server_id} did not become ACTIVE")


def build_world(cloud: CloudProcess) -> World:
    """A server with its port, an image, a network with a subnet and a port, a keypair,
    tags and a security group of project demo; a flavor, aggregate and service of admin."""
    ids: dict[str, str] = {}
    demo = "transcell-demo"
    me = ok(cloud.request("GET", "/identity/v3/auth/tokens", cloud=demo,
                          headers={"X-Subject-Token": cloud.token(demo)}))["token"]
    ids["demo_user"], ids["demo_project"] = me["user"]["id"], me["project"]["id"]
    ids["demo_token"] = cloud.token(demo)
    base = ok(cloud.request("GET", "/image/v2/images?name=transcell-base"))["images"][0]
    ids["base_image"] = base["id"]
    private = ok(cloud.request("GET", "/network/v2.0/networks?name=private"))["networks"][0]

    server = ok(cloud.request("POST", f"{COMPUTE}/servers", cloud=demo, json={"server": {
        "name": "policy-target", "flavorRef": "1", "imageRef": base["id"],
        "networks": [{"uuid": private["id"]}]}}), 202)["server"]
    ids["server"] = server["id"]
    _wait_active(cloud, server["id"])
    ok(cloud.request("PUT", f"{COMPUTE}/servers/{server['id']}/tags/keep", cloud=demo,
                     version="2.26"), 201, 204)
    ports = ok(cloud.request("GET", f"/network/v2.0/ports?device_id={server['id']}"))["ports"]
    ids["server_port"] = ports[0]["id"]
    ids["server_host"] = ports[0]["binding:host_id"]

    image = ok(cloud.request("POST", "/image/v2/images", cloud=demo, json={
        "name": "demo-image", "disk_format": "raw", "container_format": "bare",
        "tags": ["keep"]}), 201)
    ids["image"] = image["id"]

    net = ok(cloud.request("POST", "/network/v2.0/networks", cloud=demo,
                           json={"network": {"name": "demo-net", "tags": ["keep"]}}),
             201)["network"]
    ids["network"] = net["id"]
    sub = ok(cloud.request("POST", "/network/v2.0/subnets", cloud=demo, json={"subnet": {
        "network_id": net["id"], "cidr": "192.168.77.0/24", "ip_version": 4,
        "name": "demo-subnet"}}), 201)["subnet"]
    ids["subnet"] = sub["id"]
    port = ok(cloud.request("POST", "/network/v2.0/ports", cloud=demo, json={"port": {
        "network_id": net["id"], "name": "demo-port"}}), 201)["port"]
    ids["port"] = port["id"]
    ids["router"] = ok(cloud.request("POST", "/network/v2.0/routers", cloud=demo, json={
        "router": {"name": "demo-router"}}), 201)["router"]["id"]
    ok(cloud.request("PUT", f"/network/v2.0/routers/{ids['router']}/add_router_interface",
                     cloud=demo, json={"subnet_id": sub["id"]}))
    ids["subnetpool"] = ok(cloud.request("POST", "/network/v2.0/subnetpools", cloud=demo,
                                         json={"subnetpool": {"name": "demo-pool",
                                                              "prefixes": ["10.98.0.0/16"]}}),
                           201)["subnetpool"]["id"]
    for collection in ("subnets", "ports", "routers", "subnetpools"):
        ok(cloud.request("PUT", f"/network/v2.0/{collection}/{ids[collection[:-1]]}/tags/keep",
                         cloud=demo), 201)
    groups = ok(cloud.request("GET", "/network/v2.0/security-groups",
                              cloud=demo))["security_groups"]
    ids["security_group"] = groups[0]["id"]
    ids["security_group_rule"] = groups[0]["security_group_rules"][0]["id"]

    cinder = {"OpenStack-API-Version": "volume 3.44"}
    volume = ok(cloud.request("POST", "/volume/v3/volumes", cloud=demo, headers=cinder, json={
        "volume": {"name": "demo-volume", "size": 1, "metadata": {"keep": "1"}}}),
        202)["volume"]
    ids["volume"] = volume["id"]
    _wait_volume(cloud, volume["id"], "available")
    ids["volume_snapshot"] = ok(cloud.request(
        "POST", "/volume/v3/snapshots", cloud=demo, headers=cinder,
        json={"snapshot": {"volume_id": volume["id"], "name": "demo-snapshot"}}),
        202)["snapshot"]["id"]
    ok(cloud.request("POST", f"{COMPUTE}/servers/{server['id']}/os-volume_attachments",
                     cloud=demo, json={"volumeAttachment": {"volumeId": volume["id"]}}))
    attached = _wait_volume(cloud, volume["id"], "in-use")
    ids["attachment"] = attached["attachments"][0]["attachment_id"]

    ids["keypair"] = "demo-key"
    ok(cloud.request("POST", f"{COMPUTE}/os-keypairs", cloud=demo,
                     json={"keypair": {"name": "demo-key"}}), 200, 201)

    flavors = ok(cloud.request("GET", f"{COMPUTE}/flavors"))["flavors"]
    ids["flavor"] = flavors[0]["id"]
    ids["other_flavor"] = flavors[1]["id"]
    ok(cloud.request("POST", f"{COMPUTE}/flavors/{ids['flavor']}/os-extra_specs",
                     json={"extra_specs": {"policy:probe": "1"}}))
    agg = ok(cloud.request("POST", f"{COMPUTE}/os-aggregates", json={
        "aggregate": {"name": f"policy-{uuid.uuid4().hex[:6]}"}}))["aggregate"]
    ids["aggregate"] = str(agg["id"])
    services = ok(cloud.request("GET", f"{COMPUTE}/os-services?binary=nova-compute",
                                version="2.53"))["services"]
    ids["service"], ids["compute_host"] = services[0]["id"], services[0]["host"]
    # a public metadata definitions namespace with one of everything, an admin's
    ids["namespace"] = "policy-probe"
    ok(cloud.request("POST", "/image/v2/metadefs/namespaces", json={
        "namespace": ids["namespace"], "visibility": "public",
        "objects": [{"name": "keep"}], "tags": [{"name": "keep"}],
        "properties": {"keep": {"title": "Keep", "type": "string"}},
        "resource_type_associations": [{"name": "OS::Glance::Image"}]}), 201)
    providers = ok(cloud.request("GET", "/placement/resource_providers",
                                 headers=PLACEMENT_VERSION))["resource_providers"]
    ids["provider"] = providers[0]["uuid"]
    return World(cloud, ids)
