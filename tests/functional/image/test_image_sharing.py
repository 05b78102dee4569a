"""Image members, tags, deactivation and the version document: Glance v2 through WSGI.

Alice owns the images; Bob is the project she shares with; Carol is a project
nobody shares with. Every refused call is checked to have changed nothing.
"""

from __future__ import annotations

import pytest
from test_image_api import ADMIN, ALICE, BOB, PATCH, call, create, fake_authenticate

from transcell.api.image import make_app
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

CAROL = "carol:proj-c:member"
BOB_READER = "bobr:proj-b:reader"


@pytest.fixture
def app(tmp_path):
    return make_app(ImageService(ChunkStore(str(tmp_path / "store"), 64 * 1024)),
                    fake_authenticate)


def ids(app, token, query=""):
    resp = call(app, f"/v2/images{query}", token=token)
    assert resp.status_int == 200, resp.text
    return [i["id"] for i in resp.json["images"]]


def members_of(app, image_id, token=ALICE):
    resp = call(app, f"/v2/images/{image_id}/members", token=token)
    assert resp.status_int == 200, resp.text
    assert resp.json["schema"] == "/v2/schemas/members"
    return {m["member_id"]: m["status"] for m in resp.json["members"]}


def share(app, image_id, project="proj-b", token=ALICE):
    return call(app, f"/v2/images/{image_id}/members", "POST", token, {"member": project})


def set_status(app, image_id, status, member="proj-b", token=BOB):
    return call(app, f"/v2/images/{image_id}/members/{member}", "PUT", token,
                {"status": status})


def with_data(app, token=ALICE, data=b"sharing" * 1000, **fields):
    image = create(app, token, **fields)
    resp = call(app, f"/v2/images/{image['id']}/file", "PUT", token, data)
    assert resp.status_int == 204, resp.text
    return image, data


def test_images_are_shared_by_default_visible_only_to_their_owner(app):
    image = create(app, name="mine")
    assert image["visibility"] == "shared"
    assert image["id"] in ids(app, ALICE)
    for other in (BOB, CAROL):
        assert image["id"] not in ids(app, other)
        assert call(app, f"/v2/images/{image['id']}", token=other).status_int == 404


def test_member_lifecycle(app):
    image = create(app, name="to-share")
    resp = share(app, image["id"])
    assert resp.status_int == 200, resp.text
    member = resp.json
    assert member["image_id"] == image["id"] and member["member_id"] == "proj-b"
    assert member["status"] == "pending" and member["schema"] == "/v2/schemas/member"
    assert member["created_at"] and member["updated_at"]

    # pending: Bob can show the image, but his default list leaves it out
    assert call(app, f"/v2/images/{image['id']}", token=BOB).json["id"] == image["id"]
    assert image["id"] not in ids(app, BOB)
    assert ids(app, BOB, "?visibility=shared&member_status=pending") == [image["id"]]
    assert image["id"] in ids(app, BOB, "?member_status=all")
    assert image["id"] not in ids(app, CAROL, "?member_status=all")
    assert call(app, "/v2/images?member_status=maybe", token=BOB).status_int == 400

    # accepted: listed by default; a reader of Bob's project sees it too
    resp = set_status(app, image["id"], "accepted")
    assert resp.status_int == 200 and resp.json["status"] == "accepted"
    assert image["id"] in ids(app, BOB)
    assert image["id"] in ids(app, BOB_READER)
    assert image["id"] in ids(app, BOB, "?visibility=shared")
    assert members_of(app, image["id"]) == {"proj-b": "accepted"}
    shown = call(app, f"/v2/images/{image['id']}/members/proj-b", token=BOB_READER)
    assert shown.status_int == 200 and shown.json["status"] == "accepted"

    # rejected: out of the default list again, still there on request
    assert set_status(app, image["id"], "rejected").json["status"] == "rejected"
    assert image["id"] not in ids(app, BOB)
    assert ids(app, BOB, "?member_status=rejected") == [image["id"]]

    # removed: Bob loses the image entirely
    resp = call(app, f"/v2/images/{image['id']}/members/proj-b", "DELETE", ALICE)
    assert resp.status_int == 204
    assert members_of(app, image["id"]) == {}
    assert call(app, f"/v2/images/{image['id']}", token=BOB).status_int == 404
    assert call(app, f"/v2/images/{image['id']}/members/proj-b", "DELETE",
                ALICE).status_int == 404


def test_a_member_sees_only_its_own_membership(app):
    image = create(app, name="two-members")
    assert share(app, image["id"], "proj-b").status_int == 200
    assert share(app, image["id"], "proj-c").status_int == 200
    assert members_of(app, image["id"]) == {"proj-b": "pending", "proj-c": "pending"}
    assert members_of(app, image["id"], BOB) == {"proj-b": "pending"}
    other = call(app, f"/v2/images/{image['id']}/members/proj-c", token=BOB)
    assert other.status_int == 404
    assert members_of(app, image["id"], ADMIN) == {"proj-b": "pending", "proj-c": "pending"}


def test_only_the_owner_shares_and_only_the_member_answers(app):
    image = create(app, name="guarded")
    assert share(app, image["id"]).status_int == 200

    # the member cannot add projects or remove itself
    resp = share(app, image["id"], "proj-c", token=BOB)
    assert resp.status_int == 403 and resp.json["code"] == "403 Forbidden"
    resp = call(app, f"/v2/images/{image['id']}/members/proj-b", "DELETE", BOB)
    assert resp.status_int == 403
    # the owner cannot accept on the member's behalf; the admin can
    resp = set_status(app, image["id"], "accepted", token=ALICE)
    assert resp.status_int == 403
    # a reader of the member project cannot answer either
    assert set_status(app, image["id"], "accepted", token=BOB_READER).status_int == 403
    assert members_of(app, image["id"]) == {"proj-b": "pending"}
    assert set_status(app, image["id"], "accepted", token=ADMIN).status_int == 200
    assert members_of(app, image["id"]) == {"proj-b": "accepted"}

    # a project the image is not shared with learns nothing
    for method, path, body in (
            ("GET", "/members", None), ("POST", "/members", {"member": "proj-c"}),
            ("GET", "/members/proj-b", None), ("PUT", "/members/proj-c", {"status": "accepted"}),
            ("DELETE", "/members/proj-b", None)):
        resp = call(app, f"/v2/images/{image['id']}{path}", method, CAROL, body)
        assert resp.status_int == 404, (method, path, resp.text)
    assert members_of(app, image["id"]) == {"proj-b": "accepted"}


def test_bad_member_requests_change_nothing(app):
    image = create(app, name="strict")
    assert share(app, image["id"]).status_int == 200
    resp = share(app, image["id"])
    assert resp.status_int == 409 and "already associated" in resp.json["message"]
    assert set_status(app, image["id"], "notavalidstatus").status_int == 400
    for body in ({}, {"member": ""}, {"member": 5}, {"status": "pending"}, []):
        resp = call(app, f"/v2/images/{image['id']}/members", "POST", ALICE, body)
        assert resp.status_int == 400, body
    assert set_status(app, image["id"], "accepted", member="proj-z", token=ADMIN
                      ).status_int == 404
    assert members_of(app, image["id"]) == {"proj-b": "pending"}
    missing = "00000000-0000-0000-0000-000000000000"
    assert call(app, f"/v2/images/{missing}/members").status_int == 404


def test_only_shared_images_have_members(app):
    private = create(app, name="private", visibility="private")
    resp = share(app, private["id"])
    assert resp.status_int == 403 and resp.json["message"] == "Only shared images have members."
    assert call(app, f"/v2/images/{private['id']}/members").status_int == 403
    # an image made private keeps its members out, and they stop seeing it
    image = create(app, name="was-shared")
    assert share(app, image["id"]).status_int == 200
    resp = call(app, f"/v2/images/{image['id']}", "PATCH", ALICE,
                [{"op": "replace", "path": "/visibility", "value": "private"}],
                content_type=PATCH)
    assert resp.status_int == 200, resp.text
    assert call(app, f"/v2/images/{image['id']}", token=BOB).status_int == 404
    assert "members" not in resp.json


def test_members_are_never_shown_or_set_as_properties(app):
    image = create(app, name="no-leak")
    assert share(app, image["id"]).status_int == 200
    shown = call(app, f"/v2/images/{image['id']}").json
    assert "members" not in shown
    resp = call(app, f"/v2/images/{image['id']}", "PATCH", ALICE,
                [{"op": "add", "path": "/members", "value": "x"}], content_type=PATCH)
    assert resp.status_int == 403
    resp = call(app, "/v2/images", "POST", ALICE, {"name": "x", "members": "y"})
    assert resp.status_int == 403


def test_tags_one_at_a_time(app):
    image = create(app, name="tagged", tags=["keep"])
    path = f"/v2/images/{image['id']}/tags"
    assert call(app, f"{path}/fresh", "PUT").status_int == 204
    assert call(app, f"{path}/fresh", "PUT").status_int == 204  # idempotent
    assert call(app, f"/v2/images/{image['id']}").json["tags"] == ["keep", "fresh"]
    assert ids(app, ALICE, "?tag=fresh&tag=keep") == [image["id"]]
    assert call(app, f"{path}/keep", "DELETE").status_int == 204
    resp = call(app, f"{path}/keep", "DELETE")
    assert resp.status_int == 404 and "keep" in resp.json["message"]
    assert call(app, f"/v2/images/{image['id']}").json["tags"] == ["fresh"]
    assert call(app, f"{path}/{'x' * 256}", "PUT").status_int == 400
    missing = "00000000-0000-0000-0000-000000000000"
    assert call(app, f"/v2/images/{missing}/tags/t", "PUT").status_int == 404


def test_tags_of_someone_elses_image_are_refused(app):
    public = create(app, ADMIN, name="public", visibility="public")
    assert call(app, f"/v2/images/{public['id']}/tags/mine", "PUT", BOB).status_int == 403
    assert call(app, f"/v2/images/{public['id']}/tags/mine", "PUT", ADMIN).status_int == 204
    assert call(app, f"/v2/images/{public['id']}/tags/mine", "DELETE",
                BOB).status_int == 403
    assert call(app, f"/v2/images/{public['id']}", token=BOB).json["tags"] == ["mine"]
    # a member of a shared image may use it, not tag it
    shared = create(app, name="shared")
    assert share(app, shared["id"]).status_int == 200
    assert call(app, f"/v2/images/{shared['id']}/tags/t", "PUT", BOB).status_int == 403
    assert call(app, f"/v2/images/{shared['id']}", token=BOB).json["tags"] == []


def test_deactivated_image_data_is_refused_to_all_but_admins(app):
    image, data = with_data(app, name="to-deactivate")
    assert share(app, image["id"]).status_int == 200
    assert set_status(app, image["id"], "accepted").status_int == 200
    action = f"/v2/images/{image['id']}/actions"
    assert call(app, f"{action}/deactivate", "POST").status_int == 204
    assert call(app, f"{action}/deactivate", "POST").status_int == 204  # already is
    assert call(app, f"/v2/images/{image['id']}").json["status"] == "deactivated"
    for token in (ALICE, BOB):
        resp = call(app, f"/v2/images/{image['id']}/file", token=token)
        assert resp.status_int == 403 and "deactivated" in resp.json["message"]
    admin = call(app, f"/v2/images/{image['id']}/file", token=ADMIN)
    assert admin.status_int == 200 and admin.body == data
    # the member may not reactivate it; the owner may
    assert call(app, f"{action}/reactivate", "POST", BOB).status_int == 403
    assert call(app, f"{action}/reactivate", "POST").status_int == 204
    assert call(app, f"/v2/images/{image['id']}").json["status"] == "active"
    assert call(app, f"/v2/images/{image['id']}/file", token=BOB).body == data


def test_only_active_images_deactivate(app):
    queued = create(app, name="queued")
    action = f"/v2/images/{queued['id']}/actions"
    for verb in ("deactivate", "reactivate"):
        resp = call(app, f"{action}/{verb}", "POST")
        assert resp.status_int == 403 and "queued" in resp.json["message"]
    assert call(app, f"/v2/images/{queued['id']}").json["status"] == "queued"
    public, _ = with_data(app, ADMIN, name="pub", visibility="public")
    resp = call(app, f"/v2/images/{public['id']}/actions/deactivate", "POST", BOB)
    assert resp.status_int == 403
    assert call(app, f"/v2/images/{public['id']}", token=BOB).json["status"] == "active"
    missing = "00000000-0000-0000-0000-000000000000"
    assert call(app, f"/v2/images/{missing}/actions/deactivate", "POST").status_int == 404


def test_a_deactivated_image_can_be_deleted_and_not_uploaded_to(app):
    image, _ = with_data(app, name="gone")
    assert call(app, f"/v2/images/{image['id']}/actions/deactivate", "POST").status_int == 204
    resp = call(app, f"/v2/images/{image['id']}/file", "PUT", ALICE, b"more")
    assert resp.status_int == 409
    assert call(app, f"/v2/images/{image['id']}", "DELETE").status_int == 204


@pytest.mark.parametrize(("path", "status"), [("/", 300), ("/versions", 200)])
def test_version_document(app, path, status):
    resp = call(app, path, token=None)
    assert resp.status_int == status
    versions = {v["id"]: v["status"] for v in resp.json["versions"]}
    assert versions["v2.9"] == "CURRENT" and versions["v2.0"] == "SUPPORTED"


def test_schemas_of_members(app):
    assert call(app, "/v2/schemas/member").json["name"] == "member"
    members = call(app, "/v2/schemas/members").json
    assert members["name"] == "members"
    assert members["properties"]["members"]["items"]["properties"]["status"]["enum"] == [
        "pending", "accepted", "rejected"]


def test_reserved_properties_and_empty_ids(app):
    resp = call(app, "/v2/images", "POST", ALICE, {"name": "x", "os_glance_foo": "bar"})
    assert resp.status_int == 403
    image = create(app, name="plain")
    resp = call(app, f"/v2/images/{image['id']}", "PATCH", ALICE,
                [{"op": "add", "path": "/os_glance_foo", "value": "bar"}], content_type=PATCH)
    assert resp.status_int == 403
    assert "os_glance_foo" not in call(app, f"/v2/images/{image['id']}").json
    assert call(app, "/v2/images/").status_int == 404
    assert call(app, "/v2/images/", "DELETE").status_int == 404
    assert call(app, "/v2/images", "DELETE").status_int == 405
    assert call(app, "/v2/info/import").json["import-methods"]["value"] == []
