"""createImage and createBackup end to end: a real cloud, the fake driver's real disks,
the global chunk store. A snapshot holds exactly the guest's bytes (a server booted from
it sees them), sends only chunks the store lacks, and a backup rotation keeps N."""

from __future__ import annotations

import os
import time

import pytest
import snaphelpers as sh

from transcell.compute.virt import disk

PATTERNS = {
    0: b"snapshot me " * 40,
    3 * 1024 * 1024 + 11: os.urandom(70000),
    700 * 1024 * 1024 + 5: b"far into the disk" * 100,
}


def _write(path: str) -> str:
    for offset, data in PATTERNS.items():
        disk.guest_write(path, offset, data)
    return disk.guest_checksum(path)


def test_a_snapshot_holds_the_guest_bytes_and_boots_a_server_that_sees_them(scloud):
    source = sh.boot(scloud, "snap-source")
    before = _write(sh.root_disk(scloud, source))
    resp = sh.action(scloud, source["id"], {"createImage": {
        "name": "snap-one", "metadata": {"purpose": "test", "tier": "gold"}}})
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["image_id"]
    assert set(resp.json()) == {"image_id"}
    snap = sh.wait_image(scloud, image_id)
    found = sh.wait_server(scloud, source["id"], "ACTIVE")
    assert found["OS-EXT-STS:task_state"] is None
    assert snap["name"] == "snap-one"
    assert snap["image_type"] == "snapshot"
    assert snap["instance_uuid"] == source["id"]
    assert snap["base_image_ref"] == sh.base_image(scloud)
    assert snap["purpose"] == "test" and snap["tier"] == "gold"
    assert snap["min_disk"] == 1 and snap["min_ram"] == 0
    assert snap["visibility"] == "private"
    assert snap["owner"] == found["tenant_id"]
    # the demo user owns and sees it
    assert sh.image(scloud, image_id, cloud_name=sh.USER)["id"] == image_id
    assert [e["event"] for e in sh.events(scloud, source["id"], "createImage")] == \
        ["compute_snapshot_instance"]
    clone = sh.boot(scloud, "snap-clone", image=image_id)
    clone_disk = sh.root_disk(scloud, clone)
    assert disk.guest_checksum(clone_disk) == before
    for offset, data in PATTERNS.items():
        assert disk.guest_read(clone_disk, offset, len(data)) == data
    assert sh.server(scloud, clone["id"])["image"]["id"] == image_id
    for sid in (source["id"], clone["id"]):
        sh.delete_server(scloud, sid)


def test_a_second_snapshot_of_an_unchanged_disk_sends_no_chunk(scloud):
    found = sh.boot(scloud, "snap-twice")
    sid = found["id"]
    # fresh bytes: chunks another test stored would (rightly) not be sent again
    disk.guest_write(sh.root_disk(scloud, found), 5 * 1024 * 1024, os.urandom(3 * 1024 * 1024))
    first = sh.action(scloud, sid, {"createImage": {"name": "twice-1"}}).json()["image_id"]
    sh.wait_image(scloud, first)
    sh.wait_server(scloud, sid, "ACTIVE")
    details = sh.events(scloud, sid, "createImage")[0]["details"]
    assert details.startswith("uploaded ") and not details.startswith("uploaded 0 ")
    chunks = sh.chunk_count(scloud)
    second = sh.action(scloud, sid, {"createImage": {"name": "twice-2"}}).json()["image_id"]
    snap = sh.wait_image(scloud, second)
    sh.wait_server(scloud, sid, "ACTIVE")
    assert sh.chunk_count(scloud) == chunks  # the store received nothing new
    assert sh.events(scloud, sid, "createImage")[0]["details"].startswith("uploaded 0 of ")
    assert snap["os_hash_value"] == sh.image(scloud, first)["os_hash_value"]
    # one changed chunk: exactly one more chunk in the store
    disk.guest_write(sh.root_disk(scloud, found), 2 * 1024 * 1024, os.urandom(4096))
    third = sh.action(scloud, sid, {"createImage": {"name": "twice-3"}}).json()["image_id"]
    sh.wait_image(scloud, third)
    sh.wait_server(scloud, sid, "ACTIVE")
    assert sh.chunk_count(scloud) == chunks + 1
    assert sh.events(scloud, sid, "createImage")[0]["details"].startswith("uploaded 1 of ")
    sh.delete_server(scloud, sid)


def test_before_245_the_image_is_named_by_a_location_header(scloud):
    found = sh.boot(scloud, "snap-location")
    resp = sh.action(scloud, found["id"], {"createImage": {"name": "located"}},
                     version="2.44")
    assert resp.status_code == 202, resp.text
    assert resp.text == ""
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert resp.headers["Location"].endswith(f"/image/v2/images/{image_id}")
    assert sh.wait_image(scloud, image_id)["instance_uuid"] == found["id"]
    sh.wait_server(scloud, found["id"], "ACTIVE")
    sh.delete_server(scloud, found["id"])


def test_task_states_while_the_snapshot_is_taken(scloud):
    found = sh.boot(scloud, "snap-states")
    sid = found["id"]
    hold = sh.hold(scloud, "accepted-snapshot", sid)
    try:
        image_id = sh.action(scloud, sid, {"createImage": {"name": "held"}}).json()["image_id"]
        sh.wait_reached(scloud, "accepted-snapshot", sid)
        shown = sh.server(scloud, sid)
        assert shown["OS-EXT-STS:task_state"] == "image_snapshot"
        assert shown["status"] == "ACTIVE"
        assert sh.image(scloud, image_id)["status"] == "queued"
        # a second image, a rebuild or a backup now: 409, and nothing made
        count = len(sh.images_of(scloud, sid))
        for body in ({"createImage": {"name": "again"}},
                     {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}},
                     {"rebuild": {"imageRef": sh.base_image(scloud)}}):
            resp = sh.action(scloud, sid, body)
            assert resp.status_code == 409, resp.text
            assert "image_snapshot" in resp.json()["conflictingRequest"]["message"]
        assert len(sh.images_of(scloud, sid)) == count
    finally:
        os.unlink(hold)
    sh.wait_image(scloud, image_id)
    assert sh.wait_server(scloud, sid, "ACTIVE")["OS-EXT-STS:task_state"] is None
    sh.delete_server(scloud, sid)


def test_a_failed_upload_deletes_the_image_and_leaves_the_server_as_it_was(scloud):
    found = sh.boot(scloud, "snap-fails")
    sid = found["id"]
    faults = os.path.join(scloud.state_dir, "hosts", found["OS-EXT-SRV-ATTR:host"], "faults")
    os.makedirs(faults, exist_ok=True)
    with open(os.path.join(faults, "root_disk_path"), "w") as fh:
        fh.write("the disk could not be read")
    image_id = sh.action(scloud, sid, {"createImage": {"name": "doomed"}}).json()["image_id"]
    deadline = time.monotonic() + 60
    while sh.image(scloud, image_id) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sh.image(scloud, image_id) is None
    shown = sh.wait_server(scloud, sid, "ACTIVE")
    assert shown["OS-EXT-STS:task_state"] is None
    event = sh.events(scloud, sid, "createImage")[0]
    assert event["result"] == "Error"
    # the next one works
    image_id = sh.action(scloud, sid, {"createImage": {"name": "fine"}}).json()["image_id"]
    sh.wait_image(scloud, image_id)
    sh.delete_server(scloud, sid)


@pytest.mark.parametrize("body", [
    {"createImage": {}},
    {"createImage": {"name": ""}},
    {"createImage": {"name": " padded "}},
    {"createImage": {"name": "x" * 256}},
    {"createImage": {"name": "ok", "metadata": {"k": 1}}},
    {"createImage": {"name": "ok", "metadata": {"k" * 256: "v"}}},
    {"createImage": {"name": "ok", "metadata": {"k": "v" * 256}}},
    {"createImage": {"name": "ok", "metadata": {"min_ram": "5"}}},
    {"createImage": {"name": "ok", "unknown": 1}},
    {"createImage": None},
    {"createBackup": {"name": "b", "backup_type": "daily"}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": "two"}},
    {"createBackup": {"name": "b", "rotation": 1}},
])
def test_bad_bodies_are_400_and_make_nothing(scloud, shared_server, body):
    before = len(sh.images_of(scloud, shared_server))
    resp = sh.action(scloud, shared_server, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400
    assert len(sh.images_of(scloud, shared_server)) == before
    shown = sh.server(scloud, shared_server)
    assert shown["OS-EXT-STS:task_state"] is None and shown["status"] == "ACTIVE"


@pytest.fixture(scope="module")
def shared_server(scloud):
    found = sh.boot(scloud, "snap-shared")
    yield found["id"]
    sh.delete_server(scloud, found["id"])


def test_backups_rotate_oldest_first_per_type(scloud):
    found = sh.boot(scloud, "backed-up")
    sid = found["id"]
    made = []
    for number in range(3):
        resp = sh.action(scloud, sid, {"createBackup": {
            "name": f"daily-{number}", "backup_type": "daily", "rotation": 2,
            "metadata": {"n": str(number)}}})
        assert resp.status_code == 202, resp.text
        made.append(resp.json()["image_id"])
        sh.wait_image(scloud, made[-1])
        sh.wait_server(scloud, sid, "ACTIVE")
    weekly = sh.action(scloud, sid, {"createBackup": {
        "name": "weekly-0", "backup_type": "weekly", "rotation": 1}}).json()["image_id"]
    sh.wait_image(scloud, weekly)
    sh.wait_server(scloud, sid, "ACTIVE")
    deadline = time.monotonic() + 30
    while sh.image(scloud, made[0]) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    kept = {i["id"]: i for i in sh.images_of(scloud, sid)}
    assert set(kept) == {made[1], made[2], weekly}
    assert kept[made[2]]["image_type"] == "backup"
    assert kept[made[2]]["backup_type"] == "daily" and kept[made[2]]["n"] == "2"
    assert kept[weekly]["backup_type"] == "weekly"
    # rotation 0 keeps none of that type; before 2.45 there is then no Location
    resp = sh.action(scloud, sid, {"createBackup": {
        "name": "weekly-1", "backup_type": "weekly", "rotation": 0}}, version="2.1")
    assert resp.status_code == 202, resp.text
    assert "Location" not in resp.headers
    sh.wait_server(scloud, sid, "ACTIVE")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            i.get("backup_type") == "weekly" for i in sh.images_of(scloud, sid)):
        time.sleep(0.2)
    assert {i["id"] for i in sh.images_of(scloud, sid)} == {made[1], made[2]}
    sh.delete_server(scloud, sid)


def test_policy_reader_and_other_projects(scloud, shared_server):
    body = {"createImage": {"name": "not allowed"}}
    resp = sh.action(scloud, shared_server, body, cloud_name="transcell-reader")
    assert resp.status_code == 403, resp.text
    resp = sh.action(scloud, shared_server, body, cloud_name="transcell-alt")
    assert resp.status_code == 404, resp.text
    try:
        sh.set_policy(scloud, {"os_compute_api:servers:create_image": "rule:admin_api",
                               "os_compute_api:os-create-backup": "rule:admin_api",
                               "os_compute_api:servers:rebuild": "rule:admin_api"})
        for attempt in ({"createImage": {"name": "x"}},
                        {"createBackup": {"name": "b", "backup_type": "d", "rotation": 1}},
                        {"rebuild": {"imageRef": sh.base_image(scloud)}}):
            resp = sh.action(scloud, shared_server, attempt)
            assert resp.status_code == 403, resp.text
        assert sh.images_of(scloud, shared_server) == []
        assert sh.server(scloud, shared_server)["OS-EXT-STS:task_state"] is None
    finally:
        sh.set_policy(scloud, {})


def test_a_server_deleted_while_it_is_imaged_goes_and_takes_the_image_along(scloud):
    found = sh.boot(scloud, "snap-deleted")
    sid = found["id"]
    hold = sh.hold(scloud, "accepted-snapshot", sid)
    try:
        image_id = sh.action(scloud, sid, {"createImage": {"name": "orphan"}}
                             ).json()["image_id"]
        sh.wait_reached(scloud, "accepted-snapshot", sid)
        resp = scloud.request("DELETE", f"{sh.COMPUTE}/servers/{sid}", cloud=sh.USER)
        assert resp.status_code == 204, resp.text
    finally:
        os.unlink(hold)
    scloud.wait_gone(sid)
    deadline = time.monotonic() + 30
    while sh.image(scloud, image_id) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sh.image(scloud, image_id) is None
    assert not os.path.exists(sh.instance_dir(scloud, found))


def test_a_snapshot_of_mostly_new_data_is_kept_as_chunk_files_not_a_spool(scloud):
    """Only a move's image is laid out as a disk for a target to take over; an image
    the store keeps (a snapshot, a shelved server) is stored chunk by chunk."""
    source = sh.boot(scloud, "snap-new-data")
    disk.guest_write(sh.root_disk(scloud, source), 16 * 1024 * 1024,
                     os.urandom(24 * 1024 * 1024))
    resp = sh.action(scloud, source["id"], {"createImage": {"name": "snap-new-data"}})
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["image_id"]
    sh.wait_image(scloud, image_id)
    sh.wait_server(scloud, source["id"], "ACTIVE")
    spools = os.path.join(scloud.state_dir, "images", "spools")
    assert image_id not in os.listdir(spools)
    with open(os.path.join(scloud.state_dir, "images", "images", f"{image_id}.json")) as fh:
        assert "spool" not in fh.read()
    sh.delete_server(scloud, source["id"])
