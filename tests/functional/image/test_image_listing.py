"""Image list order and paging as Glance v2 takes them: ``sort_key``/``sort_dir``
(repeatable) and ``sort=key:dir,key``, with markers that page without overlap."""

from __future__ import annotations

import pytest
from test_image_api import ALICE, call, create, fake_authenticate

from transcell.api.image import make_app
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore


@pytest.fixture
def app(tmp_path):
    return make_app(ImageService(ChunkStore(str(tmp_path / "store"), 64 * 1024)),
                    fake_authenticate)


@pytest.fixture
def images(app):
    made = {}
    for name, min_ram in (("b", 2), ("a", 1), ("b", 1), ("a", 2), ("c", 1)):
        image = create(app, name=name, min_ram=min_ram)
        made[image["id"]] = (name, min_ram)
    return made


def listed(app, query):
    resp = call(app, f"/v2/images?{query}", token=ALICE)
    assert resp.status_int == 200, resp.text
    return [(i["name"], i["min_ram"]) for i in resp.json["images"]]


def test_sort_with_several_keys(app, images):
    expected = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1)]
    assert listed(app, "sort=name:asc,min_ram:asc") == expected
    assert listed(app, "sort_key=name&sort_dir=asc&sort_key=min_ram&sort_dir=asc") == expected
    assert listed(app, "sort=name:asc,min_ram:desc") == [
        ("a", 2), ("a", 1), ("b", 2), ("b", 1), ("c", 1)]
    # one direction for several keys applies to all; no direction in sort= is desc
    assert listed(app, "sort_key=name&sort_key=min_ram&sort_dir=desc") == expected[::-1]
    assert listed(app, "sort=name,min_ram") == expected[::-1]


def test_pages_follow_the_order(app, images):
    seen, marker = [], None
    while True:
        query = "sort=min_ram:asc,name:desc&limit=2" + (f"&marker={marker}" if marker else "")
        body = call(app, f"/v2/images?{query}", token=ALICE).json
        seen += [(i["name"], i["min_ram"]) for i in body["images"]]
        if "next" not in body:
            break
        marker = body["images"][-1]["id"]
        assert "sort=min_ram" in body["next"]
    assert seen == [("c", 1), ("b", 1), ("a", 1), ("b", 2), ("a", 2)]


@pytest.mark.parametrize("query", [
    "sort=name:up", "sort=colour", "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc"
    "&sort_dir=asc", "sort=name&sort_key=size", "sort=name&sort=size", "sort_key=owner"])
def test_bad_orders_are_400(app, images, query):
    resp = call(app, f"/v2/images?{query}", token=ALICE)
    assert resp.status_int == 400, query
    assert resp.json["code"] == "400 Bad Request"
