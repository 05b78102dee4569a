"""/os-aggregates: Nova's bodies (checked against Tempest's schemas), its error codes,
and an availability zone that can only be the hosts' cell. Every refused request
is checked to have changed nothing."""

from __future__ import annotations

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import DEMO
from sqlalchemy import delete as sql_delete
from tempest.lib.api_schema.response.compute.v2_1 import aggregates as schemas_21
from tempest.lib.api_schema.response.compute.v2_41 import aggregates as schemas_241
from tempest.lib.common import rest_client

from transcell.api.compute import aggregates as aggregates_api
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.db import api_models as am
from transcell.db.session import api_session

V = "/v2.1"
AGGREGATE_ROUTES = {
    f"{V}/os-aggregates": {"GET": aggregates_api.index, "POST": aggregates_api.create},
    f"{V}/os-aggregates/{{aggregate_id}}": {"GET": aggregates_api.show,
                                            "PUT": aggregates_api.update,
                                            "DELETE": aggregates_api.delete},
    f"{V}/os-aggregates/{{aggregate_id}}/action": {"POST": aggregates_api.action},
}
KEYS_21 = {"availability_zone", "created_at", "deleted", "deleted_at", "id", "name",
           "updated_at", "hosts", "metadata"}
CREATE_KEYS_21 = KEYS_21 - {"hosts", "metadata"}


class _Resp(dict):
    def __init__(self, response):
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_int


def check(schema: dict, response) -> dict:
    """Tempest's own check of a response: status code and exact body shape."""
    body = response.json if response.body else ""
    rest_client.RestClient.validate_response(schema, _Resp(response), body)
    return body


@pytest.fixture
def agg(cloud: fx.Cloud) -> fx.Cloud:
    """The compute API with /os-aggregates mounted; two hosts in cell1, one in cell2."""
    cloud.app = ComputeApp({**fx.ROUTES, **AGGREGATE_ROUTES}, fx.fake_authenticate,
                           nova_fault)
    cloud.add_compute(cloud.cell1, "cell1-host1")
    cloud.add_compute(cloud.cell1, "cell1-host2")
    cloud.add_compute(cloud.cell2, "cell2-host1")
    return cloud


def create(cloud: fx.Cloud, name: str, zone: str | None = None, **kwargs) -> dict:
    body: dict = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    resp = cloud.post("/os-aggregates", {"aggregate": body}, **kwargs)
    assert resp.status_int == 200, resp.text
    return resp.json["aggregate"]


def act(cloud: fx.Cloud, agg_id, action: str, args: dict, **kwargs):
    return cloud.post(f"/os-aggregates/{agg_id}/action", {action: args}, **kwargs)


def listing(cloud: fx.Cloud) -> list[dict]:
    return cloud.get("/os-aggregates").json["aggregates"]


def error(resp, code: int) -> str:
    assert resp.status_int == code, resp.text
    (fault,) = resp.json.values()
    assert fault["code"] == code
    return fault["message"]


def test_lifecycle_at_21_matches_tempest(agg):
    resp = agg.post("/os-aggregates", {"aggregate": {"name": "fast-disks"}})
    created = check(schemas_21.create_aggregate, resp)["aggregate"]
    assert set(created) == CREATE_KEYS_21
    assert (created["name"], created["availability_zone"], created["deleted"],
            created["deleted_at"], created["updated_at"]) == ("fast-disks", None, False,
                                                              None, None)
    agg_id = created["id"]
    path = f"/os-aggregates/{agg_id}"

    shown = check(schemas_21.get_aggregate, agg.get(path))["aggregate"]
    assert (shown["hosts"], shown["metadata"]) == ([], {})
    assert set(shown) == KEYS_21

    renamed = check(schemas_21.update_aggregate,
                    agg.put(path, {"aggregate": {"name": " ssd "}}))["aggregate"]
    assert renamed["name"] == "ssd"
    assert renamed["updated_at"] is not None

    added = check(schemas_21.aggregate_add_remove_host,
                  act(agg, agg_id, "add_host", {"host": "cell1-host1"}))["aggregate"]
    added = check(schemas_21.aggregate_add_remove_host,
                  act(agg, agg_id, "add_host", {"host": "cell2-host1"}))["aggregate"]
    assert added["hosts"] == ["cell1-host1", "cell2-host1"]

    meta = check(schemas_21.aggregate_set_metadata,
                 act(agg, agg_id, "set_metadata", {"metadata": {"disk": "ssd", "rack": "r1"}}))
    assert meta["aggregate"]["metadata"] == {"disk": "ssd", "rack": "r1"}

    listed = check(schemas_21.list_aggregates, agg.get("/os-aggregates"))["aggregates"]
    assert [(a["id"], a["name"], a["hosts"]) for a in listed] == [
        (agg_id, "ssd", ["cell1-host1", "cell2-host1"])]

    removed = check(schemas_21.aggregate_add_remove_host,
                    act(agg, agg_id, "remove_host", {"host": "cell1-host1"}))["aggregate"]
    assert removed["hosts"] == ["cell2-host1"]
    act(agg, agg_id, "remove_host", {"host": "cell2-host1"})

    deleted = agg.delete(path)
    check(schemas_21.delete_aggregate, deleted)
    assert deleted.body == b""
    assert listing(agg) == []
    assert error(agg.get(path), 404) == f"Aggregate {agg_id} could not be found."


def test_uuid_from_241_matches_tempest(agg):
    resp = agg.post("/os-aggregates", {"aggregate": {"name": "a1", "availability_zone":
                                                     "cell1"}}, version="2.41")
    created = check(schemas_241.create_aggregate, resp)["aggregate"]
    agg_id, uuid = created["id"], created["uuid"]
    path = f"/os-aggregates/{agg_id}"
    assert "uuid" not in agg.get(path).json["aggregate"]
    assert "uuid" not in agg.get(path, version="2.40").json["aggregate"]
    for resp, schema in (
            (agg.get(path, version="2.41"), schemas_241.get_aggregate),
            (agg.get("/os-aggregates", version="2.53"), schemas_241.list_aggregates),
            (agg.put(path, {"aggregate": {"name": "a2"}}, version="2.41"),
             schemas_241.update_aggregate),
            (act(agg, agg_id, "add_host", {"host": "cell1-host1"}, version="2.41"),
             schemas_241.aggregate_add_remove_host),
            (act(agg, agg_id, "set_metadata", {"metadata": {"k": "v"}}, version="2.41"),
             schemas_241.aggregate_set_metadata),
            (act(agg, agg_id, "remove_host", {"host": "cell1-host1"}, version="2.41"),
             schemas_241.aggregate_add_remove_host)):
        body = check(schema, resp)
        items = body["aggregates"] if "aggregates" in body else [body["aggregate"]]
        assert [a["uuid"] for a in items] == [uuid]
    check(schemas_241.delete_aggregate, agg.delete(path, version="2.41"))


def test_availability_zone_is_the_hosts_cell(agg):
    zoned = create(agg, "in-cell1", "cell1")
    assert zoned["availability_zone"] == "cell1"
    shown = agg.get(f"/os-aggregates/{zoned['id']}").json["aggregate"]
    assert shown["metadata"] == {"availability_zone": "cell1"}
    ok = act(agg, zoned["id"], "add_host", {"host": "cell1-host2"})
    assert ok.json["aggregate"]["hosts"] == ["cell1-host2"]

    # A host of another cell would be put in a zone that is not its cell.
    message = error(act(agg, zoned["id"], "add_host", {"host": "cell2-host1"}), 409)
    assert message == (f"Cannot add host to aggregate {zoned['id']}. Reason: host cell2-host1 "
                       "is in availability zone cell2 (its cell), not in the aggregate's zone "
                       "cell1.")

    # Moving the hosts to another zone, by update or by metadata, is refused.
    message = error(agg.put(f"/os-aggregates/{zoned['id']}",
                            {"aggregate": {"availability_zone": "cell2"}}), 400)
    assert message.startswith(f"Cannot update aggregate {zoned['id']}. Reason: availability "
                              "zone 'cell2' is not the cell of the aggregate's hosts "
                              "(cell1-host2 in cell1)")
    message = error(act(agg, zoned["id"], "set_metadata",
                        {"metadata": {"availability_zone": "elsewhere", "x": "y"}}), 400)
    assert message.startswith(f"Cannot update metadata of aggregate {zoned['id']}.")
    assert "may only name that cell" in message
    # Naming the true zone is accepted.
    same = act(agg, zoned["id"], "set_metadata", {"metadata": {"availability_zone": "cell1"}})
    assert same.json["aggregate"]["availability_zone"] == "cell1"

    # A zone that is no cell at all, for a new aggregate.
    message = error(agg.post("/os-aggregates", {"aggregate": {"name": "x",
                                                              "availability_zone": "nova"}}),
                    400)
    assert message == ("Cannot create aggregate x. Reason: availability zone 'nova' is not a "
                       "cell; in this cloud the availability zones are the cells (cell1, "
                       "cell2), so an aggregate's availability_zone may only name its hosts' "
                       "cell.")
    # Clearing the zone is refused, as in Nova.
    for resp in (agg.put(f"/os-aggregates/{zoned['id']}",
                         {"aggregate": {"availability_zone": None}}),
                 act(agg, zoned["id"], "set_metadata",
                     {"metadata": {"availability_zone": None}})):
        assert "cannot have an empty availability zone" in error(resp, 400)

    after = listing(agg)
    assert [(a["name"], a["hosts"], a["metadata"]) for a in after] == [
        ("in-cell1", ["cell1-host2"], {"availability_zone": "cell1"})]


def test_hosts_of_two_cells_leave_no_zone_to_set(agg):
    mixed = create(agg, "mixed")
    act(agg, mixed["id"], "add_host", {"host": "cell1-host1"})
    act(agg, mixed["id"], "add_host", {"host": "cell2-host1"})
    for zone in ("cell1", "cell2"):
        resp = act(agg, mixed["id"], "set_metadata", {"metadata": {"availability_zone": zone}})
        assert "cell1-host1 in cell1, cell2-host1 in cell2" in error(resp, 400)
    assert agg.get(f"/os-aggregates/{mixed['id']}").json["aggregate"]["metadata"] == {}


def test_set_metadata_merges_and_null_removes(agg):
    made = create(agg, "meta")
    act(agg, made["id"], "set_metadata", {"metadata": {"a": "1", "b": "2"}})
    resp = act(agg, made["id"], "set_metadata", {"metadata": {"a": None, "c": "3",
                                                              "missing": None}})
    assert resp.json["aggregate"]["metadata"] == {"b": "2", "c": "3"}
    resp = act(agg, made["id"], "set_metadata",
               {"metadata": {"cross_cell_move_weight_multiplier": "-2.5"}})
    assert resp.json["aggregate"]["metadata"]["cross_cell_move_weight_multiplier"] == "-2.5"
    for value in ("lots", "inf", "nan", ""):
        message = error(act(agg, made["id"], "set_metadata",
                            {"metadata": {"cross_cell_move_weight_multiplier": value,
                                          "d": "4"}}), 400)
        assert "cross_cell_move_weight_multiplier must be a finite number" in message
    shown = agg.get(f"/os-aggregates/{made['id']}").json["aggregate"]["metadata"]
    assert shown == {"b": "2", "c": "3", "cross_cell_move_weight_multiplier": "-2.5"}


def test_names_are_unique(agg):
    first = create(agg, "one")
    create(agg, "two")
    resp = agg.post("/os-aggregates", {"aggregate": {"name": "one"}})
    assert error(resp, 409) == "Aggregate one already exists."
    resp = agg.put(f"/os-aggregates/{first['id']}", {"aggregate": {"name": "two"}})
    assert error(resp, 409) == "Aggregate two already exists."
    # Renaming to its own name is no conflict; a deleted aggregate frees its name.
    assert agg.put(f"/os-aggregates/{first['id']}",
                   {"aggregate": {"name": "one"}}).status_int == 200
    assert agg.delete(f"/os-aggregates/{first['id']}").status_int == 200
    assert create(agg, "one")["id"] != first["id"]
    assert sorted(a["name"] for a in listing(agg)) == ["one", "two"]


def test_hosts_must_exist_and_join_once(agg):
    made = create(agg, "hosts")
    resp = act(agg, made["id"], "add_host", {"host": "no-such-host"})
    assert error(resp, 404) == "Compute host no-such-host could not be found."
    assert act(agg, made["id"], "add_host", {"host": "cell1-host1"}).status_int == 200
    resp = act(agg, made["id"], "add_host", {"host": "cell1-host1"})
    assert error(resp, 409) == f"Aggregate {made['id']} already has host cell1-host1."
    resp = act(agg, made["id"], "remove_host", {"host": "cell1-host2"})
    assert error(resp, 404) == f"Cannot remove host cell1-host2 in aggregate {made['id']}"
    resp = act(agg, 999, "add_host", {"host": "cell1-host1"})
    assert error(resp, 404) == "Aggregate 999 could not be found."
    assert listing(agg)[0]["hosts"] == ["cell1-host1"]


def test_a_host_whose_service_is_gone_can_still_be_removed(agg):
    made = create(agg, "stale")
    act(agg, made["id"], "add_host", {"host": "cell1-host1"})
    with api_session() as s:
        s.execute(sql_delete(am.HostMapping).where(am.HostMapping.host == "cell1-host1"))
    resp = act(agg, made["id"], "remove_host", {"host": "cell1-host1"})
    assert resp.json["aggregate"]["hosts"] == []
    assert agg.delete(f"/os-aggregates/{made['id']}").status_int == 200


def test_a_non_empty_aggregate_cannot_be_deleted(agg):
    made = create(agg, "busy")
    act(agg, made["id"], "add_host", {"host": "cell2-host1"})
    message = error(agg.delete(f"/os-aggregates/{made['id']}"), 400)
    assert message == f"Cannot delete aggregate {made['id']}. Reason: Host aggregate is not " \
                      "empty."
    assert [a["name"] for a in listing(agg)] == ["busy"]


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/os-aggregates/abc", None),
    ("PUT", "/os-aggregates/abc", {"aggregate": {"name": "x"}}),
    ("DELETE", "/os-aggregates/abc", None),
    ("POST", "/os-aggregates/abc/action", {"add_host": {"host": "cell1-host1"}}),
])
def test_ids_must_be_integers(agg, method, path, body):
    resp = agg.call(method, path, body=body)
    assert error(resp, 400) == "Invalid input received: id must be an integer"


@pytest.mark.parametrize("agg_id", ["0", "-1", "99", str(2**40)])
def test_ids_no_aggregate_has(agg, agg_id):
    assert error(agg.get(f"/os-aggregates/{agg_id}"), 404) == \
        f"Aggregate {agg_id} could not be found."


@pytest.mark.parametrize("body", [
    {},
    {"aggregate": {}},
    {"aggregate": {"name": ""}},
    {"aggregate": {"name": " padded"}},
    {"aggregate": {"name": "x" * 256}},
    {"aggregate": {"name": "x", "availability_zone": ""}},
    {"aggregate": {"name": "x", "availability_zone": "cell:1"}},
    {"aggregate": {"name": "x", "hosts": []}},
    {"aggregate": {"name": 5}},
    {"aggregate": {"name": "x"}, "extra": 1},
    [],
])
def test_create_refuses_bad_bodies(agg, body):
    assert agg.post("/os-aggregates", body).status_int == 400
    assert listing(agg) == []


@pytest.mark.parametrize("body", [
    {"aggregate": {}},
    {"aggregate": {"name": "   "}},
    {"aggregate": {"name": "x", "metadata": {}}},
    {"aggregate": {"availability_zone": ":"}},
    {"name": "x"},
])
def test_update_refuses_bad_bodies(agg, body):
    made = create(agg, "keep")
    assert agg.put(f"/os-aggregates/{made['id']}", body).status_int == 400
    assert agg.get(f"/os-aggregates/{made['id']}").json["aggregate"] == dict(
        made, hosts=[], metadata={})


@pytest.mark.parametrize("body, message", [
    ({"add_host": {}}, "'host' is a required property"),
    ({"add_host": {"host": "bad host!"}}, "does not match"),
    ({"add_host": {"host": "cell1-host1", "zone": "x"}}, "Additional properties"),
    ({"remove_host": {"host": ""}}, "Invalid input for field/attribute host. Value: ."),
    ({"set_metadata": {"metadata": {"bad key!": "v"}}}, "does not match any of the regexes"),
    ({"set_metadata": {"metadata": {"k": "v" * 256}}}, "too long"),
    ({"set_metadata": {"metadata": {"k": 1}}}, "is not of type"),
    ({"set_metadata": {}}, "'metadata' is a required property"),
    ({"set_metadata": {"metadata": {"availability_zone": " cell1"}}}, "invalid 'name'"),
    ({"reboot": {}}, "There is no such action: reboot"),
    ({"add_host": {"host": "cell1-host1"}, "remove_host": {"host": "cell1-host1"}},
     "exactly one key"),
])
def test_actions_refuse_bad_bodies(agg, body, message):
    made = create(agg, "keep")
    resp = agg.post(f"/os-aggregates/{made['id']}/action", body)
    assert message in error(resp, 400)
    shown = agg.get(f"/os-aggregates/{made['id']}").json["aggregate"]
    assert (shown["hosts"], shown["metadata"], shown["updated_at"]) == ([], {}, None)


def test_everything_is_admin_only(agg):
    made = create(agg, "admin-only")
    path = f"/os-aggregates/{made['id']}"
    calls = [
        ("GET", "/os-aggregates", None, "index"),
        ("POST", "/os-aggregates", {"aggregate": {"name": "mine"}}, "create"),
        ("GET", path, None, "show"),
        ("PUT", path, {"aggregate": {"name": "mine"}}, "update"),
        ("DELETE", path, None, "delete"),
        ("POST", path + "/action", {"add_host": {"host": "cell1-host1"}}, "add_host"),
        ("POST", path + "/action", {"remove_host": {"host": "cell1-host1"}}, "remove_host"),
        ("POST", path + "/action", {"set_metadata": {"metadata": {"a": "b"}}},
         "set_metadata"),
    ]
    for method, url, body, rule in calls:
        resp = agg.call(method, url, token=DEMO, body=body)
        assert error(resp, 403) == \
            f"Policy doesn't allow os_compute_api:os-aggregates:{rule} to be performed."
    assert [(a["name"], a["hosts"], a["metadata"]) for a in listing(agg)] == [
        ("admin-only", [], {})]
