"""Server tags (2.26+), stored in the server's cell."""

from __future__ import annotations

from compute_api_fixtures import ALT, DEMO, DEMO_READER

V = "2.26"


def test_tags_need_226(cloud):
    server = cloud.add_instance(cloud.cell1)
    resp = cloud.get(f"/servers/{server}/tags", token=DEMO, version="2.25")
    assert resp.status_int == 404
    assert resp.json == {"itemNotFound": {"code": 404,
                                          "message": "The resource could not be found."}}
    assert cloud.put(f"/servers/{server}/tags/a", token=DEMO).status_int == 404


def test_tag_lifecycle(cloud):
    server = cloud.add_instance(cloud.cell2)
    base = f"/servers/{server}/tags"
    assert cloud.get(base, token=DEMO, version=V).json == {"tags": []}

    replaced = cloud.put(base, {"tags": ["b", "a", "a"]}, token=DEMO, version=V)
    assert (replaced.status_int, replaced.json) == (200, {"tags": ["a", "b"]})

    added = cloud.put(f"{base}/c", token=DEMO, version=V)
    assert added.status_int == 201
    assert added.headers["Location"] == f"http://localhost/v2.1/servers/{server}/tags/c"
    assert cloud.put(f"{base}/c", token=DEMO, version=V).status_int == 204
    assert cloud.get(f"{base}/c", token=DEMO, version=V).status_int == 204
    absent = cloud.get(f"{base}/z", token=DEMO, version=V)
    assert absent.status_int == 404
    assert absent.json["itemNotFound"]["message"] == f"Server {server} has no tag 'z'"
    assert cloud.get(base, token=DEMO, version=V).json == {"tags": ["a", "b", "c"]}

    assert cloud.delete(f"{base}/a", token=DEMO, version=V).status_int == 204
    assert cloud.delete(f"{base}/a", token=DEMO, version=V).status_int == 404
    assert cloud.delete(base, token=DEMO, version=V).status_int == 204
    assert cloud.get(base, token=DEMO, version=V).json == {"tags": []}


def test_invalid_tags_and_limits(cloud):
    server = cloud.add_instance(cloud.cell1)
    base = f"/servers/{server}/tags"
    bad = cloud.put(f"{base}/a,b", token=DEMO, version=V)
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"].startswith(
        "Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','.")
    assert cloud.put(base, {"tags": ["x" * 61]}, token=DEMO, version=V).status_int == 400
    assert cloud.put(base, {"tags": [str(i) for i in range(51)]}, token=DEMO,
                     version=V).status_int == 400
    assert cloud.put(base, {"tags": [str(i) for i in range(50)]}, token=DEMO,
                     version=V).status_int == 200
    full = cloud.put(f"{base}/extra", token=DEMO, version=V)
    assert full.status_int == 400
    assert full.json["badRequest"]["message"] == "The number of tags exceeded the " \
        "per-server limit 50"


def test_state_ownership_and_roles(cloud):
    building = cloud.add_instance(cloud.cell1, vm_state="building")
    busy = cloud.put(f"/servers/{building}/tags/a", token=DEMO, version=V)
    assert busy.status_int == 409
    assert busy.json["conflictingRequest"]["message"] == \
        f"Cannot 'update tag' instance {building} while it is in vm_state building"
    assert cloud.get(f"/servers/{building}/tags", token=DEMO, version=V).status_int == 200

    server = cloud.add_instance(cloud.cell1)
    assert cloud.get(f"/servers/{server}/tags", token=ALT, version=V).status_int == 404
    assert cloud.get(f"/servers/{server}/tags", token=DEMO_READER, version=V).status_int == 200
    denied = cloud.put(f"/servers/{server}/tags/a", token=DEMO_READER, version=V)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-server-tags:update to be performed."
