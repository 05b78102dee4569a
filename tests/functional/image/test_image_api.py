"""The Glance v2 API, driven through WSGI as a client would."""

from __future__ import annotations

import hashlib
import io
import json
import os

import jsonschema
import pytest
import webob

from transcell import exception
from transcell.api.image import make_app
from transcell.context import RequestContext
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

CHUNK = 64 * 1024
ADMIN = "admin:admin-p:admin"
ALICE = "alice:proj-a:member"
BOB = "bob:proj-b:member"
PATCH = "application/openstack-images-v2.1-json-patch"


def fake_authenticate(req):
    token = req.headers.get("X-Auth-Token")
    if not token:
        raise exception.NotAuthenticated()
    user, project, roles = token.split(":")
    return RequestContext(user_id=user, project_id=project, roles=roles.split(","))


@pytest.fixture
def app(tmp_path):
    return make_app(ImageService(ChunkStore(str(tmp_path / "store"), CHUNK)), fake_authenticate)


def call(app, path, method="GET", token=ALICE, body=None, content_type=None, **kw):
    req = webob.Request.blank(path, method=method, base_url="http://cloud:8774/image", **kw)
    if token:
        req.headers["X-Auth-Token"] = token
    if body is not None:
        req.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        req.content_type = content_type or ("application/octet-stream"
                                            if isinstance(body, bytes) else "application/json")
    return req.get_response(app)


def create(app, token=ALICE, **fields):
    fields.setdefault("disk_format", "raw")
    fields.setdefault("container_format", "bare")
    resp = call(app, "/v2/images", "POST", token, fields)
    assert resp.status_int == 201, resp.text
    return resp.json


def test_version_document_needs_no_token(app):
    for path, status in (("/", 300), ("/versions", 200)):
        resp = call(app, path, token=None)
        assert resp.status_int == status
        current = resp.json["versions"][0]
        assert current["id"] == "v2.9" and current["status"] == "CURRENT"
        assert current["links"] == [{"rel": "self", "href": "http://cloud:8774/image/v2/"}]


def test_requests_without_a_token_get_401(app):
    resp = call(app, "/v2/images", token=None)
    assert resp.status_int == 401
    assert resp.json["code"] == "401 Unauthorized" and resp.json["message"]


def test_image_lifecycle(app):
    image = create(app, name="cirros", os_distro="cirros", tags=["boot"])
    assert image["status"] == "queued" and image["visibility"] == "shared"
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["os_distro"] == "cirros" and image["os_hidden"] is False
    assert "chunks" not in image and "chunk_size" not in image

    resp = call(app, f"/v2/images/{image['id']}/file")
    assert resp.status_int == 204

    data = os.urandom(3 * CHUNK + 7)
    resp = call(app, f"/v2/images/{image['id']}/file", "PUT", body=data)
    assert resp.status_int == 204, resp.text

    shown = call(app, f"/v2/images/{image['id']}").json
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha256"
    assert shown["os_hash_value"] == hashlib.sha256(data).hexdigest()
    assert "chunks" not in shown

    resp = call(app, f"/v2/images/{image['id']}/file")
    assert resp.status_int == 200
    assert resp.content_type == "application/octet-stream"
    assert resp.headers["Content-MD5"] == shown["checksum"]
    assert resp.body == data

    resp = call(app, f"/v2/images/{image['id']}/file", "PUT", body=b"again")
    assert resp.status_int == 409

    resp = call(app, f"/v2/images/{image['id']}", "DELETE")
    assert resp.status_int == 204
    assert call(app, f"/v2/images/{image['id']}").status_int == 404


def test_show_by_name_is_404(app):
    create(app, name="cirros")
    resp = call(app, "/v2/images/cirros")
    assert resp.status_int == 404
    assert resp.json == {"message": "Image cirros could not be found.",
                         "code": "404 Not Found", "title": "Not Found"}


def test_list_filters_and_paging(app):
    a = create(app, name="alpha")
    b = create(app, name="beta")
    create(app, name="gamma")
    hidden = create(app, BOB, name="bobs")

    body = call(app, "/v2/images").json
    assert body["first"] == "/v2/images" and body["schema"] == "/v2/schemas/images"
    assert {i["name"] for i in body["images"]} == {"alpha", "beta", "gamma"}
    assert "next" not in body

    assert [i["id"] for i in call(app, "/v2/images?name=beta").json["images"]] == [b["id"]]
    picked = call(app, f"/v2/images?id=in:{a['id']},{b['id']},{hidden['id']}").json
    assert {i["name"] for i in picked["images"]} == {"alpha", "beta"}
    assert call(app, "/v2/images?status=active").json["images"] == []
    assert call(app, "/v2/images?visibility=shared&owner=proj-a").json["images"]

    page = call(app, "/v2/images?limit=2&sort_key=name&sort_dir=asc").json
    assert [i["name"] for i in page["images"]] == ["alpha", "beta"]
    rest = call(app, page["next"]).json
    assert [i["name"] for i in rest["images"]] == ["gamma"]

    assert call(app, "/v2/images?limit=x").status_int == 400
    assert call(app, "/v2/images?visibility=everyone").status_int == 400


def test_bad_json_is_400_and_creates_nothing(app):
    resp = call(app, "/v2/images", "POST", body=b"{not json", content_type="application/json")
    assert resp.status_int == 400
    assert "Malformed" in resp.json["message"] and resp.json["title"] == "Bad Request"
    resp = call(app, "/v2/images", "POST", body={"name": "x", "disk_format": "floppy"})
    assert resp.status_int == 400 and "disk_format" in resp.json["message"]
    assert call(app, "/v2/images", "POST", body=["a"]).status_int == 400
    assert call(app, "/v2/images").json["images"] == []


def test_non_admins_cannot_publish(app):
    resp = call(app, "/v2/images", "POST", body={"name": "x", "visibility": "public"})
    assert resp.status_int == 403
    assert create(app, ADMIN, name="pub", visibility="public")["visibility"] == "public"


def test_patch_replace_add_remove(app):
    image = create(app, name="old", colour="red")
    ops = [{"op": "replace", "path": "/name", "value": "new"},
           {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
           {"op": "remove", "path": "/colour"},
           {"op": "replace", "path": "/min_disk", "value": 2}]
    resp = call(app, f"/v2/images/{image['id']}", "PATCH", body=ops, content_type=PATCH)
    assert resp.status_int == 200, resp.text
    assert (resp.json["name"], resp.json["hw_disk_bus"], resp.json["min_disk"]) == (
        "new", "virtio", 2)
    assert "colour" not in resp.json

    before = call(app, f"/v2/images/{image['id']}").json
    for ops, code in (
            ([{"op": "replace", "path": "/name", "value": "x"},
              {"op": "replace", "path": "/min_ram", "value": -5}], 400),
            ([{"op": "replace", "path": "/status", "value": "active"}], 403),
            ([{"op": "remove", "path": "/name"}], 403),
            ([{"op": "remove", "path": "/nothing"}], 409),
            ([{"op": "move", "path": "/name", "from": "/x"}], 400),
            ([{"op": "replace", "path": "/name"}], 400),
            ([{"op": "replace", "path": "/tags", "value": 50}], 400),
            ([{"op": "replace", "path": "/tags", "value": "a,b"}], 400),
            ({"name": "x"}, 400)):
        resp = call(app, f"/v2/images/{image['id']}", "PATCH", body=ops, content_type=PATCH)
        assert resp.status_int == code, (ops, resp.text)
        assert resp.json["message"]
    assert call(app, f"/v2/images/{image['id']}").json == before

    resp = call(app, f"/v2/images/{image['id']}", "PATCH", body=[], content_type="text/plain")
    assert resp.status_int == 415


def test_protected_image_cannot_be_deleted(app):
    image = create(app, name="keep", protected=True)
    resp = call(app, f"/v2/images/{image['id']}", "DELETE")
    assert resp.status_int == 403 and "protected" in resp.json["message"]


class NoSeekInput:
    """A socket-like WSGI input that records how much each read asks for."""

    def __init__(self, data):
        self.stream = io.BytesIO(data)
        self.reads = []

    def read(self, size=-1):
        self.reads.append(size)
        return self.stream.read(size)

    def readline(self, size=-1):
        return self.stream.readline(size)


def test_upload_is_streamed_not_buffered(app):
    image = create(app)
    data = os.urandom(5 * CHUNK)
    wsgi_input = NoSeekInput(data)
    req = webob.Request.blank(f"/v2/images/{image['id']}/file", method="PUT")
    req.headers["X-Auth-Token"] = ALICE
    req.environ.update({"wsgi.input": wsgi_input, "CONTENT_LENGTH": str(len(data)),
                        "CONTENT_TYPE": "application/octet-stream"})
    assert req.get_response(app).status_int == 204
    assert wsgi_input.reads and max(wsgi_input.reads) <= CHUNK
    assert call(app, f"/v2/images/{image['id']}/file").body == data


def test_chunked_upload(app):
    image = create(app)
    data = os.urandom(CHUNK + 99)
    pieces = [data[:1000], data[1000:CHUNK], data[CHUNK:]]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    req = webob.Request.blank(f"/v2/images/{image['id']}/file", method="PUT")
    req.headers["X-Auth-Token"] = ALICE
    req.environ.update({"wsgi.input": NoSeekInput(encoded), "HTTP_TRANSFER_ENCODING": "chunked",
                        "CONTENT_TYPE": "application/octet-stream"})
    assert req.get_response(app).status_int == 204
    assert call(app, f"/v2/images/{image['id']}/file").body == data


def test_schemas_are_valid_json_schemas(app):
    image = create(app, name="s", extra="value")
    schema = call(app, "/v2/schemas/image").json
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.validate(image, schema)
    images = call(app, "/v2/schemas/images").json
    jsonschema.Draft4Validator.check_schema(images)
    jsonschema.validate(call(app, "/v2/images").json, images)
