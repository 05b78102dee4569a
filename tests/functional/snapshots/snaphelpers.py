"""Driving snapshots, backups and rebuilds through the public APIs, and reading what the
cloud holds on disk (guest disks, chunks in the image store) to check them."""

from __future__ import annotations

import os
import time
from typing import Any

COMPUTE = "/compute/v2.1"
IMAGES = "/image/v2/images"
ADMIN = "transcell-admin"
USER = "transcell-demo"


def base_image(cloud) -> str:
    return cloud.request("GET", f"{IMAGES}?name=transcell-base").json()["images"][0]["id"]


def network_id(cloud) -> str:
    resp = cloud.request("GET", "/network/v2.0/networks?name=private")
    return resp.json()["networks"][0]["id"]


def boot(cloud, name: str, image: str | None = None, flavor: str = "1",
         cloud_name: str = USER) -> dict:
    body = {"server": {"name": name, "flavorRef": flavor,
                       "imageRef": image or base_image(cloud),
                       "networks": [{"uuid": network_id(cloud)}]}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=cloud_name, json=body,
                         version="2.52")
    assert resp.status_code == 202, resp.text
    return wait_server(cloud, resp.json()["server"]["id"], "ACTIVE")


def action(cloud, server_id: str, body: dict, cloud_name: str = USER,
           version: str | None = "2.45"):
    return cloud.request("POST", f"{COMPUTE}/servers/{server_id}/action", cloud=cloud_name,
                         json=body, version=version)


def server(cloud, server_id: str) -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}", version="2.53")
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def wait_server(cloud, server_id: str, status: str, timeout: float = 120) -> dict:
    cloud.wait_status(server_id, status, timeout=timeout)
    return server(cloud, server_id)


def image(cloud, image_id: str, cloud_name: str = ADMIN) -> dict | None:
    resp = cloud.request("GET", f"{IMAGES}/{image_id}", cloud=cloud_name)
    return resp.json() if resp.status_code == 200 else None


def wait_image(cloud, image_id: str, status: str = "active", timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    found: dict | None = None
    while time.monotonic() < deadline:
        found = image(cloud, image_id)
        if found is not None and found["status"] == status:
            return found
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} is {found and found['status']}, not {status}")


def images_of(cloud, server_id: str) -> list[dict]:
    resp = cloud.request("GET", f"{IMAGES}?instance_uuid={server_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["images"]


def delete_server(cloud, server_id: str) -> None:
    cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}")
    cloud.wait_gone(server_id)


def instance_dir(cloud, found: dict) -> str:
    return os.path.join(cloud.state_dir, "hosts", found["OS-EXT-SRV-ATTR:host"], "instances",
                        found["id"])


def root_disk(cloud, found: dict) -> str:
    return os.path.join(instance_dir(cloud, found), "disk")


def chunk_count(cloud) -> int:
    """Distinct chunks in the global image store (each is one file named by its digest)."""
    top = os.path.join(cloud.state_dir, "images", "chunks")
    return sum(len([n for n in files if not n.startswith(".")])
               for _, _, files in os.walk(top))


def events(cloud, server_id: str, action_name: str) -> list[dict[str, Any]]:
    """Events of the newest action ``action_name`` of the server (at 2.84: with details)."""
    listed = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions",
                           version="2.84").json()["instanceActions"]
    newest = next(a for a in listed if a["action"] == action_name)
    return cloud.request(
        "GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions/{newest['request_id']}",
        version="2.84").json()["instanceAction"]["events"]


def hold(cloud, point: str, subject: str) -> str:
    directory = os.path.join(cloud.state_dir, "faults", "saga")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"hold-{point}@{subject}")
    open(path, "w").close()
    return path


def wait_reached(cloud, point: str, subject: str, timeout: float = 60) -> None:
    path = os.path.join(cloud.state_dir, "faults", "saga", f"reached-{point}@{subject}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.1)
    raise AssertionError(f"{point} not reached for {subject}")


def set_policy(cloud, rules: dict[str, str]) -> None:
    path = os.path.join(cloud.state_dir, "policy.yaml")
    with open(path, "w") as fh:
        for name, check in rules.items():
            fh.write(f'"{name}": "{check}"\n')
    # oslo.policy notices a changed file by its mtime: make sure it moves
    later = time.time() + 2
    os.utime(path, (later, later))
