"""Volumes and routed ports of a running cloud, driven through the block storage,
compute and network APIs, and their files read where the backends keep them."""

from __future__ import annotations

import os
import time

import movehelpers as mh

VOLUME = "/volume/v3"
MIB = 1024 * 1024


def create_volume(cloud, name: str, volume_type: str, size: int = 1,
                  cloud_name: str = mh.USER, **extra) -> dict:
    body = {"volume": {"name": name, "size": size, "volume_type": volume_type, **extra}}
    resp = cloud.request("POST", f"{VOLUME}/volumes", cloud=cloud_name, json=body,
                         version=None, headers={"OpenStack-API-Version": "volume 3.27"})
    assert resp.status_code == 202, resp.text
    return wait_volume(cloud, resp.json()["volume"]["id"], "available")


def volume(cloud, volume_id: str) -> dict:
    resp = cloud.request("GET", f"{VOLUME}/volumes/{volume_id}",
                         headers={"OpenStack-API-Version": "volume 3.27"})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


def wait_volume(cloud, volume_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    found: dict = {}
    while time.monotonic() < deadline:
        found = volume(cloud, volume_id)
        if found["status"] == status:
            return found
        assert found["status"] != "error", found
        time.sleep(0.2)
    raise AssertionError(f"volume {volume_id} never became {status}: {found}")


def backend_of(found: dict) -> str:
    """The backend in Cinder's host string ``host@backend#pool``."""
    return found["os-vol-host-attr:host"].split("@", 1)[1].split("#", 1)[0]


def volume_file(cloud, volume_id: str, backend: str) -> str:
    return os.path.join(cloud.state_dir, "volumes", backend, f"volume-{volume_id}")


def attach(cloud, server_id: str, volume_id: str, cloud_name: str = mh.USER) -> dict:
    resp = cloud.request("POST", f"{mh.COMPUTE}/servers/{server_id}/os-volume_attachments",
                         cloud=cloud_name, json={"volumeAttachment": {"volumeId": volume_id}},
                         version="2.79")
    assert resp.status_code == 200, resp.text
    wait_volume(cloud, volume_id, "in-use")
    return resp.json()["volumeAttachment"]


def detach(cloud, server_id: str, volume_id: str, cloud_name: str = mh.USER,
           then: str = "available") -> None:
    resp = cloud.request(
        "DELETE", f"{mh.COMPUTE}/servers/{server_id}/os-volume_attachments/{volume_id}",
        cloud=cloud_name)
    assert resp.status_code == 202, resp.text
    if then == "available":
        wait_volume(cloud, volume_id, "available")
    else:
        wait_for_attachments(cloud, volume_id, then)


def wait_for_attachments(cloud, volume_id: str, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    found: dict = {}
    while time.monotonic() < deadline:
        found = volume(cloud, volume_id)
        if len(found["attachments"]) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"volume {volume_id} never had {count} attachments: {found}")


def attached_ids(cloud, server_id: str) -> list[str]:
    found = mh.server(cloud, server_id, version="2.79")
    return sorted(v["id"] for v in found["os-extended-volumes:volumes_attached"])


def attachment_hosts(cloud, volume_id: str) -> list[str]:
    return sorted(a.get("host_name") or "" for a in volume(cloud, volume_id)["attachments"])


def write_pattern(path: str, seed: bytes) -> dict[int, bytes]:
    """Bytes a guest wrote at a few offsets (one past the first chunk, one near the end)."""
    size = os.path.getsize(path)
    written = {}
    with open(path, "r+b") as fh:
        for offset in (0, 5 * MIB + 17, size - 4096):
            data = (seed * (4096 // len(seed) + 1))[:4096]
            fh.seek(offset)
            fh.write(data)
            written[offset] = data
    return written


def assert_pattern(path: str, written: dict[int, bytes]) -> None:
    with open(path, "rb") as fh:
        for offset, data in written.items():
            fh.seek(offset)
            assert fh.read(len(data)) == data, f"{path} lost what was written at {offset}"


def routed(cloud) -> dict:
    resp = cloud.request("GET", "/network/v2.0/networks?name=routed")
    assert resp.status_code == 200, resp.text
    return resp.json()["networks"][0]


def boot_on(cloud, name: str, network_id: str, flavor: str = "11") -> dict:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": mh.image_id(cloud),
                       "networks": [{"uuid": network_id}]}}
    resp = cloud.request("POST", f"{mh.COMPUTE}/servers", cloud=mh.USER, json=body)
    assert resp.status_code == 202, resp.text
    return cloud.wait_status(resp.json()["server"]["id"], "ACTIVE")


def port_of(cloud, server_id: str) -> dict:
    resp = cloud.request("GET", f"/network/v2.0/ports?device_id={server_id}")
    assert resp.status_code == 200, resp.text
    ports = resp.json()["ports"]
    assert len(ports) == 1, ports
    return ports[0]

