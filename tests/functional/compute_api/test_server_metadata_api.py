"""Server metadata (/servers/{id}/metadata[/{key}]), kept in the server's cell."""

from __future__ import annotations

import pytest
from compute_api_fixtures import ALT, DEMO, DEMO_READER, fake_authenticate

from transcell.api.compute import routes
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.conf import CONF


@pytest.fixture
def mcloud(cloud):
    """The fixture's cloud behind the real route table."""
    cloud.app = ComputeApp(routes.ROUTES, fake_authenticate, nova_fault)
    return cloud


def _items(cloud, server, token=DEMO):
    resp = cloud.get(f"/servers/{server}/metadata", token=token)
    assert resp.status_int == 200
    return resp.json["metadata"]


def test_metadata_lifecycle_in_either_cell(mcloud):
    for cell in (mcloud.cell1, mcloud.cell2):
        server = mcloud.add_instance(cell)
        base = f"/servers/{server}/metadata"
        assert _items(mcloud, server) == {}
        merged = mcloud.post(base, {"metadata": {"a": "1", "b": "2"}}, token=DEMO)
        assert (merged.status_int, merged.json) == (200, {"metadata": {"a": "1", "b": "2"}})
        merged = mcloud.post(base, {"metadata": {"b": "3", "c": ""}}, token=DEMO)
        assert merged.json == {"metadata": {"a": "1", "b": "3", "c": ""}}
        assert _items(mcloud, server, token=DEMO_READER) == {"a": "1", "b": "3", "c": ""}
        shown = mcloud.get(f"{base}/b", token=DEMO_READER)
        assert (shown.status_int, shown.json) == (200, {"meta": {"b": "3"}})
        put_one = mcloud.put(f"{base}/d", {"meta": {"d": "4"}}, token=DEMO)
        assert (put_one.status_int, put_one.json) == (200, {"meta": {"d": "4"}})
        replaced = mcloud.put(base, {"metadata": {"z": "26", "a": "1"}}, token=DEMO)
        assert (replaced.status_int, replaced.json) == (200, {"metadata": {"z": "26",
                                                                            "a": "1"}})
        assert _items(mcloud, server) == {"a": "1", "z": "26"}
        assert mcloud.delete(f"{base}/z", token=DEMO).status_int == 204
        gone = mcloud.delete(f"{base}/z", token=DEMO)
        assert gone.status_int == 404
        assert gone.json["itemNotFound"]["message"] == "Metadata item was not found"
        assert mcloud.get(f"{base}/z", token=DEMO).status_int == 404
        assert _items(mcloud, server) == {"a": "1"}
        # the server view shows the same metadata
        assert mcloud.get(f"/servers/{server}", token=DEMO).json["server"]["metadata"] == \
            {"a": "1"}


@pytest.mark.parametrize("method,suffix,body", [
    ("POST", "", {"metadata": {"": "blank key"}}),
    ("POST", "", {"metadata": {"k" * 256: "v"}}),
    ("POST", "", {"metadata": {"k": "v" * 256}}),
    ("POST", "", {"metadata": {"k": 1}}),
    ("POST", "", {"metadata": {"k": None}}),
    ("POST", "", {"metadata": ["k"]}),
    ("POST", "", {"meta": {"k": "v"}}),
    ("PUT", "", {"metadata": {"": "x"}}),
    ("PUT", "", {}),
    ("PUT", "/k", {"meta": {"k": "v", "l": "w"}}),
    ("PUT", "/k", {"meta": {"other": "v"}}),
    ("PUT", "/k", {"meta": {}}),
    ("PUT", "/k", {"metadata": {"k": "v"}}),
    ("PUT", "/k", {"meta": {"k": "v" * 256}}),
])
def test_bad_bodies_are_400_and_change_nothing(mcloud, method, suffix, body):
    server = mcloud.add_instance(mcloud.cell1)
    base = f"/servers/{server}/metadata"
    assert mcloud.post(base, {"metadata": {"keep": "me"}}, token=DEMO).status_int == 200
    resp = mcloud.call(method, base + suffix, token=DEMO, body=body)
    assert resp.status_int == 400, resp.json
    assert resp.json["badRequest"]["code"] == 400
    assert _items(mcloud, server) == {"keep": "me"}


def test_mismatch_and_too_many_items_messages(mcloud):
    server = mcloud.add_instance(mcloud.cell1)
    base = f"/servers/{server}/metadata"
    mismatch = mcloud.put(f"{base}/k", {"meta": {"other": "v"}}, token=DEMO)
    assert mismatch.json["badRequest"]["message"] == "Request body and URI mismatch"
    many = mcloud.put(f"{base}/k", {"meta": {"k": "v", "l": "w"}}, token=DEMO)
    assert many.json["badRequest"]["message"] == "Request body contains too many items"


def test_quota_of_metadata_items_is_403(mcloud):
    CONF.set_override("metadata_items", 3, group="quota")
    try:
        server = mcloud.add_instance(mcloud.cell2)
        base = f"/servers/{server}/metadata"
        assert mcloud.post(base, {"metadata": {"a": "1", "b": "2"}}, token=DEMO
                           ).status_int == 200
        over = mcloud.post(base, {"metadata": {"c": "3", "d": "4"}}, token=DEMO)
        assert over.status_int == 403
        assert over.json["forbidden"]["message"] == \
            "Maximum number of metadata items exceeds 3"
        assert mcloud.put(base, {"metadata": {str(i): "x" for i in range(4)}},
                          token=DEMO).status_int == 403
        assert mcloud.put(f"{base}/a", {"meta": {"a": "changed"}}, token=DEMO
                          ).status_int == 200  # changing an item adds none
        assert mcloud.put(f"{base}/c", {"meta": {"c": "3"}}, token=DEMO).status_int == 200
        assert mcloud.put(f"{base}/d", {"meta": {"d": "4"}}, token=DEMO).status_int == 403
        # replacing all with as many as the limit is fine
        assert mcloud.put(base, {"metadata": {"x": "1", "y": "2", "z": "3"}},
                          token=DEMO).status_int == 200
        assert _items(mcloud, server) == {"x": "1", "y": "2", "z": "3"}
    finally:
        CONF.clear_override("metadata_items", group="quota")


@pytest.mark.parametrize("vm_state,task_state", [
    ("building", "spawning"), ("active", "resize_prep"), ("shelved_offloaded", None),
    ("error", None), ("resized", None)])
def test_state_that_forbids_a_change_is_409(mcloud, vm_state, task_state):
    server = mcloud.add_instance(mcloud.cell1, vm_state=vm_state, task_state=task_state)
    base = f"/servers/{server}/metadata"
    for method, path, body in (("POST", base, {"metadata": {"a": "1"}}),
                               ("PUT", base, {"metadata": {"a": "1"}}),
                               ("PUT", f"{base}/a", {"meta": {"a": "1"}})):
        resp = mcloud.call(method, path, token=DEMO, body=body)
        assert resp.status_int == 409, (method, path, resp.json)
        assert "conflictingRequest" in resp.json
    assert _items(mcloud, server) == {}  # reading is always allowed


def test_locked_server_refuses_its_owner_not_an_admin(mcloud):
    server = mcloud.add_instance(mcloud.cell1, locked=True)
    base = f"/servers/{server}/metadata"
    assert mcloud.post(base, {"metadata": {"a": "1"}}, token=DEMO).status_int == 409
    assert mcloud.post(base, {"metadata": {"a": "1"}}).status_int == 200  # admin


def test_policy_and_visibility(mcloud):
    server = mcloud.add_instance(mcloud.cell1)
    base = f"/servers/{server}/metadata"
    assert mcloud.post(base, {"metadata": {"a": "1"}}, token=DEMO).status_int == 200
    # a reader reads but does not write
    denied = mcloud.post(base, {"metadata": {"b": "2"}}, token=DEMO_READER)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:server-metadata:create to be performed."
    assert mcloud.put(f"{base}/a", {"meta": {"a": "2"}}, token=DEMO_READER).status_int == 403
    assert mcloud.put(base, {"metadata": {}}, token=DEMO_READER).status_int == 403
    assert mcloud.delete(f"{base}/a", token=DEMO_READER).status_int == 403
    # another project does not see the server at all
    assert mcloud.get(base, token=ALT).status_int == 404
    assert mcloud.delete(f"{base}/a", token=ALT).status_int == 404
    assert mcloud.get(f"/servers/{server}/metadata").status_int == 200  # admin
    assert _items(mcloud, server) == {"a": "1"}
    missing = mcloud.get("/servers/00000000-0000-0000-0000-000000000000/metadata",
                         token=DEMO)
    assert missing.status_int == 404
