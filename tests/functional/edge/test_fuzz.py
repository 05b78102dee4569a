"""Request bodies and query strings generated from the APIs' own schemas, and
broken on purpose, against every route of every route table.

Each request must get an answer below 500 with nothing internal in it, and a
refused request (4xx) must leave every list an administrator reads as it was.
The RNG is seeded, so a failure names a case that replays exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud
from edgehelpers import assert_clean, raw, state_snapshot

from transcell.api.compute import (
    aggregates,
    assisted_volume_snapshots,
    drains,
    flavor_access,
    flavor_extra_specs,
    flavors,
    hosts,
    images,
    keypairs,
    move_plans,
    quota_classes,
    quota_sets,
    security_groups,
    server_actions,
    server_tags,
    services,
    snapshot_proxy,
    volume_proxy,
)
from transcell.api.compute import routes as compute_routes
from transcell.api.compute import server_external_events as external_events
from transcell.api.compute.microversion import MAX
from transcell.api.compute.schemas import server_groups as group_schemas
from transcell.api.compute.schemas import server_metadata as metadata_schemas
from transcell.api.compute.schemas import servers as server_schemas
from transcell.api.compute.schemas import volume_attachments as attachment_schemas
from transcell.api.image import metadefs_schemas
from transcell.api.image import routes as image_routes
from transcell.api.image.schemas import image_schema
from transcell.api.network import routes as network_routes
from transcell.api.volume import routes as volume_routes
from transcell.network import attributes, routers, subnetpools

SEED = int(os.environ.get("TRANSCELL_FUZZ_SEED", "20240607"))
#: Requests in the default run (well under a minute) and in the ``slow`` one.
DEFAULT_COUNT = 400
SLOW_COUNT = 4000
#: How long each run may take at most, whatever its count (``make test`` runs both).
TIME_BUDGET = 60.0
SLOW_TIME_BUDGET = 150.0
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


# -- every route of every API ---------------------------------------------------------

def _identity_table() -> dict[str, dict[str, Any]]:
    from transcell.api.identity.app import make_app
    app = make_app(None, lambda base: [], authenticate=lambda req: None)  # type: ignore[arg-type]
    return {route.template: dict(route.methods) for route in app.routes}


def all_routes() -> list[tuple[str, str, str]]:
    """(api mount, path template, method) for every route the route tables declare."""
    tables = {
        "/compute": compute_routes.ROUTES,
        "/image": image_routes.ROUTES,
        "/network": network_routes.route_table(None),  # type: ignore[arg-type]
        "/volume": volume_routes.route_table(None),  # type: ignore[arg-type]
        "/identity": _identity_table(),
    }
    found = [(mount, template, method) for mount, table in tables.items()
             for template, methods in table.items() for method in methods]
    # Placement is the real package behind transcell's guard: its routes are its own
    found += [("/placement", "/resource_providers", "GET"),
              ("/placement", "/resource_providers", "POST"),
              ("/placement", "/resource_providers/{uuid}", "PUT"),
              ("/placement", "/traits/{name}", "PUT")]
    return found


# -- schemas the bodies are generated from ---------------------------------------------------

def _network_schema(member: str, spec) -> dict[str, Any]:
    props = {name: {"type": ["string", "boolean", "integer", "array", "object", "null"]}
             for name in spec}
    for name in ("name", "description"):
        if name in spec:
            props[name] = {"type": "string", "maxLength": 255}
    return {"type": "object", "required": [member],
            "properties": {member: {"type": "object", "properties": props}}}


def _image_create_schema() -> dict[str, Any]:
    props = {k: v for k, v in image_schema()["properties"].items() if not v.get("readOnly")}
    return {"type": "object", "properties": props,
            "additionalProperties": {"type": "string", "maxLength": 255}}


#: add_router_interface and remove_router_interface: a bare object, not wrapped
_INTERFACE = {"type": "object", "properties": {"subnet_id": {"type": ["string", "null"]},
                                               "port_id": {"type": ["string", "null"]}}}

_PATCH = {"type": "array", "items": {"type": "object", "required": ["op", "path", "value"],
                                     "properties": {"op": {"enum": ["add", "replace",
                                                                    "remove"]},
                                                    "path": {"enum": ["/name", "/tags",
                                                                      "/description",
                                                                      "/min_ram"]},
                                                    "value": {"type": ["string",
                                                                       "integer"]}}}}

_ACTIONS = [
    {"type": "object", "properties": {"resize": server_actions.RESIZE_SCHEMA},
     "required": ["resize"]},
    {"type": "object", "properties": {"migrate": server_actions.MIGRATE_SCHEMA_256},
     "required": ["migrate"]},
    {"type": "object", "properties": {"os-stop": {"type": "null"}}, "required": ["os-stop"]},
    {"type": "object", "properties": {"os-start": {"type": "null"}}, "required": ["os-start"]},
    {"type": "object", "properties": {"confirmResize": {"type": "null"}},
     "required": ["confirmResize"]},
]

def _metadef_schemas() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The metadefs bodies, from the schemas the image API serves and validates with."""
    ns = "/v2/metadefs/namespaces"
    item = f"{ns}/{{namespace}}"
    s = metadefs_schemas
    return {(ns, "POST"): [s.namespace()], (item, "PUT"): [s.namespace()],
            (f"{item}/objects", "POST"): [s.object_()],
            (f"{item}/objects/{{object_name}}", "PUT"): [s.object_()],
            (f"{item}/properties", "POST"): [s.property_()],
            (f"{item}/properties/{{property_name}}", "PUT"): [s.property_()],
            (f"{item}/tags", "POST"): [s.tags()],
            (f"{item}/tags/{{tag_name}}", "PUT"): [s.tag()],
            (f"{item}/resource_types", "POST"): [s.association()]}


V = "/v2.1"
SCHEMAS: dict[tuple[str, str], list[dict[str, Any]]] = {
    (f"{V}/servers", "POST"): [server_schemas.create(MAX)],
    (f"{V}/servers/{{server_id}}", "PUT"): [server_schemas.update(MAX)],
    (f"{V}/servers/{{server_id}}/action", "POST"): _ACTIONS,
    (f"{V}/servers/{{server_id}}/tags", "PUT"): [server_tags.UPDATE_ALL_SCHEMA],
    (f"{V}/flavors", "POST"): [flavors.CREATE_SCHEMA_255],
    (f"{V}/flavors/{{flavor_id}}", "PUT"): [flavors.UPDATE_SCHEMA_255],
    (f"{V}/flavors/{{flavor_id}}/os-extra_specs", "POST"): [flavor_extra_specs.CREATE_SCHEMA],
    (f"{V}/flavors/{{flavor_id}}/os-extra_specs/{{key}}", "PUT"):
        [flavor_extra_specs.UPDATE_SCHEMA],
    (f"{V}/os-keypairs", "POST"): [keypairs.CREATE_SCHEMA_210],
    (f"{V}/os-services/{{service_id}}", "PUT"): [services.UPDATE_SCHEMA_253],
    (f"{V}/os-aggregates", "POST"): [aggregates.CREATE_SCHEMA],
    (f"{V}/os-aggregates/{{aggregate_id}}", "PUT"): [aggregates.UPDATE_SCHEMA],
    (f"{V}/os-aggregates/{{aggregate_id}}/action", "POST"):
        [aggregates.ADD_HOST_SCHEMA, aggregates.REMOVE_HOST_SCHEMA,
         aggregates.SET_METADATA_SCHEMA],
    (f"{V}/os-aggregates/{{aggregate_id}}/images", "POST"): [aggregates.IMAGES_SCHEMA],
    (f"{V}/servers/{{server_id}}/os-volume_attachments", "POST"):
        [attachment_schemas.create(MAX)],
    (f"{V}/servers/{{server_id}}/os-volume_attachments/{{volume_id}}", "PUT"):
        [attachment_schemas.update(MAX)],
    (f"{V}/os-transcell-move-plans", "POST"): [move_plans.SCHEMA],
    (f"{V}/os-transcell-drains", "POST"): [drains.CREATE_SCHEMA],
    (f"{V}/os-transcell-drains/{{drain_id}}/action", "POST"):
        list(drains.ACTION_SCHEMAS.values()),
    (f"{V}/os-server-external-events", "POST"): [external_events.create_schema(MAX)],
    (f"{V}/os-assisted-volume-snapshots", "POST"): [assisted_volume_snapshots.CREATE_SCHEMA],
    (f"{V}/servers/{{server_id}}/metadata", "POST"): [metadata_schemas.METADATA_BODY],
    (f"{V}/servers/{{server_id}}/metadata", "PUT"): [metadata_schemas.METADATA_BODY],
    (f"{V}/servers/{{server_id}}/metadata/{{key}}", "PUT"): [metadata_schemas.META_ITEM_BODY],
    (f"{V}/os-server-groups", "POST"): [group_schemas.create(MAX)],
    (f"{V}/os-quota-sets/{{tenant_id}}", "PUT"):
        [quota_sets.update_schema("quota_set", quota_sets.resources(MAX), with_force=True)],
    (f"{V}/os-quota-class-sets/{{quota_class}}", "PUT"):
        [quota_sets.update_schema("quota_class_set", quota_classes.settable(MAX),
                                  with_force=False)],
    (f"{V}/flavors/{{flavor_id}}/action", "POST"): list(flavor_access.ACTION_SCHEMAS.values()),
    (f"{V}/os-hosts/{{host_name}}", "PUT"): [hosts.UPDATE_SCHEMA],
    (f"{V}/images/{{image_id}}/metadata", "POST"): [images.METADATA_SCHEMA],
    (f"{V}/images/{{image_id}}/metadata", "PUT"): [images.METADATA_SCHEMA],
    (f"{V}/images/{{image_id}}/metadata/{{key}}", "PUT"): [images.META_SCHEMA],
    (f"{V}/os-security-groups", "POST"): [security_groups.GROUP_SCHEMA],
    (f"{V}/os-security-groups/{{group_id}}", "PUT"): [security_groups.GROUP_SCHEMA],
    (f"{V}/os-security-group-rules", "POST"): [security_groups.RULE_SCHEMA],
    (f"{V}/os-volumes", "POST"): [volume_proxy.CREATE_SCHEMA],
    (f"{V}/os-snapshots", "POST"): [snapshot_proxy.CREATE_SCHEMA],
    ("/v2/images", "POST"): [_image_create_schema()],
    ("/v2/images/{image_id}", "PATCH"): [_PATCH],
    **_metadef_schemas(),
    ("/v2.0/networks", "POST"): [_network_schema("network", attributes.NETWORK)],
    ("/v2.0/networks/{resource_id}", "PUT"): [_network_schema("network", attributes.NETWORK)],
    ("/v2.0/ports", "POST"): [_network_schema("port", attributes.PORT)],
    ("/v2.0/ports/{resource_id}", "PUT"): [_network_schema("port", attributes.PORT)],
    ("/v2.0/subnets", "POST"): [_network_schema("subnet", attributes.SUBNET)],
    ("/v2.0/routers", "POST"): [_network_schema("router", routers.ROUTER)],
    ("/v2.0/routers/{resource_id}", "PUT"): [_network_schema("router", routers.ROUTER)],
    ("/v2.0/routers/{router_id}/add_router_interface", "PUT"): [_INTERFACE],
    ("/v2.0/routers/{router_id}/remove_router_interface", "PUT"): [_INTERFACE],
    ("/v2.0/subnetpools", "POST"): [_network_schema("subnetpool", subnetpools.SUBNETPOOL)],
    ("/v2.0/subnetpools/{resource_id}", "PUT"): [
        _network_schema("subnetpool", subnetpools.SUBNETPOOL)],
}

#: Query parameters lists read, and what else a client might send.
QUERY_NAMES = ("sort_key", "sort_dir", "limit", "marker", "changes-since", "changes-before",
               "created_at", "name", "status", "all_tenants", "tags", "not-tags", "ip",
               "fields", "sort", "visibility", "member_status", "deleted", "locked",
               "minDisk", "is_public", "user_id", "host", "hypervisor_hostname_pattern")


# -- values ------------------------------------------------------------------------------

HOSTILE_STRINGS = ["", " ", "\x00", "nul\x00in", "\x1b[2J", "\ud800", "\udfff\ud800",
                   "a" * 256, "b" * 70000, "\u2028", "%ff", "../../etc/passwd",
                   "' OR 1=1 --", "${jndi:x}", "{{7*7}}", "\\", "\"", "null", "1e999",
                   "9" * 5000, "-1", "2." + "9" * 400, "🙂" * 300, "\u202e", "\ufeff"]
HOSTILE_VALUES: list[Any] = [None, True, False, 0, -1, 2 ** 63, -(2 ** 63) - 1, 10 ** 400,
                             1.5, float("1e308"), [], {}, [[[]]], {"a": {"b": {}}},
                             *HOSTILE_STRINGS]
HOSTILE_QUERY_VALUES = ["", "%ff", "%00", "%c3%28", "a" * 5000, "-1", "9" * 5000, "desc",
                        "asc", "sideways", "true", "yes", "2020-01-01T00:00:00Z",
                        "0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00", "(",
                        "[", "*", "%2e%2e", "\u2028", "%ed%a0%80"]
HOSTILE_SEGMENTS = ["%ff", "%00", "%2e%2e", "a" * 300, "%ed%a0%80", "-1", "0", "9" * 400,
                    "%c0%af", "null", "%20", "x%2fy"]


def _sample(schema: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A value shaped by ``schema`` (valid often, not always: the API decides)."""
    if depth > 6:
        return None
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema and "type" not in schema:
            return _sample(rng.choice(schema[key]), rng, depth + 1)
    kind = schema.get("type", rng.choice(["string", "object"]))
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object":
        props = schema.get("properties", {})
        chosen = set(schema.get("required", []))
        chosen |= {name for name in props if rng.random() < 0.5}
        body = {name: _sample(props[name], rng, depth + 1) for name in props if name in chosen}
        for _pattern, sub in schema.get("patternProperties", {}).items():
            if rng.random() < 0.7:
                body[f"k{rng.randint(0, 9)}"] = _sample(sub, rng, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and rng.random() < 0.5:
            body[f"extra_{rng.randint(0, 9)}"] = _sample(extra, rng, depth + 1)
        return body
    if kind == "array":
        return [_sample(schema.get("items", {}), rng, depth + 1)
                for _ in range(rng.randint(0, 3))]
    if kind == "integer":
        return rng.randint(schema.get("minimum", 0), min(schema.get("maximum", 64), 64))
    if kind == "number":
        return round(rng.uniform(0.1, 4.0), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    top = min(schema.get("maxLength", 16), 16)
    low = min(schema.get("minLength", 1), top)
    if schema.get("format") == "ipv4":
        return f"192.0.2.{rng.randint(1, 254)}"
    return "fz" + "".join(rng.choice("abcdefgh0123456789-") for _ in range(max(low, top) - 2))


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _encode(body: Any) -> bytes:
    # json.dumps writes a lone surrogate as \ud800 and huge ints as their digits,
    # exactly what a hostile client would send
    return json.dumps(body).encode()


def make_body(schema: dict[str, Any] | None, rng: random.Random) -> bytes:
    """Generated from the schema, then (most of the time) broken somewhere."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice([b"\xff\xfe{}", b"[" * 5000, b'{"a": ' * 80 + b"1" + b"}" * 80,
                           b"{", b"", b"null", b"[]", b'"x"', b"1" * 5000, b"NaN",
                           b'{"a": "\\ud800"}', b'{"\xc0\xaf": 1}', b"\x00" * 16])
    body = _sample(schema or {"type": "object"}, rng)
    if roll < 0.3:
        return _encode(body)
    paths = list(_leaves(body))
    target = rng.choice(paths)
    new = rng.choice(HOSTILE_VALUES + [_deep(rng.choice([10, 70, 200]))])
    if isinstance(new, float) and rng.random() < 0.3:
        new = float("nan")
    if target and isinstance(body, dict | list) and rng.random() < 0.15:
        # a key that is itself hostile
        parent = target[:-1]
        container = body
        for step in parent:
            container = container[step]
        if isinstance(container, dict):
            key = rng.choice(HOSTILE_STRINGS) or "empty"
            return _encode(_replace(body, parent, {**container, key: "v"}))
    return _encode(_replace(body, target, new))


def make_query(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return ""
    parts = []
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(QUERY_NAMES + ("%ff", "a" * 300, "%00"))
        parts.append(f"{name}={rng.choice(HOSTILE_QUERY_VALUES)}")
    return "?" + "&".join(parts)


# -- the cloud the fuzz runs against ----------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory) -> Iterator[tuple[CloudProcess, dict[str, list[str]]]]:
    """Its own cloud (the fuzz may delete what it finds), with one of everything."""
    state_dir = str(tmp_path_factory.mktemp("fuzz-cloud"))
    proc = start_cloud(state_dir)
    cloud = CloudProcess(state_dir, proc.port)
    try:
        yield cloud, _arrange(cloud)
    finally:
        stop_cloud(proc)


def _arrange(cloud: CloudProcess) -> dict[str, list[str]]:
    image = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]
    net = cloud.request("GET", "/network/v2.0/networks?name=private").json()["networks"][0]
    server = cloud.request("POST", "/compute/v2.1/servers", cloud="transcell-demo", json={
        "server": {"name": "fuzz-target", "flavorRef": "1", "imageRef": image["id"]}})
    assert server.status_code == 202, server.text
    server_id = server.json()["server"]["id"]
    cloud.wait_status(server_id, "ACTIVE", cloud="transcell-demo")
    port = cloud.request("POST", "/network/v2.0/ports", json={
        "port": {"network_id": net["id"], "name": "fuzz-port"}}).json()["port"]
    agg = cloud.request("POST", "/compute/v2.1/os-aggregates",
                        json={"aggregate": {"name": "fuzz-agg"}}).json()["aggregate"]
    cloud.request("POST", "/compute/v2.1/os-keypairs", json={"keypair": {"name": "fuzz-key"}})
    services_list = cloud.request("GET", "/compute/v2.1/os-services",
                                  version="2.53").json()["services"]
    hypervisors = cloud.request("GET", "/compute/v2.1/os-hypervisors",
                                version="2.53").json()["hypervisors"]
    subnets = cloud.request("GET", "/network/v2.0/subnets").json()["subnets"]
    router = cloud.request("POST", "/network/v2.0/routers", json={
        "router": {"name": "fuzz-router"}}).json()["router"]
    pool = cloud.request("POST", "/network/v2.0/subnetpools", json={"subnetpool": {
        "name": "fuzz-pool", "prefixes": ["10.97.0.0/16"]}}).json()["subnetpool"]
    ns = cloud.request("POST", "/image/v2/metadefs/namespaces", json={
        "namespace": "fuzz-ns", "visibility": "public", "objects": [{"name": "fuzz-object"}],
        "properties": {"fuzz-property": {"title": "Fuzz", "type": "string"}},
        "tags": [{"name": "fuzz-tag"}],
        "resource_type_associations": [{"name": "OS::Glance::Image"}]})
    assert ns.status_code == 201, ns.text
    return {
        "server_id": [server_id], "image_id": [image["id"]],
        "resource_id": [net["id"], port["id"], router["id"], pool["id"]]
        + [s["id"] for s in subnets[:1]], "router_id": [router["id"]],
        "port_id": [port["id"]], "flavor_id": ["1", "2"], "aggregate_id": [str(agg["id"])],
        "name": ["fuzz-key"], "service_id": [s["id"] for s in services_list[:1]],
        "hypervisor_id": [h["id"] for h in hypervisors[:1]], "collection": ["networks",
                                                                             "ports", "routers",
                                                                             "subnetpools"],
        "host": ["cell1-host1"], "tag": ["t1"], "key": ["hw:cpu_policy"],
        "request_id": ["req-" + str(uuid.uuid4())], "alias": ["standard-attr-tag"],
        "user_id": [], "project_id": [], "domain_id": ["default"], "group_id": [],
        "uuid": [], "group": [], "namespace": ["fuzz-ns"], "object_name": ["fuzz-object"],
        "property_name": ["fuzz-property"], "tag_name": ["fuzz-tag"],
        "resource_type": ["OS::Glance::Image"],
    }


def _fill(template: str, known: dict[str, list[str]], rng: random.Random) -> str:
    def one(match: re.Match) -> str:
        choices = known.get(match.group(1)) or []
        roll = rng.random()
        if choices and roll < 0.6:
            return rng.choice(choices)
        if roll < 0.8:
            return str(uuid.UUID(int=rng.getrandbits(128)))
        return rng.choice(HOSTILE_SEGMENTS)
    return re.sub(r"\{(\w+)\}", one, template)


_last_snapshot: list[dict] = [{}]


def _digest(snapshot: dict) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


def settled_digest(cloud: CloudProcess, timeout: float = 20.0) -> str:
    """The state once work an earlier accepted request started (a build, a stop, a
    delete) has finished: two reads in a row that agree."""
    deadline = time.monotonic() + timeout
    previous = state_snapshot(cloud)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        current = state_snapshot(cloud)
        if current == previous and not _busy(current):
            break
        previous = current
    _last_snapshot[0] = previous
    return _digest(previous)


def _busy(snapshot: dict) -> bool:
    servers = snapshot.get("/compute/v2.1/servers/detail?all_tenants=1", {}).get("servers", [])
    return any(s.get("OS-EXT-STS:task_state") for s in servers)


def run_fuzz(cloud: CloudProcess, known: dict[str, list[str]], count: int, seed: int,
             budget: float = TIME_BUDGET) -> dict[str, int]:
    rng = random.Random(seed)
    routes = all_routes()
    tally = {"requests": 0, "refused": 0, "accepted": 0, "routes": len(routes)}
    started = time.monotonic()
    dirty, last_digest = True, ""
    for number in range(count):
        if time.monotonic() - started > budget:
            break
        mount, template, method = routes[number % len(routes)] if number < len(routes) \
            else rng.choice(routes)
        path = mount + _fill(template, known, rng) + make_query(rng)
        schemas = SCHEMAS.get((template, method))
        body = None
        if method in ("POST", "PUT", "PATCH"):
            body = make_body(rng.choice(schemas) if schemas else None, rng)
        who = rng.choice(["transcell-admin", "transcell-demo", "transcell-demo",
                          "transcell-reader", None])
        headers = {}
        if method == "PATCH":
            headers["Content-Type"] = "application/openstack-images-v2.1-json-patch"
        if mount == "/compute" and rng.random() < 0.5:
            headers["OpenStack-API-Version"] = rng.choice(
                ["compute 2.1", "compute 2.53", "compute latest", "compute 2.84",
                 "compute 2." + "9" * 50, "compute x"])
        before = None
        if method in MUTATING:
            # only work an accepted request started can move the state by itself
            before = settled_digest(cloud) if dirty else last_digest
            dirty = False
        case = f"seed={seed} #{number}: {method} {path[:200]} as {who} body={body!r:.300}"
        resp = raw(cloud, method, path, who, data=body, headers=headers)
        tally["requests"] += 1
        try:
            assert_clean(resp)
        except AssertionError as exc:
            raise AssertionError(f"{case}\n{exc}") from None
        if 400 <= resp.status_code < 500:
            tally["refused"] += 1
            if before is not None:
                after = state_snapshot(cloud)
                last_digest = _digest(after)
                if last_digest != before:
                    changed = [k for k in after if json.dumps(after[k], sort_keys=True)
                               != json.dumps(_last_snapshot[0].get(k), sort_keys=True)]
                    raise AssertionError(f"{case}\nrefused, yet these changed: {changed}\n"
                                         f"{json.dumps([after[k] for k in changed])[:3000]}")
        else:
            tally["accepted"] += 1
            dirty = dirty or method in MUTATING
    return tally


def test_fuzz_every_route(fuzz_cloud):
    cloud, known = fuzz_cloud
    tally = run_fuzz(cloud, known, DEFAULT_COUNT, SEED)
    print(f"fuzz: {tally}")
    assert tally["requests"] >= tally["routes"], tally
    assert tally["refused"] > 0


@pytest.mark.slow
def test_fuzz_every_route_longer(fuzz_cloud):
    cloud, known = fuzz_cloud
    tally = run_fuzz(cloud, known, SLOW_COUNT, SEED + 1, SLOW_TIME_BUDGET)
    print(f"fuzz: {tally}")
    assert tally["requests"] >= tally["routes"], tally


def test_generated_bodies_replay_from_the_seed():
    """The same seed gives the same requests, so a failure can be replayed."""
    schema = server_schemas.create(MAX)
    first = [make_body(schema, random.Random(7)) for _ in range(3)]
    again = [make_body(schema, random.Random(7)) for _ in range(3)]
    assert first == again


def test_every_route_table_is_walked():
    walked = {(mount, template) for mount, template, _ in all_routes()}
    assert ("/compute", f"{V}/servers/{{server_id}}/action") in walked
    assert ("/image", "/v2/images/{image_id}/file") in walked
    assert ("/network", "/v2.0/ports/{port_id}/bindings/{host}/activate") in walked
    assert ("/identity", "/v3/auth/tokens") in walked
    # every compute route that takes a JSON body has a schema the fuzz generates from
    for template, methods in compute_routes.ROUTES.items():
        for method in methods:
            if method in ("POST", "PUT") and not template.endswith(("/tags/{tag}",)):
                assert (template, method) in SCHEMAS, (template, method)
