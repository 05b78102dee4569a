"""Glance's metadata definitions API (/v2/metadefs), end to end through WSGI.

The catalog sits in a migrated image database; every test drives it as a
client would and reads the result back through the API, so a refused call is
shown to have changed nothing.
"""

from __future__ import annotations

import json

import pytest
import webob

from transcell import exception
from transcell.api.image import make_app
from transcell.context import RequestContext
from transcell.db import migration
from transcell.image.metadefs import MetadefService
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

ADMIN = "admin:admin-p:admin"
ALICE = "alice:proj-a:member"
BOB = "bob:proj-b:member"
NS = "/v2/metadefs/namespaces"


def fake_authenticate(req):
    token = req.headers.get("X-Auth-Token")
    if not token:
        raise exception.NotAuthenticated()
    user, project, roles = token.split(":")
    return RequestContext(user_id=user, project_id=project, roles=roles.split(","))


@pytest.fixture
def app(tmp_path, db_factory):
    """The image API over a freshly migrated image database on each engine."""
    url = db_factory.create()
    migration.sync(url, "image")
    return make_app(ImageService(ChunkStore(str(tmp_path / "store"), 64 * 1024)),
                    fake_authenticate, MetadefService(url))


def call(app, path, method="GET", token=ADMIN, body=None, raw=None, headers=None):
    req = webob.Request.blank(path, method=method, base_url="http://cloud/image")
    if token:
        req.headers["X-Auth-Token"] = token
    if body is not None or raw is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = "application/json"
    for key, value in (headers or {}).items():
        req.headers[key] = value
    return req.get_response(app)


def ok(resp, status=200):
    assert resp.status_int == status, resp.text
    return resp.json if resp.body else None


def make_namespace(app, name="OS::Test", token=ADMIN, **fields):
    fields.setdefault("visibility", "public")
    return ok(call(app, NS, "POST", token, {"namespace": name, **fields}), 201)


def names(app, path, key, token=ADMIN):
    return sorted(item["name"] for item in ok(call(app, path, token=token))[key])


def test_namespace_lifecycle(app):
    created = make_namespace(app, "OS::Compute::Test", display_name="Test", description="d",
                             protected=True,
                             resource_type_associations=[{"name": "OS::Glance::Image",
                                                          "prefix": "hw_"}])
    assert created["namespace"] == "OS::Compute::Test"
    assert created["visibility"] == "public" and created["protected"] is True
    assert created["owner"] == "admin-p" and created["display_name"] == "Test"
    assert created["schema"] == "/v2/schemas/metadefs/namespace"
    assert created["self"] == f"{NS}/OS::Compute::Test"
    assert created["resource_type_associations"][0]["name"] == "OS::Glance::Image"
    assert created["created_at"].endswith("Z")

    listed = ok(call(app, NS))
    assert [n["namespace"] for n in listed["namespaces"]] == ["OS::Compute::Test"]
    assert listed["schema"] == "/v2/schemas/metadefs/namespaces"

    refused = call(app, f"{NS}/OS::Compute::Test", "DELETE")
    assert refused.status_int == 403 and refused.json["code"] == "403 Forbidden"
    assert ok(call(app, f"{NS}/OS::Compute::Test"))["protected"] is True

    updated = ok(call(app, f"{NS}/OS::Compute::Test", "PUT", body={
        "namespace": "OS::Compute::Renamed", "visibility": "private", "protected": False,
        "description": "Tempest", "created_at": "ignored", "self": "ignored"}))
    assert updated["namespace"] == "OS::Compute::Renamed"
    assert updated["visibility"] == "private" and updated["protected"] is False
    assert "display_name" not in updated  # a PUT replaces the fields it omits
    assert call(app, f"{NS}/OS::Compute::Test").status_int == 404

    assert call(app, f"{NS}/OS::Compute::Renamed", "DELETE").status_int == 204
    assert call(app, f"{NS}/OS::Compute::Renamed").status_int == 404
    assert ok(call(app, NS))["namespaces"] == []


def test_duplicates_are_409_and_change_nothing(app):
    make_namespace(app, "dup", description="first")
    resp = call(app, NS, "POST", body={"namespace": "dup", "description": "second"})
    assert resp.status_int == 409 and resp.json["code"] == "409 Conflict"
    assert ok(call(app, f"{NS}/dup"))["description"] == "first"

    ok(call(app, f"{NS}/dup/objects", "POST", body={"name": "o"}), 201)
    assert call(app, f"{NS}/dup/objects", "POST", body={"name": "o"}).status_int == 409
    ok(call(app, f"{NS}/dup/tags/t", "POST"), 201)
    assert call(app, f"{NS}/dup/tags/t", "POST").status_int == 409
    prop = {"name": "p", "title": "P", "type": "string"}
    ok(call(app, f"{NS}/dup/properties", "POST", body=prop), 201)
    assert call(app, f"{NS}/dup/properties", "POST", body=prop).status_int == 409
    ok(call(app, f"{NS}/dup/resource_types", "POST", body={"name": "OS::Nova::Flavor"}), 201)
    assert call(app, f"{NS}/dup/resource_types", "POST",
                body={"name": "OS::Nova::Flavor"}).status_int == 409
    # a rename onto a taken name is a conflict too, and renames nothing
    make_namespace(app, "other")
    assert call(app, f"{NS}/other", "PUT", body={"namespace": "dup"}).status_int == 409
    assert ok(call(app, f"{NS}/other"))["namespace"] == "other"
    # bulk tags naming one tag twice: refused whole, the old tags stay
    resp = call(app, f"{NS}/dup/tags", "POST", body={"tags": [{"name": "a"}, {"name": "a"}]})
    assert resp.status_int == 409
    assert names(app, f"{NS}/dup/tags", "tags") == ["t"]


def test_non_admin_writes_are_403_and_change_nothing(app):
    make_namespace(app, "public-ns", description="keep")
    assert call(app, NS, "POST", ALICE, {"namespace": "mine"}).status_int == 403
    assert call(app, f"{NS}/mine", token=ADMIN).status_int == 404
    for method, path, body in (
            ("PUT", f"{NS}/public-ns", {"namespace": "public-ns", "description": "x"}),
            ("DELETE", f"{NS}/public-ns", None),
            ("POST", f"{NS}/public-ns/objects", {"name": "o"}),
            ("POST", f"{NS}/public-ns/tags/t", None),
            ("POST", f"{NS}/public-ns/tags", {"tags": [{"name": "t"}]}),
            ("POST", f"{NS}/public-ns/properties", {"name": "p", "title": "P",
                                                    "type": "string"}),
            ("POST", f"{NS}/public-ns/resource_types", {"name": "OS::Nova::Server"})):
        resp = call(app, path, method, ALICE, body)
        assert resp.status_int == 403, (method, path, resp.text)
        assert "not authorized" in resp.json["message"]
    shown = ok(call(app, f"{NS}/public-ns", token=ALICE))
    assert shown["description"] == "keep"
    assert not {"objects", "tags", "properties", "resource_type_associations"} & set(shown)


def test_bad_input_is_400_and_changes_nothing(app):
    for body in ({"namespace": ""}, {"namespace": "a/b"}, {"namespace": "x" * 81},
                 {"namespace": "v", "visibility": "community"},
                 {"namespace": "p", "protected": "yes"}, {"namespace": "e", "extra": 1},
                 {"display_name": "no namespace"}, ["namespace"]):
        resp = call(app, NS, "POST", body=body)
        assert resp.status_int == 400, (body, resp.text)
        assert resp.json["code"] == "400 Bad Request"
    assert call(app, NS, "POST", raw=b"{not json").status_int == 400
    assert ok(call(app, NS))["namespaces"] == []

    make_namespace(app, "ns")
    for path, body in ((f"{NS}/ns/properties", {"name": "p", "type": "string"}),
                       (f"{NS}/ns/properties", {"name": "p", "title": "P", "type": "uuid"}),
                       (f"{NS}/ns/objects", {"name": "o", "required": "x"}),
                       (f"{NS}/ns/objects", {"description": "nameless"}),
                       (f"{NS}/ns/tags", {"tags": [{"name": ""}]}),
                       (f"{NS}/ns/tags", {"tags": "a"}),
                       (f"{NS}/ns/resource_types", {"prefix": "hw_"})):
        assert call(app, path, "POST", body=body).status_int == 400, (path, body)
    assert call(app, NS + "?limit=x").status_int == 400
    assert call(app, NS + "?sort_dir=up").status_int == 400
    assert call(app, NS + "?visibility=shared").status_int == 400
    shown = ok(call(app, f"{NS}/ns"))
    assert not {"objects", "tags", "properties", "resource_type_associations"} & set(shown)
    # a bad PUT leaves the namespace as it was
    assert call(app, f"{NS}/ns", "PUT", body={"namespace": "ns",
                                             "visibility": "nope"}).status_int == 400
    assert ok(call(app, f"{NS}/ns"))["visibility"] == "public"


def test_unusable_names_are_missing_and_nul_text_is_refused(app):
    make_namespace(app, "ns")
    for path in (f"{NS}/a%00b", f"{NS}/{'x' * 300}", f"{NS}/ns/tags/a%00b",
                 f"{NS}/ns/objects/{'y' * 300}", f"{NS}?marker=a%00b"):
        assert call(app, path).status_int == 404, path
    assert ok(call(app, f"{NS}?resource_types=a%00b"))["namespaces"] == []
    assert call(app, f"{NS}/ns/tags/a%00b", "DELETE").status_int == 404
    assert call(app, f"{NS}/ns/resource_types/a%00b", "DELETE").status_int == 404
    for path, body in ((NS, {"namespace": "n", "description": "nul\x00in"}),
                       (f"{NS}/ns/objects", {"name": "o", "description": "\x00"}),
                       (f"{NS}/ns/tags", {"tags": [{"name": "a\x00"}]})):
        assert call(app, path, "POST", body=body).status_int == 400, body
    assert [n["namespace"] for n in ok(call(app, NS))["namespaces"]] == ["ns"]


def test_private_namespaces_are_their_owners_alone(app):
    make_namespace(app, "alice-private", visibility="private", owner="proj-a")
    make_namespace(app, "everyone", visibility="public")
    ok(call(app, f"{NS}/alice-private/tags/secret", "POST"), 201)

    assert sorted(n["namespace"] for n in ok(call(app, NS, token=ALICE))["namespaces"]) == [
        "alice-private", "everyone"]
    assert [n["namespace"] for n in ok(call(app, NS, token=BOB))["namespaces"]] == [
        "everyone"]
    assert ok(call(app, f"{NS}/alice-private", token=ALICE))["owner"] == "proj-a"
    for path in ("", "/tags", "/tags/secret", "/objects", "/properties", "/resource_types"):
        resp = call(app, f"{NS}/alice-private{path}", token=BOB)
        assert resp.status_int == 404, (path, resp.text)
        assert "alice-private" in resp.json["message"] or path
    # admin sees everything; the visibility filter narrows it
    assert len(ok(call(app, NS))["namespaces"]) == 2
    private = ok(call(app, NS + "?visibility=private"))["namespaces"]
    assert [n["namespace"] for n in private] == ["alice-private"]


def test_objects_properties_and_their_updates(app):
    make_namespace(app, "ns")
    obj = ok(call(app, f"{NS}/ns/objects", "POST", body={
        "name": "CPU", "description": "cpu", "required": ["cores"],
        "properties": {"cores": {"title": "Cores", "type": "integer", "minimum": 1}}}), 201)
    assert obj["self"] == f"{NS}/ns/objects/CPU"
    assert obj["properties"]["cores"]["minimum"] == 1
    renamed = ok(call(app, f"{NS}/ns/objects/CPU", "PUT", body={"name": "Processor"}))
    assert renamed["name"] == "Processor" and renamed["properties"] == {}
    assert names(app, f"{NS}/ns/objects", "objects") == ["Processor"]
    assert call(app, f"{NS}/ns/objects/CPU").status_int == 404
    assert call(app, f"{NS}/ns/objects/Processor", "DELETE").status_int == 204
    assert names(app, f"{NS}/ns/objects", "objects") == []

    enum = ["kvm", "qemu"]
    prop = ok(call(app, f"{NS}/ns/properties", "POST", body={
        "name": "OS::Glance::Image", "title": "Hypervisor", "type": "string",
        "enum": enum}), 201)
    assert prop == {"name": "OS::Glance::Image", "title": "Hypervisor", "type": "string",
                    "enum": enum}
    listed = ok(call(app, f"{NS}/ns/properties"))["properties"]
    assert listed == {"OS::Glance::Image": {"title": "Hypervisor", "type": "string",
                                            "enum": enum}}
    updated = ok(call(app, f"{NS}/ns/properties/OS::Glance::Image", "PUT", body={
        "name": "OS::Glance::Image", "title": "Changed", "type": "string"}))
    assert updated["title"] == "Changed" and "enum" not in updated
    assert ok(call(app, f"{NS}/ns/properties/OS::Glance::Image"))["title"] == "Changed"
    assert call(app, f"{NS}/ns/properties/OS::Glance::Image", "DELETE").status_int == 204
    assert ok(call(app, f"{NS}/ns/properties"))["properties"] == {}
    assert call(app, f"{NS}/ns/properties/OS::Glance::Image", "DELETE").status_int == 404


def test_tags_single_bulk_update_delete(app):
    make_namespace(app, "ns")
    bulk = ok(call(app, f"{NS}/ns/tags", "POST", body={"tags": [{"name": "a"},
                                                              {"name": "b"}]}), 201)
    assert bulk == {"tags": [{"name": "a"}, {"name": "b"}]}
    # a second bulk create replaces, unless asked to append
    ok(call(app, f"{NS}/ns/tags", "POST", body={"tags": [{"name": "c"}]}), 201)
    assert names(app, f"{NS}/ns/tags", "tags") == ["c"]
    ok(call(app, f"{NS}/ns/tags", "POST", body={"tags": [{"name": "d"}]},
            headers={"X-Openstack-Append": "True"}), 201)
    assert names(app, f"{NS}/ns/tags", "tags") == ["c", "d"]

    tag = ok(call(app, f"{NS}/ns/tags/e", "POST"), 201)
    assert tag["name"] == "e" and tag["created_at"]
    assert ok(call(app, f"{NS}/ns/tags/e"))["name"] == "e"
    assert ok(call(app, f"{NS}/ns/tags/e", "PUT", body={"name": "f"}))["name"] == "f"
    assert call(app, f"{NS}/ns/tags/e").status_int == 404
    assert call(app, f"{NS}/ns/tags/f", "PUT", body={"name": "c"}).status_int == 409
    assert call(app, f"{NS}/ns/tags/f", "DELETE").status_int == 204
    assert names(app, f"{NS}/ns/tags", "tags") == ["c", "d"]
    assert call(app, f"{NS}/ns/tags", "DELETE").status_int == 204
    assert ok(call(app, f"{NS}/ns/tags"))["tags"] == []


def test_protected_namespace_keeps_its_contents(app):
    make_namespace(app, "locked", protected=True)
    ok(call(app, f"{NS}/locked/tags/t", "POST"), 201)
    ok(call(app, f"{NS}/locked/objects", "POST", body={"name": "o"}), 201)
    ok(call(app, f"{NS}/locked/resource_types", "POST", body={"name": "OS::Nova::Server"}),
       201)
    for path in ("/tags/t", "/tags", "/objects/o", "/objects",
                 "/resource_types/OS::Nova::Server"):
        assert call(app, f"{NS}/locked{path}", "DELETE").status_int == 403, path
    shown = ok(call(app, f"{NS}/locked"))
    assert [t["name"] for t in shown["tags"]] == ["t"]
    assert [o["name"] for o in shown["objects"]] == ["o"]
    assert [a["name"] for a in shown["resource_type_associations"]] == ["OS::Nova::Server"]


def test_resource_types_and_associations(app):
    types = names(app, "/v2/metadefs/resource_types", "resource_types")
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= set(types)
    make_namespace(app, "flavor-ns")
    make_namespace(app, "image-ns")
    assoc = ok(call(app, f"{NS}/flavor-ns/resource_types", "POST",
                    body={"name": "OS::Nova::Flavor", "prefix": "hw:"}), 201)
    assert assoc["name"] == "OS::Nova::Flavor" and assoc["prefix"] == "hw:"
    # a resource type named for the first time joins the list
    ok(call(app, f"{NS}/image-ns/resource_types", "POST", body={"name": "OS::New::Thing"}),
       201)
    assert "OS::New::Thing" in names(app, "/v2/metadefs/resource_types", "resource_types")

    filtered = ok(call(app, NS + "?resource_types=OS::Nova::Flavor,OS::Nova::Server"))
    assert [n["namespace"] for n in filtered["namespaces"]] == ["flavor-ns"]
    assert names(app, f"{NS}/flavor-ns/resource_types",
                 "resource_type_associations") == ["OS::Nova::Flavor"]
    ok(call(app, f"{NS}/flavor-ns/properties", "POST",
            body={"name": "cpu_cores", "title": "Cores", "type": "integer"}), 201)
    shown = ok(call(app, f"{NS}/flavor-ns/properties/hw:cpu_cores"
                         "?resource_type=OS::Nova::Flavor"))
    assert shown["name"] == "cpu_cores"

    assert call(app, f"{NS}/flavor-ns/resource_types/OS::Nova::Flavor",
                "DELETE").status_int == 204
    assert names(app, f"{NS}/flavor-ns/resource_types", "resource_type_associations") == []
    assert call(app, f"{NS}/flavor-ns/resource_types/OS::Nova::Flavor",
                "DELETE").status_int == 404
    assert "OS::Nova::Flavor" in names(app, "/v2/metadefs/resource_types", "resource_types")


def test_namespace_list_pages_and_sorts(app):
    for name in ("a", "b", "c"):
        make_namespace(app, name)
    first = ok(call(app, NS + "?limit=2&sort_key=namespace&sort_dir=asc"))
    assert [n["namespace"] for n in first["namespaces"]] == ["a", "b"]
    assert "marker=b" in first["next"]
    rest = ok(call(app, first["next"]))
    assert [n["namespace"] for n in rest["namespaces"]] == ["c"] and "next" not in rest
    assert call(app, NS + "?marker=nope").status_int == 404


def test_namespace_delete_takes_its_contents(app):
    make_namespace(app, "full", properties={"p": {"title": "P", "type": "string"}},
                   objects=[{"name": "o"}], tags=[{"name": "t"}])
    shown = ok(call(app, f"{NS}/full"))
    assert shown["properties"] == {"p": {"title": "P", "type": "string"}}
    assert call(app, f"{NS}/full", "DELETE").status_int == 204
    make_namespace(app, "full")
    shown = ok(call(app, f"{NS}/full"))
    assert not {"objects", "tags", "properties"} & set(shown)


@pytest.mark.parametrize("kind,name", [
    ("namespace", "namespace"), ("namespaces", "namespaces"), ("object", "object"),
    ("objects", "objects"), ("property", "property"), ("properties", "properties"),
    ("tag", "tag"), ("tags", "tags"), ("resource_type", "resource_type_association"),
    ("resource_types", "resource_type_associations")])
def test_schemas(app, kind, name):
    assert ok(call(app, f"/v2/schemas/metadefs/{kind}", token=BOB))["name"] == name
