"""Shelving servers with volumes: an offloaded server keeps each volume (a reserved
attachment on no host), and unshelving it into the other cell connects the same
volumes on the new host, migrating one whose backend that cell cannot reach. A
volume-backed server has no snapshot: only its guest stops and its host is freed."""

from __future__ import annotations

import movehelpers as mh
import volhelpers as vh
from test_shelve import FLAVOR, delete, ports_of, shelved_images

COMPUTE = mh.COMPUTE


def boot_in(cloud, body: dict, zone: str) -> str:
    body = {"server": {"networks": [{"uuid": mh.network_id(cloud)}],
                       "availability_zone": zone, **body}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body,
                         version="2.67")
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    cloud.wait_status(sid, "ACTIVE")
    return sid


def shelve_offloaded(cloud, sid: str, volume_ids: list[str]) -> None:
    mh.action(cloud, sid, {"shelve": None}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "SHELVED_OFFLOADED")
    assert mh.host_of(found) is None
    assert mh.consumer_allocations(cloud, sid) == {}
    assert vh.attached_ids(cloud, sid) == sorted(volume_ids)
    for vid in volume_ids:  # still the server's: one reserved attachment, on no host
        assert vh.volume(cloud, vid)["status"] == "reserved"
        resp = cloud.request("GET", f"{vh.VOLUME}/attachments/detail?volume_id={vid}",
                             cloud=mh.USER, headers={"OpenStack-API-Version": "volume 3.27"})
        assert resp.status_code == 200, resp.text
        found = resp.json()["attachments"]
        assert [(a["instance"], a["status"]) for a in found] == [(sid, "reserved")], found
        assert not found[0]["connection_info"]
    mh.assert_audit_clean(cloud)


def test_attached_volume_follows_an_unshelve_into_the_other_cell(mcloud):
    cloud = mcloud
    sid = boot_in(cloud, {"name": "shelf-vol", "flavorRef": FLAVOR,
                          "imageRef": mh.image_id(cloud)}, "cell1")
    vid = vh.create_volume(cloud, "shelf-vol-data", "local-cell1", size=1)["id"]
    vh.attach(cloud, sid, vid)
    written = vh.write_pattern(vh.volume_file(cloud, vid, "local-cell1"), b"shelved data")
    ports = ports_of(cloud, sid)
    shelve_offloaded(cloud, sid, [vid])
    mh.action(cloud, sid, {"unshelve": {"availability_zone": "cell2"}}, cloud_name=mh.USER,
              version="2.77")
    found = mh.wait_status(cloud, sid, "ACTIVE")
    dst = mh.host_of(found)
    assert mh.cell_of_host(dst) == "cell2"
    vol = vh.wait_volume(cloud, vid, "in-use")
    assert vh.backend_of(vol) == "local-cell2"   # same id, on a backend cell2 reaches
    assert vh.attachment_hosts(cloud, vid) == [dst]
    vh.assert_pattern(vh.volume_file(cloud, vid, "local-cell2"), written)
    assert vh.attached_ids(cloud, sid) == [vid]
    assert set(ports_of(cloud, sid)) == set(ports)
    assert shelved_images(cloud, "shelf-vol") == []
    mh.assert_audit_clean(cloud)
    vh.detach(cloud, sid, vid)
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)


def test_volume_backed_server_shelves_without_a_snapshot(mcloud):
    cloud = mcloud
    sid = boot_in(cloud, {
        "name": "shelf-bfv", "flavorRef": FLAVOR, "imageRef": "",
        "block_device_mapping_v2": [{
            "boot_index": 0, "uuid": mh.image_id(cloud), "source_type": "image",
            "destination_type": "volume", "volume_size": 1, "volume_type": "shared",
            "delete_on_termination": True}]}, "cell1")
    (vid,) = vh.attached_ids(cloud, sid)
    written = vh.write_pattern(vh.volume_file(cloud, vid, "shared"), b"boot volume")
    shelve_offloaded(cloud, sid, [vid])
    assert shelved_images(cloud, "shelf-bfv") == []   # nothing to snapshot: the root is the volume
    assert mh.locate(cloud, sid)["disks"] == []
    mh.action(cloud, sid, {"unshelve": {"availability_zone": "cell2"}}, version="2.77")
    found = mh.wait_status(cloud, sid, "ACTIVE")
    dst = mh.host_of(found)
    assert mh.cell_of_host(dst) == "cell2"
    assert vh.attachment_hosts(cloud, vid) == [dst]
    vh.wait_volume(cloud, vid, "in-use")
    vh.assert_pattern(vh.volume_file(cloud, vid, "shared"), written)
    claimed = mh.consumer_allocations(cloud, sid)
    assert claimed and all("DISK_GB" not in a["resources"] for a in claimed.values())
    assert mh.locate(cloud, sid)["mapping"]["cell"] == "cell2"
    mh.assert_audit_clean(cloud)
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)


def test_volumes_attached_and_detached_while_offloaded(mcloud):
    """Offloaded, a server takes a new volume (attached with no connector, in-use as Nova
    and Cinder leave it, connected by the unshelve on whichever host it lands) and gives
    one back (no host to disconnect)."""
    cloud = mcloud
    sid = boot_in(cloud, {"name": "shelf-attach", "flavorRef": FLAVOR,
                          "imageRef": mh.image_id(cloud)}, "cell1")
    kept = vh.create_volume(cloud, "shelf-attach-kept", "shared", size=1)["id"]
    gone = vh.create_volume(cloud, "shelf-attach-gone", "shared", size=1)["id"]
    vh.attach(cloud, sid, gone)
    shelve_offloaded(cloud, sid, [gone])
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{sid}/os-volume_attachments/{gone}",
                         cloud=mh.USER)
    assert resp.status_code == 202, resp.text
    vh.wait_volume(cloud, gone, "available")
    resp = cloud.request("POST", f"{COMPUTE}/servers/{sid}/os-volume_attachments",
                         cloud=mh.USER, json={"volumeAttachment": {"volumeId": kept}},
                         version="2.79")
    assert resp.status_code == 200, resp.text
    assert resp.json()["volumeAttachment"]["device"]
    assert vh.volume(cloud, kept)["status"] == "in-use"
    resp = cloud.request("GET", f"{vh.VOLUME}/attachments/detail?volume_id={kept}",
                         cloud=mh.USER, headers={"OpenStack-API-Version": "volume 3.27"})
    parked = resp.json()["attachments"]
    assert [(a["instance"], a["status"]) for a in parked] == [(sid, "attached")], parked
    assert not parked[0]["connection_info"]
    assert vh.attached_ids(cloud, sid) == [kept]
    mh.assert_audit_clean(cloud)
    mh.action(cloud, sid, {"unshelve": {"availability_zone": "cell2"}}, version="2.77")
    dst = mh.host_of(mh.wait_status(cloud, sid, "ACTIVE"))
    assert mh.cell_of_host(dst) == "cell2"
    vh.wait_volume(cloud, kept, "in-use")
    assert vh.attachment_hosts(cloud, kept) == [dst]
    resp = cloud.request("GET", f"{vh.VOLUME}/attachments/detail?volume_id={kept}",
                         cloud=mh.USER, headers={"OpenStack-API-Version": "volume 3.27"})
    (connected,) = resp.json()["attachments"]   # the parked one gave way to the host's
    assert connected["status"] == "attached" and connected["connection_info"]
    assert vh.attached_ids(cloud, sid) == [kept]
    assert vh.volume(cloud, gone)["status"] == "available"
    mh.assert_audit_clean(cloud)
    vh.detach(cloud, sid, kept)
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)
