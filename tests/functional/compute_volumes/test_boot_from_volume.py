"""Servers booted from volumes (block_device_mapping_v2): made on the host that builds
them, claiming no local disk, and their volumes kept or deleted as asked at delete."""

from __future__ import annotations

import os

import cvhelpers as cv


def _allocations(cloud, server_id: str) -> dict[str, dict[str, int]]:
    resp = cloud.request("GET", f"/placement/allocations/{server_id}",
                         headers={"OpenStack-API-Version": "placement 1.28"})
    assert resp.status_code == 200, resp.text
    return {rp: a["resources"] for rp, a in resp.json()["allocations"].items()}


def _volume_ids(cloud) -> set[str]:
    resp = cloud.request("GET", f"{cv.VOLUME}/volumes", cloud=cv.USER, headers=cv.CINDER)
    assert resp.status_code == 200, resp.text
    return {v["id"] for v in resp.json()["volumes"]}


def _server_ids(cloud) -> set[str]:
    resp = cloud.request("GET", f"{cv.COMPUTE}/servers", cloud=cv.USER)
    return {s["id"] for s in resp.json()["servers"]}


def _boot_volume(cloud, name: str, mappings: list[dict]) -> dict:
    return cv.boot(cloud, name, imageRef="", block_device_mapping_v2=mappings)


def test_boot_from_image_to_volume(vcloud):
    cloud = vcloud
    image = cv.image_id(cloud)
    before = _volume_ids(cloud)
    srv = _boot_volume(cloud, "bfv-image", [
        {"uuid": image, "source_type": "image", "destination_type": "volume",
         "boot_index": 0, "volume_size": 1, "delete_on_termination": True}])
    sid, host = srv["id"], cv.host_of(srv)
    assert srv["image"] == ""
    [attached] = srv["os-extended-volumes:volumes_attached"]
    vid = attached["id"]
    assert attached["delete_on_termination"] is True and vid not in before

    found = cv.volume(cloud, vid)
    assert found["status"] == "in-use" and found["bootable"] == "true"
    assert [(a["server_id"], a["host_name"], a["device"]) for a in found["attachments"]] == [
        (sid, host, "/dev/vda")]
    # no local root disk: nothing claimed in Placement, nothing on the host's disk
    [resources] = _allocations(cloud, sid).values()
    assert "DISK_GB" not in resources and resources["VCPU"] == 1
    located = cv.locate(cloud, sid)
    assert located["disks"] == []
    [volume] = located["volumes"]
    assert volume["boot_index"] == 0 and volume["backend"] == "shared"
    # the guest's root disk is the volume's file
    guest = cv.driver(cloud, host)
    assert guest.root_volume(sid) == vid and guest.get_disk_paths(sid) == {}
    payload = os.urandom(512)
    guest.write_volume(sid, vid, 0, payload)
    assert cv.read_file(volume["path"], 0, 512) == payload

    resp = cv.detach(cloud, sid, vid, wait=False)
    assert resp.status_code == 400 and "root device" in resp.text, resp.text
    assert cv.volume(cloud, vid)["status"] == "in-use"

    cv.delete_server(cloud, sid)
    cv.wait_volume_gone(cloud, vid)
    assert not os.path.exists(volume["path"])


def test_boot_from_existing_volume_with_a_blank_one(vcloud):
    cloud = vcloud
    boot_vol = cv.create_volume(cloud, "boot-me", imageRef=cv.image_id(cloud))
    bid = boot_vol["id"]
    before = _volume_ids(cloud)
    srv = _boot_volume(cloud, "bfv-existing", [
        {"uuid": bid, "source_type": "volume", "destination_type": "volume",
         "boot_index": 0},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
         "delete_on_termination": True, "boot_index": -1}])
    sid = srv["id"]
    assert srv["image"] == ""
    volumes = {v["id"]: v["delete_on_termination"]
               for v in srv["os-extended-volumes:volumes_attached"]}
    [blank] = set(volumes) - {bid}
    assert volumes == {bid: False, blank: True} and blank not in before
    listed = {a["volumeId"]: a["device"] for a in cv.listed(cloud, sid)}
    assert listed == {bid: "/dev/vda", blank: "/dev/vdb"}
    for vid in (bid, blank):
        found = cv.volume(cloud, vid)
        assert found["status"] == "in-use"
        assert [a["server_id"] for a in found["attachments"]] == [sid]
    [resources] = _allocations(cloud, sid).values()
    assert "DISK_GB" not in resources

    cv.delete_server(cloud, sid)
    cv.wait_volume_gone(cloud, blank)
    kept = cv.wait_volume(cloud, bid, "available")
    assert kept["attachments"] == [] and cv.attachments_of(cloud, bid) == []


def test_image_backed_server_still_claims_its_disk(vcloud):
    cloud = vcloud
    srv = cv.boot(cloud, "local-disk")
    assert srv["image"]["id"] == cv.image_id(cloud)
    [resources] = _allocations(cloud, srv["id"]).values()
    assert resources["DISK_GB"] == 1  # m1.tiny
    cv.delete_server(cloud, srv["id"])


def test_boot_refusals_change_nothing(vcloud):
    cloud = vcloud
    image = cv.image_id(cloud)
    taken = cv.create_volume(cloud, "taken")
    holder = cv.boot(cloud, "holder")
    cv.attach(cloud, holder["id"], taken["id"])
    servers, volumes = _server_ids(cloud), _volume_ids(cloud)
    cases = [
        # no image and nothing to boot from
        ({"imageRef": ""}, "Boot sequence"),
        ({"imageRef": "", "block_device_mapping_v2": [
            {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
             "boot_index": 1}]}, "Boot sequence"),
        # an image to a volume of no size
        ({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": image, "source_type": "image", "destination_type": "volume",
             "boot_index": 0}]}, "non-zero size"),
        # a boot index that is not a number
        ({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": taken["id"], "source_type": "volume", "destination_type": "volume",
             "boot_index": "first"}]}, "boot_index"),
        # a volume that is not available, one that does not exist
        ({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": taken["id"], "source_type": "volume", "destination_type": "volume",
             "boot_index": 0}]}, "must be 'available'"),
        ({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": "6e4a0ab7-8b0c-4f2b-9f5e-3a1d2c0b9e77", "source_type": "volume",
             "destination_type": "volume", "boot_index": 0}]}, "failed to get volume"),
    ]
    for fields, message in cases:
        resp = cv.create_server(cloud, "refused", expect=400, **fields)
        assert message in resp.json()["badRequest"]["message"], (fields, resp.text)
    assert _server_ids(cloud) == servers and _volume_ids(cloud) == volumes
    found = cv.volume(cloud, taken["id"])
    assert found["status"] == "in-use"
    assert [a["server_id"] for a in found["attachments"]] == [holder["id"]]
    cv.delete_server(cloud, holder["id"])


def test_failed_build_leaves_no_volume_behind(vcloud):
    """Every host fails the spawn: the volume the build made is deleted on each try, the
    existing one stays reserved for the server in ERROR until it is deleted."""
    cloud = vcloud
    image = cv.image_id(cloud)
    existing = cv.create_volume(cloud, "kept-through-failure")["id"]
    before = _volume_ids(cloud)
    hosts = sorted(os.listdir(os.path.join(cloud.state_dir, "hosts")))
    for host in hosts:
        cv.arm_driver_fault(cloud, host, "spawn", "no room for this guest")
    try:
        resp = cv.create_server(cloud, "doomed-bfv", imageRef="", block_device_mapping_v2=[
            {"uuid": image, "source_type": "image", "destination_type": "volume",
             "boot_index": 0, "volume_size": 1, "delete_on_termination": False},
            {"uuid": existing, "source_type": "volume", "destination_type": "volume",
             "boot_index": 1}])
        sid = resp.json()["server"]["id"]
        cloud.wait_status(sid, "ERROR")
    finally:
        for host in hosts:
            path = os.path.join(cloud.state_dir, "hosts", host, "faults", "spawn")
            if os.path.exists(path):
                os.unlink(path)
    assert _volume_ids(cloud) == before
    found = cv.volume(cloud, existing)
    assert found["status"] == "reserved"
    assert [(a["instance"], a["status"]) for a in cv.attachments_of(cloud, existing)] == [
        (sid, "reserved")]
    cv.delete_server(cloud, sid)
    found = cv.wait_volume(cloud, existing, "available")
    assert found["attachments"] == [] and cv.attachments_of(cloud, existing) == []
    assert _volume_ids(cloud) == before


def test_volumes_a_cell_cannot_reach_pin_the_build(vcloud):
    """A volume on a backend only one cell reaches takes the build to that cell; asking
    for another zone, or attaching it to a server of another cell, is a 400 with why."""
    cloud = vcloud
    image = cv.image_id(cloud)
    for cell in ("cell1", "cell2"):
        srv = _boot_volume(cloud, f"bfv-{cell}", [
            {"uuid": image, "source_type": "image", "destination_type": "volume",
             "boot_index": 0, "volume_size": 1, "volume_type": f"local-{cell}",
             "delete_on_termination": True}])
        assert cv.host_of(srv).startswith(f"{cell}-"), srv
        [volume] = cv.locate(cloud, srv["id"])["volumes"]
        assert volume["backend"] == f"local-{cell}" and volume["backend_cells"] == [cell]
        cv.delete_server(cloud, srv["id"])
    # made from the image, so bootable: the zone is what the build is refused for
    local = cv.create_volume(cloud, "cell1-only", volume_type="local-cell1", imageRef=image)
    servers, volumes = _server_ids(cloud), _volume_ids(cloud)
    resp = cv.create_server(cloud, "wrong-zone", expect=400, imageRef="",
                            availability_zone="cell2", block_device_mapping_v2=[
                                {"uuid": local["id"], "source_type": "volume",
                                 "destination_type": "volume", "boot_index": 0}])
    assert "cell1" in resp.json()["badRequest"]["message"], resp.text
    resp = cv.create_server(cloud, "no-type", expect=400, imageRef="",
                            block_device_mapping_v2=[
                                {"uuid": image, "source_type": "image", "volume_size": 1,
                                 "destination_type": "volume", "boot_index": 0,
                                 "volume_type": "gold"}])
    assert "Volume type gold could not be found" in resp.text
    assert _server_ids(cloud) == servers and _volume_ids(cloud) == volumes

    elsewhere = cv.boot(cloud, "in-cell2", availability_zone="cell2")
    resp = cv.attach(cloud, elsewhere["id"], local["id"], wait=False)
    assert resp.status_code == 400 and "cannot reach" in resp.text, resp.text
    assert cv.volume(cloud, local["id"])["status"] == "available"
    assert cv.attachments_of(cloud, local["id"]) == [] and cv.listed(
        cloud, elsewhere["id"]) == []
    cv.delete_server(cloud, elsewhere["id"])


def test_server_no_host_takes_releases_its_volume_at_delete(vcloud):
    """No host fits: the server waits in ERROR (cell0) holding its volume reserved, as
    Nova's does; deleting it there, with no host to ask, releases the volume."""
    cloud = vcloud
    flavor = {"flavor": {"name": "too-big", "ram": 100000, "vcpus": 1, "disk": 1,
                         "id": "too-big"}}
    resp = cloud.request("POST", f"{cv.COMPUTE}/flavors", cloud=cv.ADMIN, json=flavor)
    assert resp.status_code == 200, resp.text
    existing = cv.create_volume(cloud, "waits-in-cell0", imageRef=cv.image_id(cloud))["id"]
    resp = cv.create_server(cloud, "nowhere", flavorRef="too-big", imageRef="",
                            block_device_mapping_v2=[
                                {"uuid": existing, "source_type": "volume",
                                 "destination_type": "volume", "boot_index": 0}])
    sid = resp.json()["server"]["id"]
    found = cloud.wait_status(sid, "ERROR")
    assert "No valid host" in found["fault"]["message"]
    assert [(a["instance"], a["status"]) for a in cv.attachments_of(cloud, existing)] == [
        (sid, "reserved")]
    cv.delete_server(cloud, sid)
    assert cv.wait_volume(cloud, existing, "available")["attachments"] == []
    assert cv.attachments_of(cloud, existing) == []
