"""Attaching and detaching volumes through os-volume_attachments and the openstack CLI.

Each test checks both sides: what the compute API shows (attachments, the
server's volumes_attached) and what the volume service counts (status and
attachments), and for data, the bytes in the volume's file on its backend.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import cvhelpers as cv
import pytest


def _state(cloud, server_id: str, volume_id: str) -> tuple:
    """Everything a refused request must leave as it was."""
    found = cv.volume(cloud, volume_id)
    return (found["status"], sorted(a["attachment_id"] for a in found["attachments"]),
            [a["volumeId"] for a in cv.listed(cloud, server_id)],
            cv.attached_ids(cloud, server_id))


def test_attach_list_show_write_and_detach(vcloud):
    cloud = vcloud
    srv = cv.boot(cloud, "attach-1")
    sid, host = srv["id"], cv.host_of(srv)
    vol = cv.create_volume(cloud, "data-1")
    vid = vol["id"]

    resp = cv.attach(cloud, sid, vid, tag="data", delete_on_termination=False)
    body = resp.json()["volumeAttachment"]
    assert body == {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb",
                    "tag": "data", "delete_on_termination": False}

    # the volume service: in use by this server, one attachment, on the server's host
    found = cv.volume(cloud, vid)
    assert found["status"] == "in-use"
    assert [(a["server_id"], a["host_name"], a["device"]) for a in found["attachments"]] == [
        (sid, host, "/dev/vdb")]
    assert [a["status"] for a in cv.attachments_of(cloud, vid)] == ["attached"]

    # the compute API at each microversion
    assert cv.listed(cloud, sid) == [body]
    assert cv.listed(cloud, sid, version="2.69") == [
        {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb"}]
    shown = cloud.request("GET", f"{cv.COMPUTE}/servers/{sid}/os-volume_attachments/{vid}",
                          cloud=cv.USER, version="2.70").json()["volumeAttachment"]
    assert shown == {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb",
                     "tag": "data"}
    assert cv.server(cloud, sid)["os-extended-volumes:volumes_attached"] == [
        {"id": vid, "delete_on_termination": False}]
    assert cv.server(cloud, sid, version="2.1")["os-extended-volumes:volumes_attached"] == [
        {"id": vid}]

    # locate: the volume's backend and file, and the attachment both sides know
    [located] = cv.locate(cloud, sid)["volumes"]
    assert located["backend"] == "shared" and located["volume_id"] == vid
    assert located["path"] == located["device_path"] and os.path.isfile(located["path"])
    assert located["attachment_ids"] == [located["attachment_id"]]

    # the guest writes through its device; the bytes are in the volume's file
    guest = cv.driver(cloud, host)
    assert guest.get_volumes(sid)[vid]["device_name"] == "/dev/vdb"
    payload = os.urandom(3000)
    guest.write_volume(sid, vid, 1024 * 1024 + 17, payload)
    assert cv.read_file(located["path"], 1024 * 1024 + 17, 3000) == payload
    assert guest.read_volume(sid, vid, 1024 * 1024 + 17, 3000) == payload

    cv.detach(cloud, sid, vid)
    assert cv.listed(cloud, sid) == []
    assert cv.attached_ids(cloud, sid) == []
    assert cv.volume(cloud, vid)["attachments"] == [] and cv.attachments_of(cloud, vid) == []
    assert guest.get_volumes(sid) == {}
    assert cv.locate(cloud, sid)["volumes"] == []
    # detached, the data stay with the volume
    assert cv.read_file(located["path"], 1024 * 1024 + 17, 3000) == payload

    # attached again, the server sees the same bytes at the same offset
    cv.attach(cloud, sid, vid)
    assert guest.read_volume(sid, vid, 1024 * 1024 + 17, 3000) == payload
    cv.detach(cloud, sid, vid)
    cv.delete_server(cloud, sid)
    assert cv.volume(cloud, vid)["status"] == "available"


def test_refusals_change_nothing(vcloud):
    cloud = vcloud
    first, second = cv.boot(cloud, "refuse-1"), cv.boot(cloud, "refuse-2")
    vol, spare = cv.create_volume(cloud, "refuse-vol"), cv.create_volume(cloud, "spare")
    vid = vol["id"]
    cv.attach(cloud, first["id"], vid)
    before = {s: _state(cloud, s, vid) for s in (first["id"], second["id"])}

    def same() -> None:
        for sid, state in before.items():
            assert _state(cloud, sid, vid) == state
        assert cv.volume(cloud, spare["id"])["status"] == "available"
        assert cv.attachments_of(cloud, spare["id"]) == []

    # in use by another server: 400 from the volume service's reserve
    resp = cv.attach(cloud, second["id"], vid, wait=False)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json()
    same()
    # already on this server
    resp = cv.attach(cloud, first["id"], vid, wait=False)
    assert resp.status_code == 400 and "already attached" in resp.text, resp.text
    same()
    # unknown volume, unknown server, a volume the server does not have
    resp = cv.attach(cloud, second["id"], str(uuid.uuid4()), wait=False)
    assert resp.status_code == 404 and "itemNotFound" in resp.json(), resp.text
    resp = cv.attach(cloud, str(uuid.uuid4()), spare["id"], wait=False)
    assert resp.status_code == 404, resp.text
    assert cv.detach(cloud, second["id"], vid, wait=False).status_code == 404
    resp = cloud.request("GET", f"{cv.COMPUTE}/servers/{second['id']}/os-volume_attachments/"
                                f"{vid}", cloud=cv.USER)
    assert resp.status_code == 404, resp.text
    # bad bodies: a device path Nova would refuse, a tag before 2.49, no volumeId
    assert cv.attach(cloud, second["id"], spare["id"], wait=False,
                     device="/mnt/x").status_code == 400
    assert cv.attach(cloud, second["id"], spare["id"], version="2.48", wait=False,
                     tag="t").status_code == 400
    resp = cloud.request("POST", f"{cv.COMPUTE}/servers/{second['id']}/os-volume_attachments",
                         cloud=cv.USER, json={"volumeAttachment": {}})
    assert resp.status_code == 400, resp.text
    # a device name the server already uses
    resp = cv.attach(cloud, first["id"], spare["id"], wait=False, device="/dev/vdb")
    assert resp.status_code == 409, resp.text
    same()
    # a swap is the volume service's business (admin rule), and only while it migrates
    put = {"volumeAttachment": {"volumeId": spare["id"]}}
    url = f"{cv.COMPUTE}/servers/{first['id']}/os-volume_attachments/{vid}"
    assert cloud.request("PUT", url, cloud=cv.USER, json=put).status_code == 403
    resp = cloud.request("PUT", url, cloud=cv.ADMIN, json=put)
    assert resp.status_code == 409 and "not migrating" in resp.text, resp.text
    same()

    # a server in a task (held while it powers off): 409, for attach and detach alike
    sid = first["id"]
    hold = cv.hold(cloud, "accepted-stop", sid)
    try:
        resp = cloud.request("POST", f"{cv.COMPUTE}/servers/{sid}/action", cloud=cv.USER,
                             json={"os-stop": None})
        assert resp.status_code == 202, resp.text
        cv.wait_reached(cloud, "accepted-stop", sid)
        resp = cv.attach(cloud, sid, spare["id"], wait=False)
        assert resp.status_code == 409 and "conflictingRequest" in resp.json(), resp.text
        assert cv.detach(cloud, sid, vid, wait=False).status_code == 409
    finally:
        os.unlink(hold)
    cloud.wait_status(sid, "SHUTOFF")
    same()

    # stopped, the server takes and gives volumes again
    cv.attach(cloud, sid, spare["id"])
    cv.detach(cloud, sid, spare["id"])
    cv.detach(cloud, sid, vid)
    for server in (first, second):
        cv.delete_server(cloud, server["id"])


def test_failed_attach_leaves_no_attachment(vcloud):
    cloud = vcloud
    srv = cv.boot(cloud, "attach-fault")
    sid = srv["id"]
    vid = cv.create_volume(cloud, "faulty")["id"]
    cv.arm_driver_fault(cloud, cv.host_of(srv), "attach_volume", "the hypervisor refused")
    resp = cv.attach(cloud, sid, vid, wait=False)
    assert resp.status_code == 200, resp.text  # Nova's attach is asynchronous
    events = []
    for _ in range(100):
        actions = cloud.request("GET", f"{cv.COMPUTE}/servers/{sid}/os-instance-actions",
                                version="2.84").json()["instanceActions"]
        attach = next(a for a in actions if a["action"] == "attach_volume")
        detail = cloud.request("GET", f"{cv.COMPUTE}/servers/{sid}/os-instance-actions/"
                                      f"{attach['request_id']}", version="2.84").json()
        events = detail["instanceAction"]["events"]
        if events and events[0]["finish_time"]:
            break
        time.sleep(0.1)
    assert [(e["event"], e["result"]) for e in events] == [("compute_attach_volume", "Error")]
    assert cv.wait_volume(cloud, vid, "available")["attachments"] == []
    assert cv.attachments_of(cloud, vid) == []
    assert cv.listed(cloud, sid) == [] and cv.attached_ids(cloud, sid) == []
    assert cv.driver(cloud, cv.host_of(srv)).get_volumes(sid) == {}
    # the next attach works
    cv.attach(cloud, sid, vid)
    cv.delete_server(cloud, sid)
    assert cv.wait_volume(cloud, vid, "available")["attachments"] == []


def test_two_servers_race_for_one_volume(vcloud):
    cloud = vcloud
    servers = [cv.boot(cloud, f"racer-{i}")["id"] for i in range(2)]
    for round_ in range(3):
        vid = cv.create_volume(cloud, f"prize-{round_}")["id"]
        barrier = threading.Barrier(2)
        codes: dict[str, int] = {}

        def go(sid: str, vid: str, barrier: threading.Barrier, codes: dict[str, int]) -> None:
            barrier.wait()
            codes[sid] = cv.attach(cloud, sid, vid, wait=False).status_code

        threads = [threading.Thread(target=go, args=(sid, vid, barrier, codes))
                   for sid in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes.values()) == [200, 400], codes
        winner = next(sid for sid, code in codes.items() if code == 200)
        loser = next(sid for sid in servers if sid != winner)
        found = cv.wait_volume(cloud, vid, "in-use")
        assert [a["server_id"] for a in found["attachments"]] == [winner]
        assert len(cv.attachments_of(cloud, vid)) == 1
        assert [a["volumeId"] for a in cv.listed(cloud, winner)] == [vid]
        assert cv.listed(cloud, loser) == []
        cv.detach(cloud, winner, vid)
    for sid in servers:
        cv.delete_server(cloud, sid)


def test_delete_on_termination_chosen_at_attach(vcloud):
    cloud = vcloud
    sid = cv.boot(cloud, "dot")["id"]
    doomed, kept = cv.create_volume(cloud, "doomed")["id"], cv.create_volume(cloud, "kept")["id"]
    cv.attach(cloud, sid, doomed, delete_on_termination=True)
    cv.attach(cloud, sid, kept, delete_on_termination="false")
    assert sorted((v["id"], v["delete_on_termination"]) for v in cv.server(
        cloud, sid)["os-extended-volumes:volumes_attached"]) == sorted(
        [(doomed, True), (kept, False)])
    cv.delete_server(cloud, sid)
    cv.wait_volume_gone(cloud, doomed)
    found = cv.wait_volume(cloud, kept, "available")
    assert found["attachments"] == [] and cv.attachments_of(cloud, kept) == []


@pytest.mark.cli
def test_openstack_cli_adds_and_removes_volumes(vcloud):
    cloud = vcloud
    sid = cv.boot(cloud, "cli-volumes")["id"]
    vid = cv.create_volume(cloud, "cli-vol")["id"]
    cloud.openstack("--os-compute-api-version", "2.79", "server", "add", "volume",
                    "--tag", "logs", "--enable-delete-on-termination", sid, vid, cloud=cv.USER)
    cv.wait_volume(cloud, vid, "in-use")
    listed = cloud.openstack_json("--os-compute-api-version", "2.79", "server", "volume",
                                  "list", sid, cloud=cv.USER)
    assert len(listed) == 1
    row = {k.lower().replace(" ", "_").rstrip("?"): v for k, v in listed[0].items()}
    assert row["volume_id"] == vid and row["device"] == "/dev/vdb" and row["tag"] == "logs"
    assert row["delete_on_termination"] is True
    cloud.openstack("server", "remove", "volume", sid, vid, cloud=cv.USER)
    cv.wait_volume(cloud, vid, "available")
    assert cv.listed(cloud, sid) == [] and cv.attachments_of(cloud, vid) == []
    cv.delete_server(cloud, sid)
    assert cv.volume(cloud, vid)["status"] == "available"
