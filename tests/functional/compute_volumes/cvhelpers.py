"""Servers with volumes on a running cloud, driven through the compute and block
storage APIs, and read where the volume service keeps their files."""

from __future__ import annotations

import json
import os
import time
from typing import Any

COMPUTE = "/compute/v2.1"
VOLUME = "/volume/v3"
USER = "transcell-demo"
ADMIN = "transcell-admin"
CINDER = {"OpenStack-API-Version": "volume 3.27"}


def image_id(cloud) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]


def network_id(cloud) -> str:
    return cloud.request("GET", "/network/v2.0/networks?name=private").json()["networks"][0][
        "id"]


def create_server(cloud, name: str, version: str = "2.67", expect: int = 202,
                  **fields: Any):
    body = {"server": {"name": name, "flavorRef": "1",
                       "networks": [{"uuid": network_id(cloud)}], **fields}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=USER, json=body, version=version)
    assert resp.status_code == expect, resp.text
    return resp


def boot(cloud, name: str, **fields: Any) -> dict:
    fields.setdefault("imageRef", image_id(cloud))
    server_id = create_server(cloud, name, **fields).json()["server"]["id"]
    cloud.wait_status(server_id, "ACTIVE", cloud=USER)
    return server(cloud, server_id)


def server(cloud, server_id: str, version: str = "2.79") -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}", version=version)
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def delete_server(cloud, server_id: str) -> None:
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}", cloud=USER)
    assert resp.status_code == 204, resp.text
    cloud.wait_gone(server_id)


def create_volume(cloud, name: str, size: int = 1, volume_type: str | None = None,
                  **extra: Any) -> dict:
    body: dict[str, Any] = {"name": name, "size": size, **extra}
    if volume_type:
        body["volume_type"] = volume_type
    resp = cloud.request("POST", f"{VOLUME}/volumes", cloud=USER, json={"volume": body},
                         headers=CINDER)
    assert resp.status_code == 202, resp.text
    return wait_volume(cloud, resp.json()["volume"]["id"], "available")


def volume(cloud, volume_id: str) -> dict:
    resp = cloud.request("GET", f"{VOLUME}/volumes/{volume_id}", headers=CINDER)
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


def volume_exists(cloud, volume_id: str) -> bool:
    resp = cloud.request("GET", f"{VOLUME}/volumes/{volume_id}", headers=CINDER)
    assert resp.status_code in (200, 404), resp.text
    return resp.status_code == 200


def wait_volume(cloud, volume_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    found: dict = {}
    while time.monotonic() < deadline:
        found = volume(cloud, volume_id)
        if found["status"] == status:
            return found
        time.sleep(0.1)
    raise AssertionError(f"volume {volume_id} never became {status}: {found}")


def wait_volume_gone(cloud, volume_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not volume_exists(cloud, volume_id):
            return
        time.sleep(0.1)
    raise AssertionError(f"volume {volume_id} was not deleted")


def attachments_of(cloud, volume_id: str) -> list[dict]:
    """What the volume service counts, through its own attachments API (3.27)."""
    resp = cloud.request("GET", f"{VOLUME}/attachments?volume_id={volume_id}&all_tenants=1",
                         cloud=ADMIN, headers=CINDER)
    assert resp.status_code == 200, resp.text
    return [a for a in resp.json()["attachments"] if a.get("volume_id") == volume_id]


def attach(cloud, server_id: str, volume_id: str, version: str = "2.79", wait: bool = True,
           **fields: Any):
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server_id}/os-volume_attachments",
                         cloud=USER, version=version,
                         json={"volumeAttachment": {"volumeId": volume_id, **fields}})
    if wait:
        assert resp.status_code == 200, resp.text
        wait_volume(cloud, volume_id, "in-use")
    return resp


def detach(cloud, server_id: str, volume_id: str, wait: bool = True):
    resp = cloud.request(
        "DELETE", f"{COMPUTE}/servers/{server_id}/os-volume_attachments/{volume_id}",
        cloud=USER)
    if wait:
        assert resp.status_code == 202, resp.text
        wait_volume(cloud, volume_id, "available")
    return resp


def listed(cloud, server_id: str, version: str = "2.79") -> list[dict]:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-volume_attachments",
                         cloud=USER, version=version)
    assert resp.status_code == 200, resp.text
    return resp.json()["volumeAttachments"]


def attached_ids(cloud, server_id: str) -> list[str]:
    return sorted(v["id"] for v in server(cloud, server_id)["os-extended-volumes:volumes_attached"])


def locate(cloud, server_id: str) -> dict:
    return json.loads(cloud.transcell("instance", "locate", server_id, "--json").stdout)


def host_of(found: dict) -> str:
    return found["OS-EXT-SRV-ATTR:host"]


def driver(cloud, host: str):
    """The fake driver of ``host``, opened on the host's state from this process: a guest's
    volumes are files and records on disk, so reads and writes go where the guest's would."""
    from transcell.compute.virt.fake import FakeDriver
    base = os.path.join(cloud.state_dir, "hosts", host)
    return FakeDriver(host, os.path.join(base, "instances"), os.path.join(base, "image-cache"))


def read_file(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def hold(cloud, point: str, subject: str) -> str:
    base = os.path.join(cloud.state_dir, "faults", "saga")
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, f"hold-{point}@{subject}")
    open(path, "w").close()
    return path


def wait_reached(cloud, point: str, subject: str, timeout: float = 30) -> None:
    path = os.path.join(cloud.state_dir, "faults", "saga", f"reached-{point}@{subject}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise AssertionError(f"{point} was not reached for {subject}")


def arm_driver_fault(cloud, host: str, method: str, message: str) -> None:
    """The next ``method`` call of the host's fake driver raises ``message``."""
    base = os.path.join(cloud.state_dir, "hosts", host, "faults")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, method), "w") as fh:
        fh.write(message)


def bdm_rows(cloud, server_id: str) -> list[dict]:
    return [v for v in locate(cloud, server_id)["volumes"]]
