"""An image's tasks (Glance 2.12): an empty list for an image the caller sees, 404 otherwise.

Tempest's compute snapshot and backup tests poll this call until every task
has succeeded; nothing in this cloud runs as a Glance task, so the list is empty.
"""

from __future__ import annotations

import pytest
from test_image_api import ADMIN, ALICE, BOB, call, create, fake_authenticate

from transcell.api.image import make_app
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore


@pytest.fixture
def app(tmp_path):
    return make_app(ImageService(ChunkStore(str(tmp_path / "store"), 64 * 1024)),
                    fake_authenticate)


def test_owner_and_admin_see_an_empty_task_list(app):
    image = create(app, name="snap", visibility="private")
    for token in (ALICE, ADMIN):
        resp = call(app, f"/v2/images/{image['id']}/tasks", token=token)
        assert resp.status_int == 200, resp.text
        assert resp.json == {"tasks": []}


def test_public_image_tasks_are_seen_by_other_projects(app):
    image = create(app, ADMIN, name="pub", visibility="public")
    resp = call(app, f"/v2/images/{image['id']}/tasks", token=BOB)
    assert resp.status_int == 200 and resp.json == {"tasks": []}


@pytest.mark.parametrize("who", ["other project", "missing", "deleted"])
def test_an_image_the_caller_cannot_see_is_missing(app, who):
    image = create(app, name="mine", visibility="private")
    token, image_id = BOB, image["id"]
    if who == "missing":
        token, image_id = ALICE, "00000000-0000-0000-0000-000000000000"
    elif who == "deleted":
        assert call(app, f"/v2/images/{image_id}", "DELETE").status_int == 204
        token = ALICE
    resp = call(app, f"/v2/images/{image_id}/tasks", token=token)
    assert resp.status_int == 404, resp.text
    assert resp.json["code"] == "404 Not Found" and resp.json["title"] == "Not Found"
    assert image_id in resp.json["message"]


def test_tasks_need_a_token_and_only_answer_get(app):
    image = create(app, name="snap")
    assert call(app, f"/v2/images/{image['id']}/tasks", token=None).status_int == 401
    resp = call(app, f"/v2/images/{image['id']}/tasks", "POST", body={})
    assert resp.status_int == 405
