"""Volume snapshots end to end: Cinder's CRUD, force for an in-use volume, bad input
refused with nothing changed, policy, the delete rules, volumes made from a snapshot
holding its bytes (not the source volume's later ones), and the audit's check."""

from __future__ import annotations

import json
import os
import uuid

import volapi as va
from volapi import ADMIN, USER, call, create, show

ALT = "transcell-alt"
READER = "transcell-reader"
MiB = 1024 ** 2


def _snap(cloud, volume_id: str, cloud_name: str = USER, expect: int = 202,
          **fields) -> dict:
    resp = call(cloud, "POST", "/snapshots", cloud_name,
                json={"snapshot": {"volume_id": volume_id, **fields}})
    assert resp.status_code == expect, resp.text
    return resp.json()


def _snapshot(cloud, snapshot_id: str, cloud_name: str = USER) -> dict:
    resp = call(cloud, "GET", f"/snapshots/{snapshot_id}", cloud_name)
    assert resp.status_code == 200, resp.text
    return resp.json()["snapshot"]


def _all_snapshots(cloud) -> list[dict]:
    resp = call(cloud, "GET", "/snapshots/detail?all_tenants=1", ADMIN)
    assert resp.status_code == 200, resp.text
    return sorted(resp.json()["snapshots"], key=lambda s: s["id"])


def _snapshot_file(cloud, snapshot_id: str) -> str:
    root = os.path.join(cloud.state_dir, "volumes")
    (path,) = [os.path.join(root, b, f"snapshot-{snapshot_id}") for b in os.listdir(root)
               if os.path.exists(os.path.join(root, b, f"snapshot-{snapshot_id}"))]
    return path


def test_create_show_list_update_delete(vcloud):
    volume = create(vcloud, name="snap-source", size=2)
    path = va.volume_path(vcloud, volume["id"])
    va.write_at(path, 5 * MiB, b"before the snapshot")
    snap = _snap(vcloud, volume["id"], name="first", description="one",
                 metadata={"k": "v"})["snapshot"]
    assert (snap["status"], snap["size"], snap["volume_id"], snap["name"],
            snap["description"], snap["metadata"]) == \
        ("available", 2, volume["id"], "first", "one", {"k": "v"})
    assert "os-extended-snapshot-attributes:project_id" not in snap  # POST's body
    found = _snapshot(vcloud, snap["id"])
    assert found["os-extended-snapshot-attributes:progress"] == "100%"
    project = show(vcloud, volume["id"])["os-vol-tenant-attr:tenant_id"]
    assert found["os-extended-snapshot-attributes:project_id"] == project
    # the project-scoped URL serves it too
    resp = vcloud.request("GET", f"/volume/v3/{project}/snapshots/{snap['id']}", cloud=USER,
                          version=None)
    assert resp.status_code == 200 and resp.json()["snapshot"]["name"] == "first"
    listed = call(vcloud, "GET", "/snapshots").json()["snapshots"]
    assert snap["id"] in [s["id"] for s in listed]
    resp = call(vcloud, "GET", f"/snapshots/detail?volume_id={volume['id']}")
    assert [s["id"] for s in resp.json()["snapshots"]] == [snap["id"]]
    # offset and limit page the list, as Cinder's
    second = _snap(vcloud, volume["id"], name="second")["snapshot"]
    ordered = [s["id"] for s in call(vcloud, "GET", f"/snapshots?volume_id={volume['id']}")
               .json()["snapshots"]]
    assert sorted(ordered) == sorted([second["id"], snap["id"]])
    resp = call(vcloud, "GET", f"/snapshots?volume_id={volume['id']}&offset=1&limit=5")
    assert [s["id"] for s in resp.json()["snapshots"]] == ordered[1:]
    assert call(vcloud, "DELETE", f"/snapshots/{second['id']}").status_code == 202
    resp = call(vcloud, "PUT", f"/snapshots/{snap['id']}",
                json={"snapshot": {"name": "renamed", "description": "two"}})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["snapshot"]["name"], resp.json()["snapshot"]["description"]) == \
        ("renamed", "two")
    # the snapshot's file holds the volume's bytes as they were
    snap_path = _snapshot_file(vcloud, snap["id"])
    assert va.read_at(snap_path, 5 * MiB, 19) == b"before the snapshot"
    assert os.path.getsize(snap_path) == 2 * 1024 ** 3
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}").status_code == 202
    assert call(vcloud, "GET", f"/snapshots/{snap['id']}").status_code == 404
    assert not os.path.exists(snap_path)
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_a_volume_from_a_snapshot_holds_the_snapshots_bytes(vcloud):
    volume = create(vcloud, name="changing", size=1)
    path = va.volume_path(vcloud, volume["id"])
    va.write_at(path, 0, b"old bytes")
    va.write_at(path, 700 * MiB, b"far away")
    snap = _snap(vcloud, volume["id"])["snapshot"]
    va.write_at(path, 0, b"NEW BYTES")  # the volume changes after the snapshot
    # smaller than the snapshot: refused, nothing made
    before = sorted(v["id"] for v in call(vcloud, "GET", "/volumes").json()["volumes"])
    copy = create(vcloud, snapshot_id=snap["id"], size=2, name="from-snap")
    assert copy["snapshot_id"] == snap["id"] and copy["size"] == 2
    copy_path = va.volume_path(vcloud, copy["id"])
    assert va.read_at(copy_path, 0, 9) == b"old bytes"
    assert va.read_at(copy_path, 700 * MiB, 8) == b"far away"
    assert os.path.getsize(copy_path) == 2 * 1024 ** 3
    assert va.read_at(path, 0, 9) == b"NEW BYTES"
    # the size defaults to the snapshot's
    same = create(vcloud, snapshot_id=snap["id"], size=None)
    assert same["size"] == 1
    resp = call(vcloud, "POST", "/volumes", json={"volume": {"snapshot_id": snap["id"],
                                                             "source_volid": volume["id"]}})
    assert resp.status_code == 400, resp.text
    after = sorted(v["id"] for v in call(vcloud, "GET", "/volumes").json()["volumes"])
    assert set(after) - set(before) == {copy["id"], same["id"]}
    # a smaller size than the snapshot's
    big = create(vcloud, size=2)
    big_snap = _snap(vcloud, big["id"])["snapshot"]
    resp = call(vcloud, "POST", "/volumes", json={"volume": {"snapshot_id": big_snap["id"],
                                                             "size": 1}})
    assert resp.status_code == 400 and "badRequest" in resp.json(), resp.text
    for sid in (snap["id"], big_snap["id"]):
        assert call(vcloud, "DELETE", f"/snapshots/{sid}").status_code == 202
    for vid in (volume["id"], copy["id"], same["id"], big["id"]):
        assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


def test_force_for_an_in_use_volume(vcloud):
    volume = create(vcloud, name="busy")
    resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action", ADMIN,
                json={"os-reset_status": {"status": "in-use"}})
    assert resp.status_code == 202, resp.text
    before = _all_snapshots(vcloud)
    resp = call(vcloud, "POST", "/snapshots",
                json={"snapshot": {"volume_id": volume["id"]}})
    assert resp.status_code == 400 and "badRequest" in resp.json(), resp.text
    for force in (False, "perhaps"):
        resp = call(vcloud, "POST", "/snapshots",
                    json={"snapshot": {"volume_id": volume["id"], "force": force}})
        assert resp.status_code == 400, resp.text
    assert _all_snapshots(vcloud) == before
    snap = _snap(vcloud, volume["id"], force=True)["snapshot"]
    assert snap["status"] == "available"
    assert show(vcloud, volume["id"])["status"] == "in-use"
    # an errored volume cannot be snapshotted even with force
    call(vcloud, "POST", f"/volumes/{volume['id']}/action", ADMIN,
         json={"os-reset_status": {"status": "error"}})
    resp = call(vcloud, "POST", "/snapshots",
                json={"snapshot": {"volume_id": volume["id"], "force": True}})
    assert resp.status_code == 400, resp.text
    call(vcloud, "POST", f"/volumes/{volume['id']}/action", ADMIN,
         json={"os-reset_status": {"status": "available"}})
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}").status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_bad_input_is_refused_and_changes_nothing(vcloud):
    volume = create(vcloud, name="untouched")
    snap = _snap(vcloud, volume["id"], name="keep")["snapshot"]
    before = _all_snapshots(vcloud)
    cases = [
        ({}, 400, "badRequest"),
        ({"volume_id": "not-a-uuid"}, 400, "badRequest"),
        ({"volume_id": str(uuid.uuid4())}, 404, "itemNotFound"),
        ({"volume_id": volume["id"], "size": 3}, 400, "badRequest"),
        ({"volume_id": volume["id"], "name": 7}, 400, "badRequest"),
        ({"volume_id": volume["id"], "metadata": ["x"]}, 400, "badRequest"),
    ]
    for fields, status, name in cases:
        resp = call(vcloud, "POST", "/snapshots", json={"snapshot": fields})
        assert resp.status_code == status, (fields, resp.text)
        assert set(resp.json()) == {name}, resp.text
        assert resp.json()[name]["code"] == status and resp.json()[name]["message"]
    resp = call(vcloud, "POST", "/snapshots", json={"volume_id": volume["id"]})
    assert resp.status_code == 400
    # a volume_id of null names no volume (Cinder's 404)
    resp = call(vcloud, "POST", "/snapshots", json={"snapshot": {"volume_id": None}})
    assert resp.status_code == 404 and "itemNotFound" in resp.json(), resp.text
    assert call(vcloud, "GET", "/snapshots?offset=x").status_code == 400
    for body in ({"snapshot": {"size": 5}}, {"snapshot": {}}, {"snapshot": "x"},
                 {"snapshot": {"name": 5}}):
        resp = call(vcloud, "PUT", f"/snapshots/{snap['id']}", json=body)
        assert resp.status_code == 400 and "badRequest" in resp.json(), (body, resp.text)
    assert call(vcloud, "GET", "/snapshots/not-a-uuid").status_code == 404
    assert call(vcloud, "DELETE", f"/snapshots/{uuid.uuid4()}").status_code == 404
    assert call(vcloud, "GET", "/snapshots?sort=bogus:asc").status_code == 400
    assert _all_snapshots(vcloud) == before
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}").status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_policy(vcloud):
    volume = create(vcloud, name="guarded")
    snap = _snap(vcloud, volume["id"], name="guarded")["snapshot"]
    before = _all_snapshots(vcloud)
    # a reader of the project sees it, and may change nothing
    assert _snapshot(vcloud, snap["id"], READER)["name"] == "guarded"
    assert snap["id"] in [s["id"] for s in
                          call(vcloud, "GET", "/snapshots/detail", READER).json()["snapshots"]]
    resp = call(vcloud, "POST", "/snapshots", READER,
                json={"snapshot": {"volume_id": volume["id"]}})
    assert resp.status_code == 403 and "forbidden" in resp.json(), resp.text
    resp = call(vcloud, "PUT", f"/snapshots/{snap['id']}", READER,
                json={"snapshot": {"name": "reader"}})
    assert resp.status_code == 403
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}", READER).status_code == 403
    # another project sees nothing
    assert call(vcloud, "GET", f"/snapshots/{snap['id']}", ALT).status_code == 404
    assert snap["id"] not in [s["id"] for s in
                              call(vcloud, "GET", "/snapshots", ALT).json()["snapshots"]]
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}", ALT).status_code == 404
    resp = call(vcloud, "POST", "/snapshots", ALT,
                json={"snapshot": {"volume_id": volume["id"]}})
    assert resp.status_code == 404
    resp = call(vcloud, "POST", "/volumes", ALT, json={"volume": {"snapshot_id": snap["id"]}})
    assert resp.status_code == 404
    assert call(vcloud, "GET", "/snapshots?all_tenants=1").status_code == 403
    assert _all_snapshots(vcloud) == before
    assert call(vcloud, "DELETE", f"/snapshots/{snap['id']}", ADMIN).status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_a_volume_with_snapshots_is_not_deleted(vcloud):
    volume = create(vcloud, name="parent")
    first = _snap(vcloud, volume["id"])["snapshot"]
    second = _snap(vcloud, volume["id"])["snapshot"]
    resp = call(vcloud, "DELETE", f"/volumes/{volume['id']}")
    assert resp.status_code == 400 and "badRequest" in resp.json(), resp.text
    assert "snapshots" in resp.json()["badRequest"]["message"]
    # nor migrated (its snapshots would stay behind)
    resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action", ADMIN,
                json={"os-migrate_volume": {"host": "transcell@local-cell1#local-cell1"}})
    assert resp.status_code == 400 and "snapshots" in resp.text, resp.text
    found = show(vcloud, volume["id"])
    assert (found["status"], found["migration_status"]) == ("available", None)
    assert show(vcloud, volume["id"])["status"] == "available"
    assert call(vcloud, "DELETE", f"/snapshots/{first['id']}").status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 400
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}?cascade=maybe").status_code == 400
    assert show(vcloud, volume["id"])["status"] == "available"
    # cascade takes the snapshots with it
    resp = call(vcloud, "DELETE", f"/volumes/{volume['id']}?cascade=true")
    assert resp.status_code == 202, resp.text
    assert call(vcloud, "GET", f"/snapshots/{second['id']}").status_code == 404
    assert call(vcloud, "GET", f"/volumes/{volume['id']}").status_code == 404


def test_audit_notices_a_snapshot_whose_file_is_gone(vcloud):
    volume = create(vcloud, name="audited")
    snap = _snap(vcloud, volume["id"])["snapshot"]

    def problems() -> set[tuple[str, str]]:
        proc = vcloud.transcell("audit", "--json", check=False)
        return {(p["kind"], p["subject"]) for p in json.loads(proc.stdout)["problems"]}

    assert not {p for p in problems() if p[1] == snap["id"] or "snapshot" in p[0]}
    path = _snapshot_file(vcloud, snap["id"])
    os.rename(path, path + ".away")
    try:
        assert ("snapshot-file-missing", snap["id"]) in problems()
    finally:
        os.rename(path + ".away", path)
    assert ("snapshot-file-missing", snap["id"]) not in problems()
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}?cascade=true").status_code == 202


def test_novas_snapshot_proxy_until_236(vcloud):
    volume = create(vcloud, name="proxied")
    base = "/compute/v2.1/os-snapshots"

    def nova(method: str, path: str = "", version: str = "2.35", **kwargs):
        return vcloud.request(method, base + path, cloud=USER, version=version, **kwargs)

    before = _all_snapshots(vcloud)
    for body in ({"snapshot": {}}, {"snapshot": {"volume_id": volume["id"], "force": "x"}},
                 {"snapshot": {"volume_id": volume["id"], "size": 1}}):
        resp = nova("POST", json=body)
        assert resp.status_code == 400 and "badRequest" in resp.json(), resp.text
    resp = nova("POST", json={"snapshot": {"volume_id": str(uuid.uuid4())}})
    assert resp.status_code == 404, resp.text
    resp = nova("POST", json={"snapshot": {"volume_id": volume["id"]}}, version="2.36")
    assert resp.status_code == 404, resp.text
    assert _all_snapshots(vcloud) == before
    resp = nova("POST", json={"snapshot": {"volume_id": volume["id"],
                                           "display_name": "via-nova", "force": "true"}})
    assert resp.status_code == 200, resp.text
    snap = resp.json()["snapshot"]
    assert (snap["volumeId"], snap["displayName"], snap["status"], snap["size"]) == \
        (volume["id"], "via-nova", "available", 1)
    assert set(snap) == {"id", "volumeId", "status", "size", "createdAt", "displayName",
                         "displayDescription"}
    assert nova("GET", f"/{snap['id']}").json()["snapshot"] == snap
    for path in ("", "/detail"):
        assert snap["id"] in [s["id"] for s in nova("GET", path).json()["snapshots"]]
    assert nova("GET", f"/{snap['id']}", version="2.36").status_code == 404
    assert vcloud.request("DELETE", f"{base}/{snap['id']}", cloud=READER,
                          version="2.35").status_code == 403
    assert nova("DELETE", f"/{snap['id']}").status_code == 202
    assert nova("GET", f"/{snap['id']}").status_code == 404
    # the volume proxy makes a volume of a snapshot too
    snap = _snap(vcloud, volume["id"])["snapshot"]
    resp = vcloud.request("POST", "/compute/v2.1/os-volumes", cloud=USER, version="2.35",
                          json={"volume": {"size": 1, "snapshot_id": snap["id"]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["volume"]["snapshotId"] == snap["id"]
    made = resp.json()["volume"]["id"]
    assert call(vcloud, "DELETE", f"/volumes/{made}").status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}?cascade=true").status_code == 202
