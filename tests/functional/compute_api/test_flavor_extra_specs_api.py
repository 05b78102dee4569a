"""Flavor extra specs: read by anyone who sees the flavor, written by admins."""

from __future__ import annotations

from compute_api_fixtures import DEMO

PATH = "/flavors/1/os-extra_specs"


def test_extra_specs_round_trip(cloud):
    cloud.add_flavor("1", "m1.tiny")
    assert cloud.get(PATH, token=DEMO).json == {"extra_specs": {}}

    created = cloud.post(PATH, {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 5}})
    assert created.status_int == 200
    assert created.json == {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 5}}
    assert cloud.get(PATH, token=DEMO).json == {
        "extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": "5"}}
    assert cloud.get(f"{PATH}/hw:cpu_policy", token=DEMO).json == {"hw:cpu_policy": "dedicated"}

    updated = cloud.put(f"{PATH}/hw:cpu_policy", {"hw:cpu_policy": "shared"})
    assert (updated.status_int, updated.json) == (200, {"hw:cpu_policy": "shared"})
    assert cloud.get(f"{PATH}/hw:cpu_policy").json == {"hw:cpu_policy": "shared"}

    deleted = cloud.delete(f"{PATH}/hw:cpu_policy")
    assert (deleted.status_int, deleted.body) == (200, b"")
    missing = cloud.get(f"{PATH}/hw:cpu_policy")
    assert missing.status_int == 404
    assert missing.json["itemNotFound"]["message"] == \
        "Flavor 1 has no extra specs with key hw:cpu_policy."
    assert cloud.delete(f"{PATH}/hw:cpu_policy").status_int == 404


def test_bad_bodies_are_400(cloud):
    cloud.add_flavor("1", "m1.tiny")
    mismatch = cloud.put(f"{PATH}/a", {"b": "1"})
    assert mismatch.status_int == 400
    assert mismatch.json["badRequest"]["message"] == "Request body and URI mismatch"
    assert cloud.put(f"{PATH}/a", {"a": "1", "b": "2"}).status_int == 400
    assert cloud.post(PATH, {"extra_specs": {"bad/key": "x"}}).status_int == 400
    assert cloud.post(PATH, {"extra_specs": {"k": "x" * 256}}).status_int == 400
    assert cloud.post(PATH, {"specs": {}}).status_int == 400
    assert cloud.get(PATH).json == {"extra_specs": {}}


def test_members_cannot_write_and_unknown_flavors_are_404(cloud):
    cloud.add_flavor("1", "m1.tiny", specs={"a": "1"})
    denied = cloud.post(PATH, {"extra_specs": {"b": "2"}}, token=DEMO)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-flavor-extra-specs:create to be performed."
    assert cloud.delete(f"{PATH}/a", token=DEMO).status_int == 403
    assert cloud.get(PATH).json == {"extra_specs": {"a": "1"}}
    unknown = cloud.get("/flavors/9/os-extra_specs")
    assert unknown.status_int == 404
    assert unknown.json["itemNotFound"]["message"] == "Flavor 9 could not be found."
