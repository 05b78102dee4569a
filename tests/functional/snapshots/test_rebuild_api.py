"""rebuild end to end: the server keeps its host, cell, ports and uuid; its root disk
becomes the new image's (bytes compared on the real disk files), its ephemeral disk is
kept only when asked, and every refusal leaves the server as it was."""

from __future__ import annotations

import base64
import os

import pytest
import snaphelpers as sh

from transcell.compute.virt import disk

MARK = b"written before the rebuild" * 20


@pytest.fixture(scope="module")
def snapshot(scloud) -> tuple[str, str]:
    """An image made from a server whose disk carries known bytes: (id, guest checksum)."""
    found = sh.boot(scloud, "rebuild-source")
    path = sh.root_disk(scloud, found)
    disk.guest_write(path, 4096, MARK)
    disk.guest_write(path, 300 * 1024 * 1024, os.urandom(200000))
    checksum = disk.guest_checksum(path)
    image_id = sh.action(scloud, found["id"], {"createImage": {"name": "rebuild-me"}}
                         ).json()["image_id"]
    sh.wait_image(scloud, image_id)
    sh.wait_server(scloud, found["id"], "ACTIVE")
    sh.delete_server(scloud, found["id"])
    return image_id, checksum


def _data_image(scloud, **fields) -> str:
    body = {"name": "rule-image", "disk_format": "raw", "container_format": "bare", **fields}
    resp = scloud.request("POST", sh.IMAGES, json=body)
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    resp = scloud.request("PUT", f"{sh.IMAGES}/{image_id}/file", data=b"\0" * 4096,
                          headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    return image_id


def test_rebuild_replaces_the_disk_and_keeps_the_server(scloud, snapshot):
    image_id, checksum = snapshot
    found = sh.boot(scloud, "to-rebuild")
    sid = found["id"]
    resp = scloud.request("PUT", f"{sh.COMPUTE}/servers/{sid}/metadata", cloud=sh.USER,
                          json={"metadata": {"old": "gone soon"}})
    old_disk = sh.root_disk(scloud, found)
    disk.guest_write(old_disk, 0, b"old contents" * 100)
    ports = scloud.request("GET", f"/network/v2.0/ports?device_id={sid}").json()["ports"]
    hold = sh.hold(scloud, "accepted-rebuild", sid)
    try:
        resp = sh.action(scloud, sid, {"rebuild": {
            "imageRef": image_id, "name": "rebuilt", "metadata": {"new": "yes"},
            "accessIPv4": "192.0.2.7", "description": "fresh", "adminPass": "s3cret!",
            "user_data": base64.b64encode(b"#!/bin/sh\necho hi\n").decode()}},
            version="2.75")
        assert resp.status_code == 202, resp.text
        body = resp.json()["server"]
        assert body["status"] == "REBUILD"
        assert body["OS-EXT-STS:task_state"] == "rebuilding"
        assert body["image"]["id"] == image_id and body["name"] == "rebuilt"
        assert body["metadata"] == {"new": "yes"}
        assert body["accessIPv4"] == "192.0.2.7" and body["description"] == "fresh"
        assert body["adminPass"] == "s3cret!"
        assert base64.b64decode(body["user_data"]).startswith(b"#!/bin/sh")
        assert "OS-EXT-SRV-ATTR:user_data" not in body
        sh.wait_reached(scloud, "accepted-rebuild", sid)
        assert sh.server(scloud, sid)["status"] == "REBUILD"
    finally:
        os.unlink(hold)
    rebuilt = sh.wait_server(scloud, sid, "ACTIVE")
    assert rebuilt["OS-EXT-SRV-ATTR:host"] == found["OS-EXT-SRV-ATTR:host"]
    assert rebuilt["image"]["id"] == image_id and rebuilt["metadata"] == {"new": "yes"}
    assert rebuilt["OS-EXT-STS:power_state"] == 1
    new_disk = sh.root_disk(scloud, rebuilt)
    assert disk.guest_checksum(new_disk) == checksum
    assert disk.guest_read(new_disk, 4096, len(MARK)) == MARK
    assert disk.guest_read(new_disk, 0, 12) != b"old contents"
    assert scloud.request("GET", f"/network/v2.0/ports?device_id={sid}").json()["ports"] == \
        ports
    events = sh.events(scloud, sid, "rebuild")
    assert [(e["event"], e["result"]) for e in events] == \
        [("compute_rebuild_instance", "Success")]
    sh.delete_server(scloud, sid)


def test_a_stopped_server_is_rebuilt_stopped_and_old_bodies_stay_small(scloud, snapshot):
    found = sh.boot(scloud, "stopped-rebuild")
    sid = found["id"]
    assert sh.action(scloud, sid, {"os-stop": None}).status_code == 202
    sh.wait_server(scloud, sid, "SHUTOFF")
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0]}}, version="2.53")
    assert resp.status_code == 202, resp.text
    body = resp.json()["server"]
    assert "OS-EXT-STS:task_state" not in body and "key_name" not in body
    assert "user_data" not in body and "adminPass" in body
    done = sh.wait_server(scloud, sid, "SHUTOFF")
    assert done["image"]["id"] == snapshot[0]
    assert disk.guest_checksum(sh.root_disk(scloud, done)) == snapshot[1]
    sh.delete_server(scloud, sid)


def test_preserve_ephemeral_keeps_the_ephemeral_disk_only_when_asked(scloud, snapshot):
    resp = scloud.request("POST", f"{sh.COMPUTE}/flavors", json={"flavor": {
        "name": "with-ephemeral", "ram": 512, "vcpus": 1, "disk": 1, "id": "eph1",
        "OS-FLV-EXT-DATA:ephemeral": 1}})
    assert resp.status_code in (200, 409), resp.text
    found = sh.boot(scloud, "ephemeral", flavor="eph1")
    sid = found["id"]
    eph = os.path.join(sh.instance_dir(scloud, found), "disk.eph0")
    assert os.path.getsize(eph) == 1024 ** 3
    disk.guest_write(eph, 1000, b"keep me", "raw")
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0],
                                               "preserve_ephemeral": True}})
    assert resp.status_code == 202, resp.text
    sh.wait_server(scloud, sid, "ACTIVE")
    assert disk.guest_read(eph, 1000, 7, "raw") == b"keep me"
    assert disk.guest_checksum(sh.root_disk(scloud, found)) == snapshot[1]
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": sh.base_image(scloud)}})
    assert resp.status_code == 202, resp.text
    sh.wait_server(scloud, sid, "ACTIVE")
    assert os.path.getsize(eph) == 1024 ** 3
    assert disk.guest_read(eph, 1000, 7, "raw") == bytes(7)
    assert disk.guest_checksum(sh.root_disk(scloud, found)) != snapshot[1]
    sh.delete_server(scloud, sid)


def test_key_name_and_user_data_from_their_microversions(scloud, snapshot):
    found = sh.boot(scloud, "keyed")
    sid = found["id"]
    resp = scloud.request("POST", f"{sh.COMPUTE}/os-keypairs", cloud=sh.USER,
                          json={"keypair": {"name": "rebuild-key"}}, version="2.10")
    assert resp.status_code in (200, 201), resp.text
    bad = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0], "key_name": "k"}},
                    version="2.53")
    assert bad.status_code == 400, bad.text
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0],
                                               "key_name": "rebuild-key"}}, version="2.54")
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["key_name"] == "rebuild-key"
    sh.wait_server(scloud, sid, "ACTIVE")
    assert sh.server(scloud, sid)["key_name"] == "rebuild-key"
    for body, version in (({"user_data": "not base64!"}, "2.57"),
                          ({"user_data": "aGk="}, "2.56"),
                          ({"key_name": "no-such-key"}, "2.54"),
                          ({"personality": []}, "2.57")):
        resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0], **body}},
                         version=version)
        assert resp.status_code == 400, (body, resp.text)
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0], "key_name": None,
                                               "user_data": None}}, version="2.57")
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["key_name"] is None
    assert resp.json()["server"]["user_data"] is None
    sh.wait_server(scloud, sid, "ACTIVE")
    sh.delete_server(scloud, sid)


def test_refusals_are_400_or_409_and_change_nothing(scloud, snapshot):
    found = sh.boot(scloud, "refused")
    sid = found["id"]
    checksum = disk.guest_checksum(sh.root_disk(scloud, found))
    queued = scloud.request("POST", sh.IMAGES, json={
        "name": "empty", "disk_format": "raw", "container_format": "bare"}).json()["id"]
    cases = [
        ({"imageRef": "00000000-0000-0000-0000-000000000000"}, 400),
        ({"imageRef": "not-an-image"}, 400),
        ({"imageRef": queued}, 400),
        ({"imageRef": _data_image(scloud, min_disk=100)}, 400),
        ({"imageRef": _data_image(scloud, min_ram=100000)}, 400),
        ({}, 400),
        ({"imageRef": snapshot[0], "name": ""}, 400),
        ({"imageRef": snapshot[0], "preserve_ephemeral": "yes"}, 400),
        ({"imageRef": snapshot[0], "metadata": {"k": 5}}, 400),
        ({"imageRef": snapshot[0], "accessIPv4": "not-an-ip"}, 400),
        ({"imageRef": snapshot[0], "surprise": 1}, 400),
    ]
    for body, status in cases:
        resp = sh.action(scloud, sid, {"rebuild": body})
        assert resp.status_code == status, (body, resp.text)
        shown = sh.server(scloud, sid)
        assert shown["OS-EXT-STS:task_state"] is None and shown["status"] == "ACTIVE"
        assert shown["image"]["id"] == found["image"]["id"] and shown["name"] == "refused"
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0]}},
                     cloud_name="transcell-reader")
    assert resp.status_code == 403, resp.text
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0]}},
                     cloud_name="transcell-alt")
    assert resp.status_code == 404, resp.text
    assert disk.guest_checksum(sh.root_disk(scloud, found)) == checksum
    sh.delete_server(scloud, sid)


def test_disk_config_is_set_by_a_rebuild(scloud, snapshot):
    found = sh.boot(scloud, "configured")
    sid = found["id"]
    assert found["OS-DCF:diskConfig"] == "MANUAL"
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0],
                                               "OS-DCF:diskConfig": "AUTO"}})
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    assert sh.wait_server(scloud, sid, "ACTIVE")["OS-DCF:diskConfig"] == "AUTO"
    resp = sh.action(scloud, sid, {"rebuild": {"imageRef": snapshot[0],
                                               "OS-DCF:diskConfig": "SOMETIMES"}})
    assert resp.status_code == 400, resp.text
    sh.delete_server(scloud, sid)
