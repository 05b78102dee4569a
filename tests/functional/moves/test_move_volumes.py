"""Servers with volumes moving between cells, through the public APIs of a real cloud.

Each case checks the bytes of every volume where it ends up, the attachments
the volume service counts, and a clean audit. ``local-cell1`` is a backend
only cell1 reaches, so a server leaving cell1 takes such a volume along by
migrating it; ``shared`` is reached from both cells and stays put.
"""

from __future__ import annotations

import os
import time

import movehelpers as mh
import pytest
import volhelpers as vh
from cloudclients import CloudProcess, start_cloud, stop_cloud

TO_CELL2 = {"resize": {"flavorRef": "21"}}


@pytest.fixture(scope="module")
def vcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("movevolumes"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


def server_with_volume(cloud, name: str, volume_type: str) -> tuple[str, str, dict, str]:
    sid = mh.boot(cloud, name)["id"]
    src = mh.host_of(mh.server(cloud, sid))
    assert mh.cell_of_host(src) == "cell1"
    vid = vh.create_volume(cloud, f"{name}-data", volume_type, size=1)["id"]
    vh.attach(cloud, sid, vid)
    path = vh.volume_file(cloud, vid, volume_type)
    written = vh.write_pattern(path, name.encode())
    return sid, vid, written, src


def resize_to_verify(cloud, sid: str, body: dict = TO_CELL2) -> dict:
    mh.action(cloud, sid, body, cloud_name=mh.USER)
    return mh.wait_status(cloud, sid, "VERIFY_RESIZE")


def test_cell1_only_volume_migrates_on_the_move_and_back_on_revert(vcloud):
    sid, vid, written, src = server_with_volume(vcloud, "mig-revert", "local-cell1")
    old_path = vh.volume_file(vcloud, vid, "local-cell1")
    found = resize_to_verify(vcloud, sid)
    dst = mh.host_of(found)
    assert mh.cell_of_host(dst) == "cell2"
    vol = vh.volume(vcloud, vid)
    assert vh.backend_of(vol) == "local-cell2"            # same id, the target's backend
    new_path = vh.volume_file(vcloud, vid, "local-cell2")
    vh.assert_pattern(new_path, written)
    assert os.path.exists(old_path)                       # kept until confirm: revert is free
    assert vh.attached_ids(vcloud, sid) == [vid]
    mig = mh.migrations(vcloud, sid)[0]["uuid"]
    shown = vcloud.transcell("migration", "show", mig, "--json").stdout
    assert vid in shown

    mh.action(vcloud, sid, {"revertResize": None}, cloud_name=mh.USER)
    mh.wait_status(vcloud, sid, "ACTIVE")
    assert mh.host_of(mh.server(vcloud, sid)) == src
    vol = vh.wait_volume(vcloud, vid, "in-use")
    assert vh.backend_of(vol) == "local-cell1"
    vh.assert_pattern(old_path, written)
    assert not os.path.exists(new_path)
    assert vh.attachment_hosts(vcloud, vid) == [src]
    mh.assert_audit_clean(vcloud)


def test_cell1_only_volume_confirmed_lives_in_cell2_alone(vcloud):
    sid, vid, written, _ = server_with_volume(vcloud, "mig-confirm", "local-cell1")
    old_path = vh.volume_file(vcloud, vid, "local-cell1")
    dst = mh.host_of(resize_to_verify(vcloud, sid))
    mh.action(vcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(vcloud, sid, "ACTIVE")
    vh.wait_volume(vcloud, vid, "in-use")
    vh.assert_pattern(vh.volume_file(vcloud, vid, "local-cell2"), written)
    assert not os.path.exists(old_path)
    assert vh.attachment_hosts(vcloud, vid) == [dst]
    # the guest keeps using it where it is now: a detach and an attach work there
    vh.detach(vcloud, sid, vid)
    vh.attach(vcloud, sid, vid)
    assert vh.attachment_hosts(vcloud, vid) == [dst]
    mh.assert_audit_clean(vcloud)


def test_shared_volume_stays_on_its_backend(vcloud):
    sid, vid, written, src = server_with_volume(vcloud, "shared-keep", "shared")
    dst = mh.host_of(resize_to_verify(vcloud, sid))
    assert vh.backend_of(vh.volume(vcloud, vid)) == "shared"
    assert vh.attachment_hosts(vcloud, vid) == sorted([src, dst])  # source's kept until confirm
    mh.action(vcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(vcloud, sid, "ACTIVE")
    vh.assert_pattern(vh.volume_file(vcloud, vid, "shared"), written)
    assert vh.attachment_hosts(vcloud, vid) == [dst]
    mh.assert_audit_clean(vcloud)


def test_attach_and_detach_while_resized_are_reconciled_on_revert(vcloud):
    sid, kept, _, src = server_with_volume(vcloud, "reconcile", "shared")
    added = vh.create_volume(vcloud, "reconcile-added", "shared")["id"]
    resize_to_verify(vcloud, sid)
    # while the move waits, the source host's attachment is the move's: it goes at the end
    vh.detach(vcloud, sid, kept, then=1)
    assert vh.attachment_hosts(vcloud, kept) == [src]
    vh.attach(vcloud, sid, added)
    mh.action(vcloud, sid, {"revertResize": None}, cloud_name=mh.USER)
    mh.wait_status(vcloud, sid, "ACTIVE")
    assert vh.attached_ids(vcloud, sid) == [added]
    assert vh.attachment_hosts(vcloud, added) == [src]
    assert vh.volume(vcloud, kept)["attachments"] == []
    assert vh.volume(vcloud, kept)["status"] == "available"
    mh.assert_audit_clean(vcloud)


def test_delete_in_verify_resize_keeps_the_volume_on_the_target_backend(vcloud):
    sid, vid, written, _ = server_with_volume(vcloud, "mig-delete", "local-cell1")
    resize_to_verify(vcloud, sid)
    assert vcloud.request("DELETE", f"{mh.COMPUTE}/servers/{sid}",
                          cloud=mh.USER).status_code == 204
    vcloud.wait_gone(sid)
    vol = vh.wait_volume(vcloud, vid, "available")
    assert vh.backend_of(vol) == "local-cell2" and vol["attachments"] == []
    vh.assert_pattern(vh.volume_file(vcloud, vid, "local-cell2"), written)
    assert not os.path.exists(vh.volume_file(vcloud, vid, "local-cell1"))
    mh.assert_audit_clean(vcloud)


def test_a_failed_volume_migration_is_undone_before_the_guest_is_lost(vcloud):
    sid, vid, written, src = server_with_volume(vcloud, "mig-fault", "local-cell1")
    with open(os.path.join(mh.fault_dir(vcloud), "volumes"), "w") as fh:
        fh.write("injected failure after the volumes were copied")
    mh.action(vcloud, sid, TO_CELL2, cloud_name=mh.USER)
    mh.wait_migration(vcloud, sid, "error")
    found = mh.wait_task_done(vcloud, sid)
    assert found["status"] == "ACTIVE" and mh.host_of(found) == src
    vol = vh.wait_volume(vcloud, vid, "in-use")
    assert vh.backend_of(vol) == "local-cell1"
    vh.assert_pattern(vh.volume_file(vcloud, vid, "local-cell1"), written)
    assert not os.path.exists(vh.volume_file(vcloud, vid, "local-cell2"))
    assert vh.attachment_hosts(vcloud, vid) == [src]
    mh.assert_audit_clean(vcloud)


@pytest.mark.parametrize("volume_type, ends_on", [("local-cell1", "local-cell2"),
                                                 ("shared", "shared")])
def test_volume_backed_server_moves_on_its_boot_volume(vcloud, volume_type, ends_on):
    body = {"server": {
        "name": f"bfv-{volume_type}", "flavorRef": "11", "imageRef": "",
        "networks": [{"uuid": mh.network_id(vcloud)}],
        "block_device_mapping_v2": [{
            "boot_index": 0, "uuid": mh.image_id(vcloud), "source_type": "image",
            "destination_type": "volume", "volume_size": 1, "volume_type": volume_type,
            "delete_on_termination": True}]}}
    resp = vcloud.request("POST", f"{mh.COMPUTE}/servers", cloud=mh.USER, json=body,
                          version="2.67")
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    src = mh.host_of(vcloud.wait_status(sid, "ACTIVE"))
    (vid,) = vh.attached_ids(vcloud, sid)
    assert vh.volume(vcloud, vid)["bootable"] == "true"
    written = vh.write_pattern(vh.volume_file(vcloud, vid, volume_type), b"root")
    assert mh.locate(vcloud, sid)["disks"] == []             # no local root disk anywhere

    dst = mh.host_of(resize_to_verify(vcloud, sid))
    assert mh.cell_of_host(dst) == "cell2"
    claimed = mh.consumer_allocations(vcloud, sid)
    assert claimed and all("DISK_GB" not in a["resources"] for a in claimed.values())
    mh.action(vcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(vcloud, sid, "ACTIVE")
    vol = vh.wait_volume(vcloud, vid, "in-use")
    assert vh.backend_of(vol) == ends_on and vh.attachment_hosts(vcloud, vid) == [dst]
    vh.assert_pattern(vh.volume_file(vcloud, vid, ends_on), written)
    assert src != dst
    mh.assert_audit_clean(vcloud)
    assert vcloud.request("DELETE", f"{mh.COMPUTE}/servers/{sid}",
                          cloud=mh.USER).status_code == 204
    vcloud.wait_gone(sid)
    # delete_on_termination: the boot volume goes with the server
    deadline_ok = False
    for _ in range(100):
        if vcloud.request("GET", f"{vh.VOLUME}/volumes/{vid}").status_code == 404:
            deadline_ok = True
            break
        time.sleep(0.2)
    assert deadline_ok, vh.volume(vcloud, vid)
