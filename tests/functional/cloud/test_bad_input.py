"""Bad input gets the right status, Nova's envelope, a message saying what to fix,
and changes nothing."""

from __future__ import annotations

import pytest

COMPUTE = "/compute/v2.1"


def _count_servers(cloud) -> int:
    resp = cloud.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1")
    return len(resp.json()["servers"])


def _image_id(cloud) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]


def _post(cloud, body, raw: bytes | None = None, version: str | None = None):
    if raw is not None:
        return cloud.request("POST", f"{COMPUTE}/servers", data=raw, version=version,
                             headers={"Content-Type": "application/json"})
    return cloud.request("POST", f"{COMPUTE}/servers", json=body, version=version)


CASES = [
    ("malformed json", None, b'{"server": {', 400, "Malformed request body"),
    ("no server key", {"srv": {}}, None, 400, "server"),
    ("unknown field", {"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG",
                                  "bogus": 1}}, None, 400, "bogus"),
    ("missing flavorRef", {"server": {"name": "x", "imageRef": "IMG"}}, None, 400,
     "flavorRef"),
    ("unknown flavorRef", {"server": {"name": "x", "flavorRef": "no-such-flavor",
                                      "imageRef": "IMG"}}, None, 400, "flavorRef"),
    ("empty flavorRef", {"server": {"name": "x", "flavorRef": "", "imageRef": "IMG"}}, None,
     400, "flavorRef"),
    ("missing imageRef", {"server": {"name": "x", "flavorRef": "1"}}, None, 400, "imageRef"),
    ("unknown imageRef", {"server": {"name": "x", "flavorRef": "1",
                                     "imageRef": "9d4f0d44-8b7b-4d44-9d7b-4e4f6a2b9c10"}},
     None, 400, "image"),
    ("garbage imageRef", {"server": {"name": "x", "flavorRef": "1", "imageRef": "nope"}},
     None, 400, "imageRef"),
    ("blank name", {"server": {"name": " ", "flavorRef": "1", "imageRef": "IMG"}}, None, 400,
     "name"),
    ("unknown network", {"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG",
                                    "networks": [{"uuid": "7e2d1a7c-1111-4b1b-9c1c-0a0b0c0d0e0f"}
                                                 ]}}, None, 400, "Network"),
    ("unknown key", {"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG",
                                "key_name": "no-such-key"}}, None, 400, "key_name"),
]


@pytest.mark.parametrize("label,body,raw,status,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_server_create(cloud, label, body, raw, status, fragment):
    before = _count_servers(cloud)
    if body is not None and "server" in body and body["server"].get("imageRef") == "IMG":
        body["server"]["imageRef"] = _image_id(cloud)
    resp = _post(cloud, body, raw)
    assert resp.status_code == status, resp.text
    fault = resp.json()["badRequest"]
    assert fault["code"] == status
    assert fragment.lower() in fault["message"].lower()
    assert _count_servers(cloud) == before


def test_networks_required_from_2_37(cloud):
    body = {"server": {"name": "x", "flavorRef": "1", "imageRef": _image_id(cloud)}}
    resp = _post(cloud, body, version="2.37")
    assert resp.status_code == 400
    assert "networks" in resp.json()["badRequest"]["message"]


def test_missing_token_is_401(cloud):
    resp = cloud.request("GET", f"{COMPUTE}/servers", token=None)
    assert resp.status_code == 401
    assert resp.json()["unauthorized"]["code"] == 401


def test_garbage_token_is_401(cloud):
    resp = cloud.request("GET", f"{COMPUTE}/servers", token="not-a-token")
    assert resp.status_code == 401


def test_non_admin_cannot_create_flavors(cloud):
    before = cloud.request("GET", f"{COMPUTE}/flavors?is_public=None").json()["flavors"]
    resp = cloud.request("POST", f"{COMPUTE}/flavors", cloud="transcell-demo",
                         json={"flavor": {"name": "sneaky", "ram": 1, "vcpus": 1, "disk": 1}})
    assert resp.status_code == 403
    assert "forbidden" in resp.json()
    after = cloud.request("GET", f"{COMPUTE}/flavors?is_public=None").json()["flavors"]
    assert before == after


def test_unknown_action_is_400(cloud):
    resp = cloud.request("POST", f"{COMPUTE}/servers/{'0' * 8}-0000-0000-0000-{'0' * 12}/action",
                         json={"fly": None})
    assert resp.status_code in (400, 404)


def test_wrong_method_is_405(cloud):
    resp = cloud.request("PATCH", f"{COMPUTE}/servers")
    assert resp.status_code == 405
    assert "badMethod" in resp.json()
