"""POST and DELETE /os-assisted-volume-snapshots on a running cloud: the request goes to
the host of the server the volume is attached to, whose fake driver records (and
forgets) the snapshot of the volume's file; Nova's answer shapes; bad input, a
volume attached nowhere and a non-service caller are refused with nothing recorded."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
import servicecalls as sc
from cloudclients import CloudProcess, start_cloud, stop_cloud

URL = f"{sc.COMPUTE}/os-assisted-volume-snapshots"


@pytest.fixture(scope="module")
def acloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("assisted-snapshots"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


@pytest.fixture(scope="module")
def attached(acloud) -> tuple[dict, dict]:
    server = sc.boot(acloud, "snap-1")
    volume = sc.create_volume(acloud, "snap-vol")
    return server, sc.attach(acloud, server["id"], volume["id"])


def _snapshots(cloud, server: dict) -> dict[str, dict]:
    return sc.driver(cloud, server["OS-EXT-SRV-ATTR:host"]).volume_snapshots(server["id"])


def _create(proc: CloudProcess, volume_id: str, version: str = "2.91", **info):
    create_info = {"snapshot_id": str(uuid.uuid4()), "type": "qcow2", "new_file": "new.qcow2",
                   **info}
    return proc.request("POST", URL, version=version, json={"snapshot": {
        "volume_id": volume_id, "create_info": create_info}})


def _delete(proc: CloudProcess, snapshot_id: str, query: str, version: str = "2.91",
            **kwargs):
    return proc.request("DELETE", f"{URL}/{snapshot_id}?{query}", version=version, **kwargs)


def _delete_info(volume_id: str) -> str:
    return "delete_info=" + quote(json.dumps({"volume_id": volume_id}))


def _nothing_recorded(cloud, server: dict, volume_id: str, before: dict) -> None:
    """No snapshot came or went: one made now to probe is the only change (the host
    takes a server's requests in the order they were sent)."""
    probe = str(uuid.uuid4())
    assert _create(cloud, volume_id, snapshot_id=probe).status_code == 200
    sc.wait_for(lambda: probe in _snapshots(cloud, server), "the probe")
    after = _snapshots(cloud, server)
    assert {k: v for k, v in after.items() if k != probe} == before
    assert _delete(cloud, probe, _delete_info(volume_id)).status_code == 204
    sc.wait_for(lambda: probe not in _snapshots(cloud, server), "the probe gone")


def test_create_and_delete_a_snapshot_on_the_host(acloud, attached):
    server, volume = attached
    snapshot_id = str(uuid.uuid4())
    resp = _create(acloud, volume["id"], snapshot_id=snapshot_id)
    assert resp.status_code == 200, resp.text
    # Nova's answer: the id the request gave in create_info (none here), and the volume
    assert resp.json() == {"snapshot": {"id": None, "volumeId": volume["id"]}}
    recorded = sc.wait_for(lambda: _snapshots(acloud, server).get(snapshot_id), "the snapshot")
    located = json.loads(acloud.transcell("instance", "locate", server["id"],
                                          "--json").stdout)
    [path] = [v["device_path"] for v in located["volumes"] if v["volume_id"] == volume["id"]]
    assert (recorded["volume_id"], recorded["device_path"], recorded["new_file"],
            recorded["type"]) == (volume["id"], path, "new.qcow2", "qcow2")
    assert recorded["size"] == 1024 ** 3

    resp = _delete(acloud, snapshot_id, _delete_info(volume["id"]))
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    sc.wait_for(lambda: snapshot_id not in _snapshots(acloud, server), "the snapshot gone")


def test_the_id_given_is_answered_and_deletes(acloud, attached):
    server, volume = attached
    given = str(uuid.uuid4())
    resp = _create(acloud, volume["id"], id=given)
    assert resp.json() == {"snapshot": {"id": given, "volumeId": volume["id"]}}
    sc.wait_for(lambda: any(s["id"] == given for s in _snapshots(acloud, server).values()),
                "the snapshot")
    # as Tempest does: delete by the id the answer gave, at the oldest version
    assert _delete(acloud, given, _delete_info(volume["id"]), version="2.1").status_code == 204
    sc.wait_for(lambda: all(s["id"] != given for s in _snapshots(acloud, server).values()),
                "the snapshot gone")


def test_a_service_user_may_snapshot(acloud, attached):
    server, volume = attached
    token = sc.service_token(acloud)
    snapshot_id = str(uuid.uuid4())
    resp = acloud.request("POST", URL, token=token, json={"snapshot": {
        "volume_id": volume["id"], "create_info": {
            "snapshot_id": snapshot_id, "type": "qcow2", "new_file": "svc"}}})
    assert resp.status_code == 200, resp.text
    sc.wait_for(lambda: snapshot_id in _snapshots(acloud, server), "the snapshot")
    resp = _delete(acloud, snapshot_id, _delete_info(volume["id"]), token=token)
    assert resp.status_code == 204, resp.text
    sc.wait_for(lambda: snapshot_id not in _snapshots(acloud, server), "the snapshot gone")


def _info(**changes):
    info = {"snapshot_id": str(uuid.uuid4()), "type": "qcow2", "new_file": "f"}
    info.update(changes)
    return {k: v for k, v in info.items() if v is not None}


@pytest.mark.parametrize("body", [
    {},
    {"snapshot": {"volume_id": "V"}},
    {"snapshot": {"create_info": _info()}},
    {"snapshot": {"volume_id": "", "create_info": _info()}},
    {"snapshot": {"volume_id": "V", "create_info": _info(type="raw")}},
    {"snapshot": {"volume_id": "V", "create_info": _info(new_file="")}},
    {"snapshot": {"volume_id": "V", "create_info": _info(snapshot_id=None)}},
    {"snapshot": {"volume_id": "V", "create_info": _info(extra=1)}},
    {"snapshot": {"volume_id": "V", "create_info": _info(), "extra": 1}},
    {"snapshot": {"volume_id": "V", "create_info": _info()}, "extra": 1},
    # attached nowhere, or no such volume: 400 as Nova answers (VolumeBDMNotFound)
    {"snapshot": {"volume_id": str(uuid.uuid4()), "create_info": _info()}},
], ids=lambda v: json.dumps(v)[:60])
def test_bad_create_is_400_and_nothing_is_recorded(acloud, attached, body):
    server, volume = attached
    before = _snapshots(acloud, server)
    if body.get("snapshot", {}).get("volume_id") == "V":
        body = {**body, "snapshot": {**body["snapshot"], "volume_id": volume["id"]}}
    resp = acloud.request("POST", URL, json=body)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json()
    _nothing_recorded(acloud, server, volume["id"], before)


@pytest.mark.parametrize(("query", "version"), [
    ("", "2.91"),
    ("delete_info=not-json", "2.91"),
    ("delete_info=" + quote("[1]"), "2.91"),
    ("delete_info=" + quote(json.dumps({"volume": "x"})), "2.91"),
    ("delete_info=" + quote(json.dumps({"volume_id": 7})), "2.91"),
    ("DELETE_INFO&other=1", "2.75"),
    ("delete_info=" + quote(json.dumps({"volume_id": str(uuid.uuid4())})), "2.91"),
], ids=lambda v: v[:40])
def test_bad_delete_is_400_and_nothing_is_forgotten(acloud, attached, query, version):
    server, volume = attached
    kept = str(uuid.uuid4())
    assert _create(acloud, volume["id"], snapshot_id=kept).status_code == 200
    sc.wait_for(lambda: kept in _snapshots(acloud, server), "the snapshot")
    before = _snapshots(acloud, server)
    query = query.replace("DELETE_INFO", _delete_info(volume["id"]))
    resp = _delete(acloud, kept, query, version=version)
    assert resp.status_code == 400, resp.text
    _nothing_recorded(acloud, server, volume["id"], before)
    assert _delete(acloud, kept, _delete_info(volume["id"])).status_code == 204


def test_a_volume_attached_nowhere_is_400(acloud, attached):
    server, _ = attached
    loose = sc.create_volume(acloud, "loose")
    resp = _create(acloud, loose["id"])
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == \
        f"No volume Block Device Mapping with id {loose['id']}."
    resp = _delete(acloud, str(uuid.uuid4()), _delete_info(loose["id"]))
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("user", [sc.DEMO, sc.READER])
def test_users_are_refused_and_nothing_is_recorded(acloud, attached, user):
    server, volume = attached
    kept = str(uuid.uuid4())
    assert _create(acloud, volume["id"], snapshot_id=kept).status_code == 200
    sc.wait_for(lambda: kept in _snapshots(acloud, server), "the snapshot")
    before = _snapshots(acloud, server)
    resp = acloud.request("POST", URL, cloud=user, json={"snapshot": {
        "volume_id": volume["id"], "create_info": _info()}})
    assert resp.status_code == 403, resp.text
    resp = _delete(acloud, kept, _delete_info(volume["id"]), cloud=user)
    assert resp.status_code == 403, resp.text
    _nothing_recorded(acloud, server, volume["id"], before)
    assert _delete(acloud, kept, _delete_info(volume["id"])).status_code == 204
