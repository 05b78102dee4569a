"""Helpers of the tests of the calls other services make to compute (external events,
assisted volume snapshots), on a real ``transcell up``: servers, volumes, a user
with only the ``service`` role, and the fake driver's records on the host."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from cloudclients import CloudProcess

COMPUTE = "/compute/v2.1"
VOLUME = "/volume/v3"
DEMO = "transcell-demo"
READER = "transcell-reader"
CINDER = {"OpenStack-API-Version": "volume 3.27"}


def ok(resp: requests.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def boot(cloud: CloudProcess, name: str) -> dict:
    image = ok(cloud.request("GET", "/image/v2/images?name=transcell-base"))["images"][0]["id"]
    network = ok(cloud.request("GET", "/network/v2.0/networks?name=private"))["networks"][0]
    body = {"server": {"name": name, "flavorRef": "1", "imageRef": image,
                       "networks": [{"uuid": network["id"]}]}}
    server_id = ok(cloud.request("POST", f"{COMPUTE}/servers", cloud=DEMO, json=body),
                   202)["server"]["id"]
    cloud.wait_status(server_id, "ACTIVE", cloud=DEMO)
    return server(cloud, server_id)  # as an administrator sees it: with its host


def server(cloud: CloudProcess, server_id: str) -> dict:
    return ok(cloud.request("GET", f"{COMPUTE}/servers/{server_id}"))["server"]


def volume(cloud: CloudProcess, volume_id: str) -> dict:
    return ok(cloud.request("GET", f"{VOLUME}/volumes/{volume_id}", headers=CINDER))["volume"]


def wait_volume(cloud: CloudProcess, volume_id: str, status: str) -> dict:
    return wait_for(lambda: (found := volume(cloud, volume_id))["status"] == status and found,
                    f"volume {volume_id} {status}")


def create_volume(cloud: CloudProcess, name: str) -> dict:
    made = ok(cloud.request("POST", f"{VOLUME}/volumes", cloud=DEMO, headers=CINDER,
                            json={"volume": {"name": name, "size": 1}}), 202)["volume"]
    return wait_volume(cloud, made["id"], "available")


def attach(cloud: CloudProcess, server_id: str, volume_id: str) -> dict:
    ok(cloud.request("POST", f"{COMPUTE}/servers/{server_id}/os-volume_attachments",
                     cloud=DEMO, json={"volumeAttachment": {"volumeId": volume_id}}))
    return wait_volume(cloud, volume_id, "in-use")


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never saw {what}")


def driver(cloud: CloudProcess, host: str):
    """The fake driver of ``host`` opened on its state from this process, to read
    what the host recorded for a guest."""
    from transcell.compute.virt.fake import FakeDriver
    base = os.path.join(cloud.state_dir, "hosts", host)
    return FakeDriver(host, os.path.join(base, "instances"), os.path.join(base, "image-cache"))


def service_token(cloud: CloudProcess) -> str:
    """A token of a new user with only the ``service`` role (in the service project),
    made through the identity admin API: what a network or volume service holds."""
    identity = "/identity/v3"
    project = ok(cloud.request("GET", f"{identity}/projects?name=service"))["projects"][0]
    role = ok(cloud.request("GET", f"{identity}/roles?name=service"))["roles"][0]
    name, password = f"svc-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    user = ok(cloud.request("POST", f"{identity}/users", json={"user": {
        "name": name, "password": password, "domain_id": project["domain_id"],
        "default_project_id": project["id"]}}), 201)["user"]
    resp = cloud.request("PUT", f"{identity}/projects/{project['id']}/users/{user['id']}"
                                f"/roles/{role['id']}")
    assert resp.status_code == 204, resp.text
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "password": password, "domain": {"id": project["domain_id"]}}}},
        "scope": {"project": {"id": project["id"]}}}}
    resp = requests.post(f"{cloud.base_url}{identity}/auth/tokens", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    assert [r["name"] for r in resp.json()["token"]["roles"]] == ["service"]
    return resp.headers["X-Subject-Token"]
