"""createImage of a server booted from a volume, as Nova does it: each volume is
snapshotted (forced, in use) and the image, without data, maps each snapshot
(source_type snapshot) to a volume at the same device, size and boot index."""

from __future__ import annotations

import json
import os
import uuid as uuidlib

import snaphelpers as sh

VOLUME = "/volume/v3"
CINDER = {"OpenStack-API-Version": "volume 3.27"}


def _volume(scloud, volume_id: str) -> dict | None:
    resp = scloud.request("GET", f"{VOLUME}/volumes/{volume_id}", headers=CINDER)
    return resp.json()["volume"] if resp.status_code == 200 else None


def _read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def test_a_volume_backed_server_is_imaged_as_a_copy_of_its_volume(scloud):
    body = {"server": {"name": "bfv-snap", "flavorRef": "1", "imageRef": "",
                       "networks": [{"uuid": sh.network_id(scloud)}],
                       "block_device_mapping_v2": [{
                           "uuid": sh.base_image(scloud), "source_type": "image",
                           "destination_type": "volume", "boot_index": 0, "volume_size": 1,
                           "delete_on_termination": True}]}}
    resp = scloud.request("POST", f"{sh.COMPUTE}/servers", cloud=sh.USER, json=body,
                          version="2.52")
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    sh.wait_server(scloud, sid, "ACTIVE")
    [boot] = json.loads(scloud.transcell("instance", "locate", sid, "--json").stdout)["volumes"]
    payload = os.urandom(4096)
    with open(boot["path"], "r+b") as fh:
        fh.seek(1024 * 1024)
        fh.write(payload)
    # backups of volume-backed servers are Nova's 400
    resp = sh.action(scloud, sid, {"createBackup": {"name": "b", "backup_type": "daily",
                                                    "rotation": 1}})
    assert resp.status_code == 400, resp.text
    # the policy for volume-backed images is asked for
    try:
        sh.set_policy(scloud, {"os_compute_api:servers:create_image:allow_volume_backed":
                               "rule:admin_api"})
        resp = sh.action(scloud, sid, {"createImage": {"name": "no"}})
        assert resp.status_code == 403, resp.text
    finally:
        sh.set_policy(scloud, {})
    assert sh.images_of(scloud, sid) == []
    resp = sh.action(scloud, sid, {"createImage": {"name": "bfv-image",
                                                   "metadata": {"m": "1"}}})
    assert resp.status_code == 202, resp.text
    image = sh.image(scloud, resp.json()["image_id"])
    assert image["status"] == "active" and image["size"] == 0
    assert image["image_type"] == "snapshot" and image["m"] == "1"
    assert image["bdm_v2"] == "True" and image["root_device_name"] == "/dev/vda"
    [mapping] = json.loads(image["block_device_mapping"])
    assert (mapping["boot_index"], mapping["source_type"], mapping["destination_type"],
            mapping["volume_size"], mapping["volume_id"], mapping["device_name"],
            mapping["delete_on_termination"]) == (0, "snapshot", "volume", 1, None,
                                                  "/dev/vda", True)
    snap = _snapshot(scloud, mapping["snapshot_id"])
    assert (snap["status"], snap["size"], snap["volume_id"]) == \
        ("available", 1, boot["volume_id"])
    snap_path = os.path.join(os.path.dirname(boot["path"]), f"snapshot-{snap['id']}")
    assert _read(snap_path, 1024 * 1024, 4096) == payload
    assert sh.server(scloud, sid)["OS-EXT-STS:task_state"] is None
    assert _volume(scloud, boot["volume_id"])["status"] == "in-use"
    # a server booted from the image boots from a new volume made of the snapshot
    clone = _boot_from_image(scloud, image["id"])
    [root] = json.loads(scloud.transcell("instance", "locate", clone["id"],
                                         "--json").stdout)["volumes"]
    assert root["volume_id"] != boot["volume_id"]
    made = _volume(scloud, root["volume_id"])
    assert (made["snapshot_id"], made["size"], made["status"], made["bootable"]) == \
        (snap["id"], 1, "in-use", "true")
    assert _read(root["path"], 1024 * 1024, 4096) == payload
    with open(boot["path"], "r+b") as fh:  # the first server writes on: no effect there
        fh.seek(1024 * 1024)
        fh.write(b"\0" * 4096)
    assert _read(root["path"], 1024 * 1024, 4096) == payload
    assert sh.server(scloud, clone["id"])["image"] == ""
    sh.delete_server(scloud, clone["id"])
    assert _volume(scloud, root["volume_id"]) is None  # delete_on_termination, as mapped
    # the image cannot rebuild a local disk
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": image["id"]}})
    assert resp.status_code == 400, resp.text
    sh.delete_server(scloud, sid)
    # the volume outlives its server while a snapshot depends on it (as with Cinder)
    assert _volume(scloud, boot["volume_id"])["status"] == "available"
    resp = scloud.request("DELETE", f"{VOLUME}/snapshots/{snap['id']}", headers=CINDER)
    assert resp.status_code == 202, resp.text
    resp = scloud.request("DELETE", f"{VOLUME}/volumes/{boot['volume_id']}", headers=CINDER)
    assert resp.status_code == 202, resp.text


def _snapshot(scloud, snapshot_id: str) -> dict:
    resp = scloud.request("GET", f"{VOLUME}/snapshots/{snapshot_id}", headers=CINDER)
    assert resp.status_code == 200, resp.text
    return resp.json()["snapshot"]


def _boot_from_image(scloud, image_id: str, mappings: list | None = None) -> dict:
    body = {"server": {"name": "from-bfv-image", "flavorRef": "1", "imageRef": image_id,
                       "networks": [{"uuid": sh.network_id(scloud)}]}}
    if mappings is not None:
        body["server"]["block_device_mapping_v2"] = mappings
    resp = scloud.request("POST", f"{sh.COMPUTE}/servers", cloud=sh.USER, json=body,
                          version="2.52")
    assert resp.status_code == 202, resp.text
    return sh.wait_server(scloud, resp.json()["server"]["id"], "ACTIVE")


def _create(scloud, body: dict):
    return scloud.request("POST", f"{sh.COMPUTE}/servers", cloud=sh.USER,
                          json={"server": {"name": "bad", "flavorRef": "1",
                                           "networks": [{"uuid": sh.network_id(scloud)}],
                                           **body}}, version="2.52")


def test_boot_from_a_snapshot_or_a_blank_volume(scloud):
    volume = scloud.request("POST", f"{VOLUME}/volumes", headers=CINDER, cloud=sh.USER,
                            json={"volume": {"size": 1, "imageRef": sh.base_image(scloud)}})
    assert volume.status_code == 202, volume.text
    vid = volume.json()["volume"]["id"]
    resp = scloud.request("POST", f"{VOLUME}/snapshots", headers=CINDER, cloud=sh.USER,
                          json={"snapshot": {"volume_id": vid}})
    assert resp.status_code == 202, resp.text
    snap = resp.json()["snapshot"]
    before = {s["id"] for s in scloud.request("GET", f"{sh.COMPUTE}/servers",
                                              cloud=sh.USER).json()["servers"]}
    # refused with nothing made: a snapshot nobody has, a snapshot without a uuid, a
    # snapshot mapped to a local disk, a blank volume without a size
    for mapping in ({"source_type": "snapshot", "uuid": str(uuidlib.uuid4())},
                    {"source_type": "snapshot"},
                    {"source_type": "snapshot", "uuid": snap["id"],
                     "destination_type": "local"},
                    {"source_type": "blank", "destination_type": "volume"}):
        resp = _create(scloud, {"imageRef": "", "block_device_mapping_v2": [
            {"boot_index": 0, "delete_on_termination": True, **mapping}]})
        assert resp.status_code == 400, (mapping, resp.text)
    after = {s["id"] for s in scloud.request("GET", f"{sh.COMPUTE}/servers",
                                             cloud=sh.USER).json()["servers"]}
    assert after == before
    # a snapshot as the boot disk, its size taken from the snapshot
    resp = _create(scloud, {"imageRef": "", "block_device_mapping_v2": [
        {"boot_index": 0, "source_type": "snapshot", "destination_type": "volume",
         "uuid": snap["id"], "delete_on_termination": True}]})
    assert resp.status_code == 202, resp.text
    from_snap = sh.wait_server(scloud, resp.json()["server"]["id"], "ACTIVE")
    # a blank volume as the boot disk (Nova accepts it; the guest's disk is empty)
    resp = _create(scloud, {"imageRef": "", "block_device_mapping_v2": [
        {"boot_index": 0, "source_type": "blank", "destination_type": "volume",
         "volume_size": 1, "delete_on_termination": True}]})
    assert resp.status_code == 202, resp.text
    blank = sh.wait_server(scloud, resp.json()["server"]["id"], "ACTIVE")
    for server, source in ((from_snap, snap["id"]), (blank, None)):
        [root] = json.loads(scloud.transcell("instance", "locate", server["id"],
                                             "--json").stdout)["volumes"]
        made = _volume(scloud, root["volume_id"])
        assert (made["snapshot_id"], made["status"], made["size"]) == (source, "in-use", 1)
        if source is None:
            assert _read(root["path"], 0, 4096) == bytes(4096)
        sh.delete_server(scloud, server["id"])
        assert _volume(scloud, root["volume_id"]) is None
    resp = scloud.request("DELETE", f"{VOLUME}/volumes/{vid}?cascade=true", headers=CINDER)
    assert resp.status_code == 202, resp.text
