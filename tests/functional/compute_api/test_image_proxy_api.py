"""The compute API's image proxy (/images, /images/{id}/metadata), before 2.36,
over a real image service."""

from __future__ import annotations

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import ADMIN, ALT, DEMO, DEMO_READER

from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.context import RequestContext
from transcell.image.client import ImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore
from transcell.registry import services

OWNER = RequestContext(user_id="demo", project_id="demo-project", roles=["member", "reader"])


@pytest.fixture
def icloud(cloud, tmp_path):
    service = ImageService(ChunkStore(str(tmp_path / "images"), 1024 * 1024))
    before = services.image
    services.image = ImageClient(service)
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    try:
        yield cloud, service
    finally:
        services.image = before


def _image(service, name="cirros", **props):
    return service.create(OWNER, name=name, disk_format="raw", container_format="bare",
                          min_ram=64, **props)["id"]


def test_list_show_and_nova_view(icloud):
    cloud, service = icloud
    one = _image(service, "one", kernel="k1")
    _image(service, "two")
    listed = cloud.get("/images", token=DEMO, version="2.35")
    assert listed.status_int == 200, listed.body
    assert {i["name"] for i in listed.json["images"]} == {"one", "two"}
    assert set(listed.json["images"][0]) == {"id", "name", "links"}
    detail = cloud.get("/images/detail?name=one", token=DEMO, version="2.35").json["images"]
    assert [i["id"] for i in detail] == [one]
    shown = cloud.get(f"/images/{one}", token=DEMO).json["image"]
    assert (shown["status"], shown["progress"], shown["minRam"], shown["minDisk"]) == \
        ("SAVING", 25, 64, 0)
    assert shown["metadata"] == {"kernel": "k1"}
    assert shown["created"].endswith("Z")
    assert cloud.get(f"/images/{one}", token=ALT).status_int == 404
    gone = cloud.get(f"/images/{one}", token=DEMO, version="2.36")
    assert gone.status_int == 404
    assert cloud.get("/images/detail", token=DEMO, version="2.36").status_int == 404


def test_metadata_routes(icloud):
    cloud, service = icloud
    image = _image(service, kernel="k1", ramdisk="r1")
    path = f"/images/{image}/metadata"
    assert cloud.get(path, token=DEMO).json == {"metadata": {"kernel": "k1", "ramdisk": "r1"}}
    merged = cloud.post(path, {"metadata": {"arch": "x86_64"}}, token=DEMO)
    assert merged.status_int == 200, merged.body
    assert merged.json["metadata"] == {"kernel": "k1", "ramdisk": "r1", "arch": "x86_64"}
    replaced = cloud.put(path, {"metadata": {"os": "linux"}}, token=DEMO)
    assert replaced.json == {"metadata": {"os": "linux"}}
    assert cloud.get(f"{path}/os", token=DEMO).json == {"meta": {"os": "linux"}}
    assert cloud.get(f"{path}/kernel", token=DEMO).status_int == 404
    one = cloud.put(f"{path}/os", {"meta": {"os": "bsd"}}, token=DEMO)
    assert one.json == {"meta": {"os": "bsd"}}
    mismatch = cloud.put(f"{path}/os", {"meta": {"other": "x"}}, token=DEMO)
    assert mismatch.status_int == 400
    assert mismatch.json["badRequest"]["message"] == "Request body and URI mismatch"
    too_many = cloud.put(f"{path}/os", {"meta": {"os": "x", "b": "y"}}, token=DEMO)
    assert too_many.json["badRequest"]["message"] == "Request body contains too many items"
    assert cloud.delete(f"{path}/os", token=DEMO).status_int == 204
    assert cloud.get(path, token=DEMO).json == {"metadata": {}}
    assert cloud.delete(f"{path}/os", token=DEMO).status_int == 404
    assert cloud.get(path, token=DEMO, version="2.36").status_int == 404


def test_metadata_items_quota_and_delete(icloud):
    cloud, service = icloud
    image = _image(service)
    cloud.put("/os-quota-sets/demo-project", {"quota_set": {"metadata_items": 2}},
              token=ADMIN)
    over = cloud.post(f"/images/{image}/metadata", {"metadata": {"a": "1", "b": "2", "c": "3"}},
                      token=DEMO)
    assert over.status_int == 403
    assert over.json["forbidden"]["message"] == "Image metadata limit exceeded"
    assert cloud.get(f"/images/{image}/metadata", token=DEMO).json == {"metadata": {}}
    assert cloud.delete(f"/images/{image}", token=ALT).status_int == 404
    assert cloud.delete(f"/images/{image}", token=DEMO).status_int == 204
    assert cloud.get(f"/images/{image}", token=DEMO).status_int == 404


def test_delete_without_an_image_id(icloud):
    """``/images/`` names a blank id: 404 as Nova answers; ``/images`` only lists (405)."""
    cloud, service = icloud
    image = _image(service)
    blank = cloud.delete("/images/", token=DEMO)
    assert blank.status_int == 404, blank.body
    assert blank.json["itemNotFound"]["code"] == 404
    collection = cloud.delete("/images", token=DEMO)
    assert collection.status_int == 405, collection.body
    assert collection.headers["Allow"] == "GET"
    assert collection.json["badMethod"]["code"] == 405
    assert cloud.delete("/images/", token=DEMO, version="2.36").status_int == 404
    assert cloud.get(f"/images/{image}", token=DEMO).status_int == 200


def test_a_reader_sees_but_cannot_change_through_the_proxy(icloud):
    cloud, service = icloud
    image = _image(service, kernel="k1")
    assert cloud.get(f"/images/{image}", token=DEMO_READER).status_int == 200
    for method, path, body in (
            ("DELETE", f"/images/{image}", None),
            ("POST", f"/images/{image}/metadata", {"metadata": {"a": "b"}}),
            ("PUT", f"/images/{image}/metadata", {"metadata": {}}),
            ("PUT", f"/images/{image}/metadata/kernel", {"meta": {"kernel": "x"}}),
            ("DELETE", f"/images/{image}/metadata/kernel", None)):
        resp = cloud.call(method, path, token=DEMO_READER, body=body)
        assert resp.status_int == 403, (method, path, resp.body)
    assert cloud.get(f"/images/{image}/metadata", token=DEMO).json == \
        {"metadata": {"kernel": "k1"}}
