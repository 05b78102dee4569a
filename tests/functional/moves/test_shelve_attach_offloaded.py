"""A volume attached to a shelved-offloaded server is in-use at once (Nova completes its
attachment with no connector, Cinder accepts it); the unshelve connects it on whichever
host the server lands, copying it first to a backend that host's cell reaches."""

from __future__ import annotations

import movehelpers as mh
import volhelpers as vh
from test_shelve import FLAVOR, delete
from test_shelve_volumes import boot_in, shelve_offloaded

COMPUTE = mh.COMPUTE


def _attachments(cloud, volume_id: str) -> list[dict]:
    resp = cloud.request("GET", f"{vh.VOLUME}/attachments/detail?volume_id={volume_id}",
                         cloud=mh.USER, headers={"OpenStack-API-Version": "volume 3.27"})
    assert resp.status_code == 200, resp.text
    return resp.json()["attachments"]


def test_attached_while_offloaded_then_unshelved_into_the_other_cell(mcloud):
    cloud = mcloud
    sid = boot_in(cloud, {"name": "offload-attach", "flavorRef": FLAVOR,
                          "imageRef": mh.image_id(cloud)}, "cell1")
    shelve_offloaded(cloud, sid, [])
    vid = vh.create_volume(cloud, "offload-attach-data", "local-cell1", size=1)["id"]
    written = vh.write_pattern(vh.volume_file(cloud, vid, "local-cell1"), b"offloaded")
    made = vh.attach(cloud, sid, vid)   # waits for in-use
    assert made["device"] and made["serverId"] == sid
    (parked,) = _attachments(cloud, vid)
    assert parked["status"] == "attached" and not parked["connection_info"]
    assert vh.volume(cloud, vid)["attachments"][0]["host_name"] is None
    mh.assert_audit_clean(cloud)

    mh.action(cloud, sid, {"unshelve": {"availability_zone": "cell2"}}, cloud_name=mh.USER,
              version="2.77")
    dst = mh.host_of(mh.wait_status(cloud, sid, "ACTIVE"))
    assert mh.cell_of_host(dst) == "cell2"
    found = vh.wait_volume(cloud, vid, "in-use")
    assert vh.backend_of(found) == "local-cell2"   # same id, on a backend cell2 reaches
    assert vh.attachment_hosts(cloud, vid) == [dst]
    (connected,) = _attachments(cloud, vid)
    assert connected["id"] != parked["id"] and connected["connection_info"]
    vh.assert_pattern(vh.volume_file(cloud, vid, "local-cell2"), written)
    shown = cloud.request("GET", f"{COMPUTE}/servers/{sid}/os-volume_attachments/{vid}",
                          cloud=mh.USER).json()["volumeAttachment"]
    assert shown["device"] == made["device"]
    mh.assert_audit_clean(cloud)
    vh.detach(cloud, sid, vid)
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)


def test_attach_and_detach_while_offloaded_give_the_volume_back(mcloud):
    cloud = mcloud
    sid = boot_in(cloud, {"name": "offload-detach", "flavorRef": FLAVOR,
                          "imageRef": mh.image_id(cloud)}, "cell1")
    shelve_offloaded(cloud, sid, [])
    vid = vh.create_volume(cloud, "offload-detach-data", "shared", size=1)["id"]
    vh.attach(cloud, sid, vid)
    vh.detach(cloud, sid, vid)                     # waits for available
    assert _attachments(cloud, vid) == []
    assert vh.attached_ids(cloud, sid) == []
    mh.action(cloud, sid, {"unshelve": None}, cloud_name=mh.USER)
    mh.wait_status(cloud, sid, "ACTIVE")
    assert vh.volume(cloud, vid)["status"] == "available"
    delete(cloud, sid)
    mh.assert_audit_clean(cloud)
