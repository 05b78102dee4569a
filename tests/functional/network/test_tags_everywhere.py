"""Tags (standard-attr-tag) on every resource the subset serves, and the tag filters.

Networks, subnets, ports, routers, subnet pools, security groups and segments:
the same six calls on each, the same four list filters, the same refusals.
"""

from __future__ import annotations

import pytest

READER = "rita:proj-a:reader"


@pytest.fixture
def owned(alice, admin) -> dict[str, str]:
    """One of each taggable resource, alice's (the segment, an administrator's)."""
    net = alice("POST", "/v2.0/networks", {"network": {"name": "tnet"}}).json["network"]
    sub = alice("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.40.0.0/24", "ip_version": 4}}).json["subnet"]
    port = alice("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}).json["port"]
    router = alice("POST", "/v2.0/routers", {"router": {"name": "tr"}}).json["router"]
    pool = alice("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": "tpool", "prefixes": ["1.0.0.0/16", "2.0.0.0/16"]}}).json["subnetpool"]
    group = alice("POST", "/v2.0/security-groups", {"security_group": {
        "name": "tsg"}}).json["security_group"]
    seg_net = admin("POST", "/v2.0/networks", {"network": {"name": "segnet"}}).json["network"]
    segment = admin("POST", "/v2.0/segments", {"segment": {
        "network_id": seg_net["id"], "network_type": "vxlan"}}).json["segment"]
    return {"networks": net["id"], "subnets": sub["id"], "ports": port["id"],
            "routers": router["id"], "subnetpools": pool["id"],
            "security-groups": group["id"], "segments": segment["id"]}


COLLECTIONS = ["networks", "subnets", "ports", "routers", "subnetpools", "security-groups",
               "segments"]
#: the list each collection answers with
LIST_KEY = {"security-groups": "security_groups"}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_tag_calls_on_each_resource(collection, owned, alice, admin):
    client = admin if collection == "segments" else alice
    base = f"/v2.0/{collection}/{owned[collection]}/tags"
    assert client("PUT", f"{base}/red").status_int == 201
    assert client("GET", f"{base}/red").status_int == 204
    assert client("GET", base).json == {"tags": ["red"]}
    assert client("PUT", base, {"tags": ["a", "b", "c"]}).json == {"tags": ["a", "b", "c"]}
    missing = client("GET", f"{base}/red")
    assert missing.status_int == 404 and missing.json["NeutronError"]["type"] == "TagNotFound"
    assert client("DELETE", f"{base}/a").status_int == 204
    assert sorted(client("GET", base).json["tags"]) == ["b", "c"]
    assert client("DELETE", f"{base}/a").status_int == 404
    shown = client("GET", f"/v2.0/{collection}/{owned[collection]}").json
    assert sorted(next(iter(shown.values()))["tags"]) == ["b", "c"]
    assert client("DELETE", base).status_int == 204
    assert client("GET", base).json == {"tags": []}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_tag_filters_on_each_resource(collection, owned, alice, admin):
    client = admin if collection == "segments" else alice
    target = owned[collection]
    client("PUT", f"/v2.0/{collection}/{target}/tags", {"tags": ["x", "y"]})
    key = LIST_KEY.get(collection, collection.replace("-", "_"))

    def ids(query: str) -> set[str]:
        resp = client("GET", f"/v2.0/{collection}?{query}")
        assert resp.status_int == 200, resp.text
        return {item["id"] for item in resp.json[key]}

    assert target in ids("tags=x,y")
    assert target not in ids("tags=x,z")
    assert target in ids("tags-any=z,y")
    assert target not in ids("tags-any=z")
    assert target in ids("not-tags=x,z")
    assert target not in ids("not-tags=x,y")
    assert target in ids("not-tags-any=z")
    assert target not in ids("not-tags-any=z,x")


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_bad_tags_are_400_and_change_nothing(collection, owned, alice, admin):
    client = admin if collection == "segments" else alice
    base = f"/v2.0/{collection}/{owned[collection]}/tags"
    client("PUT", base, {"tags": ["keep"]})
    for body in ({"tags": "keep"}, {"tags": ["a,b"]}, {"tags": ["x" * 256]},
                 {"tag": ["a"]}, ["a"]):
        assert client("PUT", base, body).status_int == 400, body
    assert client("PUT", f"{base}/{'x' * 256}").status_int == 400
    assert client("GET", base).json == {"tags": ["keep"]}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_other_projects_get_404_and_readers_403(collection, owned, alice, bob, app, admin):
    owner = admin if collection == "segments" else alice
    base = f"/v2.0/{collection}/{owned[collection]}/tags"
    owner("PUT", base, {"tags": ["keep"]})
    for method, path in (("GET", base), ("PUT", f"{base}/mine"), ("DELETE", base),
                         ("PUT", base)):
        resp = bob(method, path, {"tags": ["mine"]} if path == base and method == "PUT"
                   else None)
        assert resp.status_int == 404, (method, path, resp.text)
    reader = type(alice)(app, READER)
    if collection != "segments":
        assert reader("GET", base).json == {"tags": ["keep"]}
    for method, path in (("PUT", f"{base}/mine"), ("DELETE", base),
                         ("DELETE", f"{base}/keep")):
        resp = reader(method, path)
        assert resp.status_int in (403, 404), (method, path, resp.text)
        if collection != "segments":
            assert resp.status_int == 403
    assert owner("GET", base).json == {"tags": ["keep"]}


def test_tags_on_unknown_collections_are_404(alice):
    assert alice("GET", "/v2.0/floatingips/x/tags").status_int == 404
    assert alice("PUT", "/v2.0/agents/x/tags/t").status_int == 404


def test_subnetpool_crud_and_bad_input(alice, bob, admin):
    made = alice("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": "p", "prefixes": ["10.64.0.0/16", "10.65.0.0/16"]}})
    assert made.status_int == 201, made.text
    pool = made.json["subnetpool"]
    assert pool["prefixes"] == ["10.64.0.0/15"]  # collapsed, as Neutron stores them
    assert (pool["min_prefixlen"], pool["max_prefixlen"], pool["default_prefixlen"]) == (
        8, 32, 8)
    path = f"/v2.0/subnetpools/{pool['id']}"
    for body in ({"subnetpool": {"name": "q", "prefixes": []}},
                 {"subnetpool": {"name": "q", "prefixes": ["10.0.0.0/8", "fd00::/8"]}},
                 {"subnetpool": {"prefixes": ["10.0.0.0/8"]}},
                 {"subnetpool": {"name": "q", "prefixes": ["10.0.0.0/8"],
                                 "min_prefixlen": 24, "default_prefixlen": 16}},
                 {"subnetpool": {"name": "q", "prefixes": ["10.0.0.1/8"]}}):
        assert alice("POST", "/v2.0/subnetpools", body).status_int == 400, body
    shared = alice("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": "s", "prefixes": ["10.0.0.0/8"], "shared": True}})
    assert shared.status_int == 403
    assert [p["id"] for p in alice("GET", "/v2.0/subnetpools").json["subnetpools"]] == [
        pool["id"]]
    # prefixes may grow, never shrink
    grown = alice("PUT", path, {"subnetpool": {"prefixes": ["10.64.0.0/14"]}})
    assert grown.json["subnetpool"]["prefixes"] == ["10.64.0.0/14"]
    assert alice("PUT", path, {"subnetpool": {"prefixes": ["10.64.0.0/16"]}}
                 ).status_int == 400
    assert alice("GET", path).json["subnetpool"]["prefixes"] == ["10.64.0.0/14"]
    assert bob("GET", path).status_int == 404
    assert bob("DELETE", path).status_int == 404
    assert admin("GET", path).status_int == 200
    assert alice("DELETE", path).status_int == 204
    assert alice("GET", path).status_int == 404
