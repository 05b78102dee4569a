"""Flavors through the compute API: shapes at 2.1, validation, access, paging."""

from __future__ import annotations

import uuid

from compute_api_fixtures import ADMIN, ALT, DEMO
from sqlalchemy import select

from transcell import policy
from transcell.api.compute import flavors
from transcell.compute.flavor_defaults import ensure_default_flavors
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db.session import api_session

FULL_KEYS = {"id", "name", "ram", "disk", "swap", "OS-FLV-EXT-DATA:ephemeral",
             "OS-FLV-DISABLED:disabled", "vcpus", "os-flavor-access:is_public", "rxtx_factor",
             "links"}


def _flavor_count() -> int:
    with api_session() as s:
        return len(s.scalars(select(am.Flavor)).all())


def _body(**values):
    spec = {"name": "m1.test", "ram": 1024, "vcpus": 2, "disk": 10}
    spec.update(values)
    return {"flavor": spec}


def test_admin_creates_a_flavor_with_nova_shape(cloud):
    resp = cloud.post("/flavors", _body(id=None, swap=0, **{"OS-FLV-EXT-DATA:ephemeral": 0,
                                                            "os-flavor-access:is_public": True}))
    assert resp.status_int == 200
    flavor = resp.json["flavor"]
    assert set(flavor) == FULL_KEYS
    assert uuid.UUID(flavor["id"])
    assert (flavor["name"], flavor["ram"], flavor["vcpus"], flavor["disk"]) == \
        ("m1.test", 1024, 2, 10)
    assert flavor["swap"] == ""
    assert flavor["rxtx_factor"] == 1.0
    assert flavor["links"] == [
        {"rel": "self", "href": f"http://localhost/v2.1/flavors/{flavor['id']}"},
        {"rel": "bookmark", "href": f"http://localhost/flavors/{flavor['id']}"}]

    shown = cloud.get(f"/flavors/{flavor['id']}", token=DEMO)
    assert shown.status_int == 200
    assert shown.json["flavor"] == flavor


def test_integer_and_string_ids_and_swap_are_kept(cloud):
    assert cloud.post("/flavors", _body(id=42)).json["flavor"]["id"] == "42"
    made = cloud.post("/flavors", _body(name="other", id="big-1", swap=512)).json["flavor"]
    assert (made["id"], made["swap"]) == ("big-1", 512)


def test_validation_errors_are_400_and_create_nothing(cloud):
    cases = [
        (_body(ram=0), "Invalid input for field/attribute ram. Value: 0."),
        (_body(vcpus=-1), "Invalid input for field/attribute vcpus. Value: -1."),
        (_body(disk=-1), "Invalid input for field/attribute disk. Value: -1."),
        ({"flavor": {"name": "x", "ram": 1, "vcpus": 1}},
         "Invalid input for field/attribute flavor. Value: {'name': 'x', 'ram': 1, "
         "'vcpus': 1}. 'disk' is a required property"),
        ({"flavour": {}}, "'flavor' is a required property"),
        (_body(name=" padded"), "An invalid 'name' value was provided. The name must be: "
                                "printable characters. Can not start or end with whitespace."),
        (_body(name=""), "Invalid input for field/attribute name."),
        (_body(colour="red"), "Value: {'name': 'm1.test', 'ram': 1024, 'vcpus': 2, 'disk': 10, "
                              "'colour': 'red'}. Additional properties are not allowed "
                              "('colour' was unexpected)"),
        (_body(id=" x"), "Invalid input for field/attribute id."),
    ]
    for body, message in cases:
        resp = cloud.post("/flavors", body)
        assert resp.status_int == 400, body
        assert resp.json["badRequest"]["code"] == 400
        assert message in resp.json["badRequest"]["message"], resp.json
    assert _flavor_count() == 0


def test_duplicates_conflict(cloud):
    cloud.post("/flavors", _body(id="7"))
    same_name = cloud.post("/flavors", _body(id="8"))
    assert same_name.status_int == 409
    assert same_name.json == {"conflictingRequest": {
        "code": 409, "message": "Flavor with name m1.test already exists."}}
    same_id = cloud.post("/flavors", _body(id="7", name="different"))
    assert same_id.status_int == 409
    assert same_id.json["conflictingRequest"]["message"] == "Flavor with ID 7 already exists."
    assert _flavor_count() == 1


def test_non_admin_may_not_create_or_delete(cloud):
    resp = cloud.post("/flavors", _body(), token=DEMO)
    assert resp.status_int == 403
    assert resp.json == {"forbidden": {"code": 403, "message": "Policy doesn't allow "
                                       "os_compute_api:os-flavor-manage:create to be "
                                       "performed."}}
    assert _flavor_count() == 0
    cloud.add_flavor("1", "m1.tiny")
    assert cloud.delete("/flavors/1", token=DEMO).status_int == 403
    assert _flavor_count() == 1


def test_unknown_ids_and_names_are_404(cloud):
    cloud.add_flavor("1", "m1.tiny")
    for ref in ("999", "m1.tiny"):
        resp = cloud.get(f"/flavors/{ref}")
        assert resp.status_int == 404
        assert resp.json == {"itemNotFound": {"code": 404,
                                              "message": f"Flavor {ref} could not be found."}}


def test_delete_is_202_then_gone(cloud):
    cloud.add_flavor("1", "m1.tiny", specs={"a": "b"})
    resp = cloud.delete("/flavors/1")
    assert resp.status_int == 202
    assert cloud.get("/flavors/1").status_int == 404
    assert cloud.delete("/flavors/1").status_int == 404


def test_private_flavors_are_seen_by_their_projects_and_admins(cloud):
    cloud.add_flavor("1", "public")
    cloud.add_flavor("2", "shared", is_public=False, projects=("demo-project",))
    cloud.add_flavor("3", "hidden", is_public=False)
    cloud.add_flavor("4", "retired", disabled=True)

    def ids(token, query=""):
        resp = cloud.get(f"/flavors/detail{query}", token=token)
        assert resp.status_int == 200, resp.json
        return [f["id"] for f in resp.json["flavors"]]

    assert ids(DEMO) == ["1", "2"]
    assert ids(DEMO, "?is_public=None") == ["1", "2"]  # ignored for non-admins
    assert ids(ALT) == ["1"]
    assert ids(ADMIN) == ["1", "4"]
    assert ids(ADMIN, "?is_public=None") == ["1", "2", "3", "4"]
    assert ids(ADMIN, "?is_public=false") == ["2", "3"]
    assert cloud.get("/flavors/3", token=DEMO).status_int == 404
    assert cloud.get("/flavors/2", token=DEMO).status_int == 200
    bad = cloud.get("/flavors?is_public=maybe")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"] == "Invalid is_public filter [maybe]"


def test_list_filters_sorts_and_pages(cloud):
    ensure_default_flavors()
    brief = cloud.get("/flavors").json["flavors"]
    assert [f["id"] for f in brief] == ["1", "11", "12", "2", "21", "22"]
    assert all(set(f) == {"id", "name", "links"} for f in brief)

    big = cloud.get("/flavors/detail?minRam=2048&minDisk=10").json["flavors"]
    assert [f["name"] for f in big] == ["gen1.medium", "m1.small", "gen2.medium"]
    by_ram = cloud.get("/flavors?sort_key=memory_mb&sort_dir=desc").json["flavors"]
    assert by_ram[0]["name"] == "gen2.medium"
    assert cloud.get("/flavors?minRam=lots").json["badRequest"]["message"] == \
        "Invalid minRam filter [lots]"
    assert cloud.get("/flavors?sort_key=colour").status_int == 400

    page = cloud.get("/flavors?limit=2").json
    assert [f["id"] for f in page["flavors"]] == ["1", "11"]
    assert page["flavors_links"] == [{"rel": "next", "href":
                                      "http://localhost/v2.1/flavors?limit=2&marker=11"}]
    rest = cloud.get("/flavors?limit=2&marker=21").json
    assert [f["id"] for f in rest["flavors"]] == ["22"]
    assert "flavors_links" not in rest
    missing = cloud.get("/flavors?marker=nope")
    assert missing.status_int == 400
    assert missing.json["badRequest"]["message"] == "marker [nope] not found"
    assert cloud.get("/flavors?limit=-1").status_int == 400


def test_default_flavors_are_seeded_once_with_their_traits(cloud):
    assert len(ensure_default_flavors()) == 6
    assert ensure_default_flavors() == []
    with api_session() as s:
        gen2 = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == "22"))
        copy = flavors.flavor_to_dict(gen2)
    assert copy["name"] == "gen2.medium"
    assert (copy["vcpus"], copy["memory_mb"], copy["root_gb"]) == (2, 4096, 10)
    assert copy["extra_specs"] == {"trait:CUSTOM_HW_GEN2": "required"}
    assert {"id", "flavorid", "ephemeral_gb", "swap", "rxtx_factor", "is_public",
            "disabled", "description"} <= set(copy)


# -- 2.55 description and update, 2.61 extra_specs, 2.75 integer swap ---------------------

TEXT = "For  small web servers — ünïcode "  # inner and trailing spaces are allowed


def test_255_description_on_create_list_show(cloud):
    made = cloud.post("/flavors", _body(id="d1", description=TEXT),
                      version="2.55")
    assert made.status_int == 200, made.json
    assert set(made.json["flavor"]) == FULL_KEYS | {"description"}
    assert made.json["flavor"]["description"] == TEXT
    cloud.add_flavor("d2", "undescribed")
    brief = cloud.get("/flavors", version="2.55").json["flavors"]
    assert [(f["id"], f["description"]) for f in brief] == [
        ("d1", TEXT), ("d2", None)]
    assert all(set(f) == {"id", "name", "links", "description"} for f in brief)
    detail = cloud.get("/flavors/detail", token=DEMO, version="2.55").json["flavors"]
    assert [f["description"] for f in detail] == [TEXT, None]
    assert cloud.get("/flavors/d1", version="2.55").json["flavor"] == made.json["flavor"]
    # and nothing of it below 2.55, where a description is not even accepted
    assert "description" not in cloud.get("/flavors/d1", version="2.54").json["flavor"]
    refused = cloud.post("/flavors", _body(name="x", description="d"), version="2.54")
    assert refused.status_int == 400
    assert "'description' was unexpected" in refused.json["badRequest"]["message"]


def test_255_description_must_be_printable_and_fit(cloud):
    for description in ("line\nbreak", "tab\there", "x" * 65536, 7):
        resp = cloud.post("/flavors", _body(description=description), version="2.55")
        assert resp.status_int == 400, description
        assert resp.json["badRequest"]["message"].startswith(
            "Invalid input for field/attribute description.")
    assert _flavor_count() == 0
    assert cloud.post("/flavors", _body(description="x" * 65535),
                      version="2.55").status_int == 200


def test_255_update_changes_only_the_description(cloud):
    cloud.add_flavor("u1", "m1.update", specs={"hw:cpu_policy": "dedicated"})
    before = cloud.get("/flavors/u1", version="2.55").json["flavor"]
    resp = cloud.put("/flavors/u1", {"flavor": {"description": "now described"}},
                     version="2.55")
    assert resp.status_int == 200
    assert resp.json["flavor"] == dict(before, description="now described")
    cleared = cloud.put("/flavors/u1", {"flavor": {"description": None}}, version="2.55")
    assert cleared.json["flavor"]["description"] is None

    def refused(body, status, token=ADMIN, version="2.55", flavor="u1"):
        resp = cloud.put(f"/flavors/{flavor}", body, token=token, version=version)
        assert resp.status_int == status, (body, resp.json)
        return resp.json

    assert refused({"flavor": {"description": "x"}}, 404, version="2.54") == {
        "itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    assert "'description' is a required property" in refused(
        {"flavor": {}}, 400)["badRequest"]["message"]
    assert "'name' was unexpected" in refused(
        {"flavor": {"description": "x", "name": "renamed"}}, 400)["badRequest"]["message"]
    assert refused({"flavor": {"description": "x"}}, 403, token=DEMO) == {"forbidden": {
        "code": 403,
        "message": "Policy doesn't allow os_compute_api:os-flavor-manage:update to be "
                   "performed."}}
    assert refused({"flavor": {"description": "x"}}, 404, flavor="nope") == {
        "itemNotFound": {"code": 404, "message": "Flavor nope could not be found."}}
    assert cloud.get("/flavors/u1", version="2.55").json["flavor"]["description"] is None


def test_261_extra_specs_in_full_bodies_for_whom_policy_allows(cloud, tmp_path):
    cloud.add_flavor("s1", "m1.specs", specs={"hw:cpu_policy": "dedicated",
                                              "trait:CUSTOM_X": "required"})
    specs = {"hw:cpu_policy": "dedicated", "trait:CUSTOM_X": "required"}
    assert cloud.get("/flavors/s1", version="2.61", token=DEMO).json["flavor"][
        "extra_specs"] == specs
    assert [f["extra_specs"] for f in cloud.get("/flavors/detail", version="2.61")
            .json["flavors"]] == [specs]
    assert all("extra_specs" not in f for f in cloud.get("/flavors", version="2.61")
               .json["flavors"])
    assert "extra_specs" not in cloud.get("/flavors/s1", version="2.60").json["flavor"]
    made = cloud.post("/flavors", _body(), version="2.61").json["flavor"]
    assert made["extra_specs"] == {}
    described = cloud.put("/flavors/s1", {"flavor": {"description": "d"}},
                          version="2.61").json["flavor"]
    assert described["extra_specs"] == specs

    rules = tmp_path / "policy.yaml"
    rules.write_text('"os_compute_api:os-flavor-extra-specs:index": "rule:admin_api"\n')
    CONF.set_override("policy_file", str(rules), group="oslo_policy")
    policy.reset()
    try:
        assert "extra_specs" not in cloud.get("/flavors/s1", version="2.61",
                                              token=DEMO).json["flavor"]
        assert "extra_specs" in cloud.get("/flavors/s1", version="2.61").json["flavor"]
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()


def test_275_swap_is_an_integer(cloud):
    cloud.post("/flavors", _body(id="w0"))
    cloud.post("/flavors", _body(id="w1", name="swappy", swap=256))
    assert [f["swap"] for f in cloud.get("/flavors/detail", version="2.74")
            .json["flavors"]] == ["", 256]
    assert [f["swap"] for f in cloud.get("/flavors/detail", version="2.75")
            .json["flavors"]] == [0, 256]
    assert cloud.get("/flavors/w0", version="2.75").json["flavor"]["swap"] == 0
