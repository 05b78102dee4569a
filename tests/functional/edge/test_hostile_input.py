"""Hostile input at the edge of every API: the status and envelope the API's own
clients expect, a message that says what to change, nothing internal, and no
state changed by a refused request."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from cloudclients import CloudProcess
from edgehelpers import assert_clean, raw, state_digest, state_snapshot

from transcell.api.compute.microversion import MAX_VERSION

#: One minor version past the newest the cloud serves.
ABOVE_MAX = f"2.{int(MAX_VERSION.split('.')[1]) + 1}"

COMPUTE = "/compute/v2.1"


def bad_request_message(api: str, body: dict) -> str:
    """The 400's message, read the way each API's clients read it."""
    if api == "compute":
        assert body["badRequest"]["code"] == 400, body
        return body["badRequest"]["message"]
    if api == "image":
        assert body["code"].startswith("400"), body
        return body["message"]
    if api == "network":
        assert body["NeutronError"]["type"] in ("HTTPBadRequest", "InvalidInput"), body
        return body["NeutronError"]["message"]
    if api == "identity":
        assert body["error"]["code"] == 400, body
        return body["error"]["message"]
    assert api == "placement"
    assert body["errors"][0]["status"] == 400, body
    return body["errors"][0]["detail"]


def expect_400(resp, api: str, fragment: str = "") -> str:
    assert_clean(resp)
    assert resp.status_code == 400, (resp.status_code, resp.text[:400])
    message = bad_request_message(api, resp.json())
    assert fragment.lower() in message.lower(), message
    return message


# -- bad bytes in paths, queries and bodies, before and after login -----------------

PATHS = [
    ("compute", f"{COMPUTE}/%ff"), ("compute", f"{COMPUTE}/servers?name=%ff"),
    ("compute", f"{COMPUTE}/servers/%c3%28"), ("compute", f"{COMPUTE}/servers?%ff=1"),
    ("image", "/image/v2/images/%ff"), ("image", "/image/v2/images?name=%ff"),
    ("network", "/network/v2.0/networks/%ff"), ("network", "/network/v2.0/ports?name=%fe"),
    ("identity", "/identity/v3/%ff"), ("identity", "/identity/v3/users?name=%ff"),
    ("placement", "/placement/%ff"), ("placement", "/placement/resource_providers?name=%ff"),
]


@pytest.mark.parametrize("api,path", PATHS, ids=[p for _, p in PATHS])
@pytest.mark.parametrize("login", [True, False], ids=["token", "no-token"])
def test_bad_utf8_in_path_or_query_is_400(edge_cloud: CloudProcess, api, path, login):
    resp = raw(edge_cloud, "GET", path, "transcell-admin" if login else None)
    expect_400(resp, api, "UTF-8")


POST_ROUTES = [
    ("compute", f"{COMPUTE}/servers"), ("compute", f"{COMPUTE}/os-keypairs"),
    ("image", "/image/v2/images"), ("network", "/network/v2.0/networks"),
    ("identity", "/identity/v3/auth/tokens"), ("placement", "/placement/resource_providers"),
]


@pytest.mark.parametrize("api,path", POST_ROUTES, ids=[p for _, p in POST_ROUTES])
@pytest.mark.parametrize("payload,fragment", [
    (b"[" * 1000, "nested"), (b'{"a": ' * 100 + b"1" + b"}" * 100, "nested"),
    (b"[" * 100000, "nested"), (b'{"server": {"name": "\xff\xfe"}}', "UTF-8"),
    (b'{"x": "\\ud800"}', "surrogate"),
], ids=["brackets-1000", "objects-100", "brackets-100000", "latin1", "lone-surrogate"])
def test_hostile_bodies_are_400(edge_cloud: CloudProcess, api, path, payload, fragment):
    before = state_digest(edge_cloud)
    resp = raw(edge_cloud, "POST", path, data=payload)
    expect_400(resp, api, fragment)
    assert state_digest(edge_cloud) == before


def test_nesting_within_the_limit_still_parses(edge_cloud: CloudProcess):
    """Depth 60 is fine JSON: the answer is about the schema, not the parser."""
    body = {"server": {"name": "deep", "flavorRef": "1", "metadata": {}}}
    inner: object = "x"
    for _ in range(58):
        inner = [inner]
    body["server"]["user_data"] = inner
    resp = edge_cloud.request("POST", f"{COMPUTE}/servers", json=body)
    message = expect_400(resp, "compute")
    assert "nested" not in message


# -- names and free text -----------------------------------------------------------

def _image_id(cloud: CloudProcess) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]


BAD_TEXT = ["\ud800", "nul\x00byte", "bell\x07", "esc\x1b[31m", "line\nbreak", "del\x7f",
            "c1\x85", "sep\u2028"]


def _dump(body) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, which is what a client sends
    return json.dumps(body).encode()


def _server_body(cloud, **fields):
    server = {"name": "ok", "flavorRef": "1", "imageRef": _image_id(cloud)}
    server.update(fields)
    return {"server": server}


@pytest.mark.parametrize("text", BAD_TEXT, ids=[repr(t) for t in BAD_TEXT])
def test_bad_characters_in_compute_text_are_400(edge_cloud: CloudProcess, text):
    cloud = edge_cloud
    cases = [
        ("POST", f"{COMPUTE}/servers", _server_body(cloud, name=text), None),
        ("POST", f"{COMPUTE}/servers", _server_body(cloud, description=text), "2.19"),
        ("POST", f"{COMPUTE}/servers", _server_body(cloud, metadata={text: "v"}), None),
        ("POST", f"{COMPUTE}/servers", _server_body(cloud, metadata={"k": text}), None),
        ("POST", f"{COMPUTE}/servers", _server_body(cloud, tags=[text], networks="auto"),
         "2.52"),
        ("POST", f"{COMPUTE}/os-keypairs", {"keypair": {"name": text}}, None),
        ("POST", f"{COMPUTE}/flavors", {"flavor": {"name": text, "ram": 64, "vcpus": 1,
                                                   "disk": 1}}, None),
        ("POST", f"{COMPUTE}/flavors", {"flavor": {"name": "f-edge", "ram": 64, "vcpus": 1,
                                                   "disk": 1, "description": text}}, "2.55"),
        ("POST", f"{COMPUTE}/os-aggregates", {"aggregate": {"name": text}}, None),
    ]
    before = state_digest(cloud)
    for method, path, body, version in cases:
        headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
        resp = raw(cloud, method, path, data=_dump(body), headers=headers)
        expect_400(resp, "compute")
    assert state_digest(cloud) == before


@pytest.mark.parametrize("text", BAD_TEXT, ids=[repr(t) for t in BAD_TEXT])
def test_bad_characters_in_image_and_network_text_are_400(edge_cloud: CloudProcess, text):
    cloud = edge_cloud
    net_id = cloud.request("GET", "/network/v2.0/networks?name=private").json()[
        "networks"][0]["id"]
    cases = [
        ("image", "/image/v2/images", {"name": text}),
        ("image", "/image/v2/images", {"name": "ok", text: "v"}),
        ("network", "/network/v2.0/networks", {"network": {"name": text}}),
        ("network", "/network/v2.0/networks", {"network": {"name": "ok",
                                                           "description": text}}),
        ("network", "/network/v2.0/ports", {"port": {"network_id": net_id, "name": text}}),
    ]
    if text not in ("line\nbreak", "sep\u2028"):  # values may break lines, as descriptions do
        cases.append(("image", "/image/v2/images", {"name": "ok", "description": text}))
    before = state_digest(cloud)
    for api, path, body in cases:
        expect_400(raw(cloud, "POST", path, data=_dump(body)), api)
    assert state_digest(cloud) == before


def test_surrogate_server_name_leaks_nothing(edge_cloud: CloudProcess):
    before = state_digest(edge_cloud)
    resp = raw(edge_cloud, "POST", f"{COMPUTE}/servers",
               data=b'{"server": {"name": "\\ud800", "flavorRef": "1"}}')
    message = expect_400(resp, "compute", "surrogate")
    assert "Remote error" not in message
    assert state_digest(edge_cloud) == before


def test_image_property_limits(edge_cloud: CloudProcess):
    cloud = edge_cloud
    before = state_digest(cloud)
    expect_400(cloud.request("POST", "/image/v2/images",
                             json={"name": "big", "description": "x" * 256}), "image", "255")
    expect_400(cloud.request("POST", "/image/v2/images", json={"name": "n" * 256}), "image")
    many = {f"p{i}": "v" for i in range(129)}
    expect_400(cloud.request("POST", "/image/v2/images", json={"name": "many", **many}),
               "image", "128")
    assert state_digest(cloud) == before

    made = cloud.request("POST", "/image/v2/images",
                         json={"name": "edge-props", "description": "x" * 255})
    assert made.status_code == 201, made.text
    image_id = made.json()["id"]
    try:
        patch_type = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        before = state_digest(cloud)
        resp = cloud.request("PATCH", f"/image/v2/images/{image_id}", headers=patch_type,
                             data=json.dumps([{"op": "replace", "path": "/description",
                                               "value": "y" * 5000}]))
        expect_400(resp, "image", "255")
        ops = [{"op": "add", "path": f"/q{i}", "value": "v"} for i in range(128)]
        resp = cloud.request("PATCH", f"/image/v2/images/{image_id}", headers=patch_type,
                             data=json.dumps(ops))
        expect_400(resp, "image", "128")
        assert state_digest(cloud) == before
        shown = cloud.request("GET", f"/image/v2/images/{image_id}").json()
        assert shown["description"] == "x" * 255
    finally:
        cloud.request("DELETE", f"/image/v2/images/{image_id}")


# -- microversions -----------------------------------------------------------------

@pytest.mark.parametrize("header,value,status", [
    ("OpenStack-API-Version", "compute 2." + "9" * 5000, 406),
    ("X-OpenStack-Nova-API-Version", "2." + "9" * 5000, 406),
    ("OpenStack-API-Version", "compute " + "1" * 5000 + ".1", 406),
    ("OpenStack-API-Version", "compute 2.x", 400),
    ("X-OpenStack-Nova-API-Version", "2.1.1", 400),
    ("OpenStack-API-Version", f"compute {ABOVE_MAX}", 406),
], ids=["5000-digit-minor", "legacy-5000-digit", "5000-digit-major", "letters", "three-parts",
        "above-max"])
def test_microversion_out_of_range_or_malformed(edge_cloud: CloudProcess, header, value,
                                                status):
    resp = raw(edge_cloud, "GET", f"{COMPUTE}/servers", headers={header: value})
    assert_clean(resp)
    assert resp.status_code == status, resp.text[:300]
    fault = next(iter(resp.json().values()))
    assert fault["code"] == status
    assert len(fault["message"]) < 300


# -- list parameters -----------------------------------------------------------------

@pytest.mark.parametrize("collection", ["servers", "servers/detail"])
@pytest.mark.parametrize("query,version", [
    ("sort_dir=sideways", None), ("sort_key=no_such_key", None),
    ("sort_key=display_name&sort_dir=up", None), ("changes-since=yesterday", None),
    ("changes-before=soon", "2.66"), ("created_at=notadate", "2.83"),
    ("created_at=notadate", None), ("launched_at=2020-13-45", "2.83"),
    ("changes-since=0001-01-01T00:00:00%2B01:00", None), ("limit=many", None),
    ("limit=-3", None),
])
def test_bad_server_list_parameters_are_400(edge_cloud: CloudProcess, collection, query,
                                            version):
    headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
    for cloud_name in ("transcell-admin", "transcell-demo"):
        resp = raw(edge_cloud, "GET", f"{COMPUTE}/{collection}?{query}", cloud_name,
                   headers=headers)
        expect_400(resp, "compute")


@pytest.mark.parametrize("query", ["sort_dir=sideways", "sort_key=no_such_key", "limit=x",
                                   "limit=-1", "marker=zzz", "sort=name:up",
                                   "sort_key=name&sort_dir=up"])
def test_bad_image_list_parameters_are_400(edge_cloud: CloudProcess, query):
    expect_400(raw(edge_cloud, "GET", f"/image/v2/images?{query}"), "image")


@pytest.mark.parametrize("collection", ["networks", "ports", "subnets"])
@pytest.mark.parametrize("query", ["sort_dir=sideways", "sort_key=no_such_key",
                                   "sort_key=name&sort_dir=up",
                                   "sort_key=name&sort_dir=asc&sort_dir=desc", "limit=x",
                                   "limit=-1"])
def test_bad_network_list_parameters_are_400(edge_cloud: CloudProcess, collection, query):
    # ports and subnets may be empty for the demo project: checked all the same
    for cloud_name in ("transcell-admin", "transcell-alt"):
        resp = raw(edge_cloud, "GET", f"/network/v2.0/{collection}?{query}", cloud_name)
        expect_400(resp, "network")


def test_good_list_parameters_still_work(edge_cloud: CloudProcess):
    for path in (f"{COMPUTE}/servers?sort_key=display_name&sort_dir=asc",
                 f"{COMPUTE}/servers/detail?changes-since=2020-01-01T00:00:00Z",
                 "/image/v2/images?sort_key=name&sort_dir=asc&limit=5",
                 "/network/v2.0/networks?sort_key=name&sort_dir=desc",
                 "/network/v2.0/ports?sort_key=name&sort_dir=asc"):
        resp = edge_cloud.request("GET", path)
        assert resp.status_code == 200, (path, resp.text[:300])


# -- the Host header never makes a link ---------------------------------------------------

def test_host_header_is_never_reflected(edge_cloud: CloudProcess):
    cloud = edge_cloud
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    auth = cloud.credentials("transcell-admin")
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"],
        "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    responses = [raw(cloud, "POST", "/identity/v3/auth/tokens", None, data=json.dumps(body)
                     .encode(), headers=evil)]
    token = responses[0].headers["X-Subject-Token"]
    for path in ("/identity/v3", "/identity/v3/auth/catalog", "/identity/v3/auth/tokens",
                 "/identity/v3/users", "/compute/", f"{COMPUTE}/", f"{COMPUTE}/flavors",
                 f"{COMPUTE}/servers/detail?limit=1", "/image/v2/images", "/network/",
                 "/network/v2.0/", "/placement/", "/identity/v3/projects"):
        responses.append(raw(cloud, "GET", path, None,
                             headers={**evil, "X-Auth-Token": token, "X-Subject-Token": token}))
    responses.append(raw(cloud, "GET", f"{COMPUTE}/servers", None, headers=evil))  # 401
    made = raw(cloud, "POST", "/image/v2/images", None, data=b'{"name": "edge-host"}',
               headers={**evil, "X-Auth-Token": token})
    responses.append(made)
    try:
        for resp in responses:
            assert resp.status_code < 500, resp.text[:300]
            assert "evil.example" not in resp.text, (resp.url, resp.text[:500])
            assert "evil.example" not in str(resp.headers), (resp.url, resp.headers)
        catalog = responses[0].json()["token"]["catalog"]
        urls = [e["url"] for s in catalog for e in s["endpoints"]]
        assert urls and all(u.startswith(cloud.base_url) for u in urls), urls
    finally:
        if made.status_code == 201:
            cloud.request("DELETE", f"/image/v2/images/{made.json()['id']}")


# -- ports of other projects and ports in use -------------------------------------------

def _wait_active(cloud: CloudProcess, server_id: str, cloud_name: str) -> None:
    cloud.wait_status(server_id, "ACTIVE", cloud=cloud_name, timeout=120)


def test_boot_with_another_projects_port_or_a_used_port(edge_cloud: CloudProcess):
    cloud = edge_cloud
    net_id = cloud.request("GET", "/network/v2.0/networks?name=private").json()[
        "networks"][0]["id"]
    alt_port = cloud.request("POST", "/network/v2.0/ports", cloud="transcell-alt",
                             json={"port": {"network_id": net_id, "name": "alt-port"}})
    assert alt_port.status_code == 201, alt_port.text
    alt_port_id = alt_port.json()["port"]["id"]
    owned = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo",
                          json=_server_body(cloud, name="edge-port-owner"))
    assert owned.status_code == 202, owned.text
    owner_id = owned.json()["server"]["id"]
    try:
        _wait_active(cloud, owner_id, "transcell-demo")
        used = cloud.request("GET", f"/network/v2.0/ports?device_id={owner_id}",
                             cloud="transcell-demo").json()["ports"]
        assert used, "the server has no port"
        before = state_digest(cloud)

        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo",
                             json=_server_body(cloud, name="steal",
                                               networks=[{"port": alt_port_id}]))
        expect_400(resp, "compute", alt_port_id)
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo",
                             json=_server_body(cloud, name="steal",
                                               networks=[{"port": str(uuid.uuid4())}]))
        expect_400(resp, "compute", "could not be found")
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo",
                             json=_server_body(cloud, name="share",
                                               networks=[{"port": used[0]["id"]}]))
        assert_clean(resp)
        assert resp.status_code == 409, resp.text
        assert resp.json()["conflictingRequest"]["code"] == 409
        assert "in use" in resp.json()["conflictingRequest"]["message"]
        assert state_digest(cloud) == before
    finally:
        cloud.request("DELETE", f"{COMPUTE}/servers/{owner_id}")
        cloud.wait_gone(owner_id)
        cloud.request("DELETE", f"/network/v2.0/ports/{alt_port_id}")


def test_no_state_change_is_checked_by_a_digest_that_sees_changes(edge_cloud: CloudProcess):
    """The digest the other tests compare must move when something is created."""
    before = state_snapshot(edge_cloud)
    made = edge_cloud.request("POST", "/image/v2/images", json={"name": "edge-digest"})
    assert made.status_code == 201
    try:
        assert state_snapshot(edge_cloud) != before
    finally:
        edge_cloud.request("DELETE", f"/image/v2/images/{made.json()['id']}")
    deadline = time.monotonic() + 10
    while state_snapshot(edge_cloud) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state_snapshot(edge_cloud) == before
