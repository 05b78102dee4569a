"""Moving a volume's bytes between backends: the administrator's os-migrate_volume
and the move steps (os-transcell-moves) a conductor drives through the HTTP client.

Backends of the default cloud: ``shared`` (every cell), ``local-cell1`` and
``local-cell2`` (one cell each). Between local-cell1 and local-cell2 no host
reaches both, so the bytes go through the image store, only the chunks it lacks.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import volapi as va
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from volapi import ADMIN, USER, call, create, show

from transcell import exception
from transcell.context import RequestContext
from transcell.volume import exceptions as vexc
from transcell.volume.http_client import VolumeHTTPClient

MIB = 1024 * 1024
CHUNK = 4 * MIB


def _migrate(cloud, volume_id: str, backend: str, expect: int = 202,
             cloud_name: str = ADMIN) -> dict:
    resp = call(cloud, "POST", f"/volumes/{volume_id}/action", cloud_name,
                json={"os-migrate_volume": {"host": f"transcell@{backend}#{backend}"}})
    assert resp.status_code == expect, resp.text
    if expect != 202:
        return resp.json()
    found = va.wait_volume(cloud, volume_id,
                           lambda v: v["os-vol-mig-status-attr:migstat"] != "migrating")
    assert found["migration_status"] == "success", found
    assert found["status"] == "available"
    assert found["os-vol-host-attr:host"] == f"transcell@{backend}#{backend}"
    return found


def _last_transfer(cloud, volume_id: str) -> dict:
    resp = call(cloud, "GET", f"/os-transcell-moves/volumes/{volume_id}/backend", ADMIN)
    return resp.json()["backend"]["last_transfer"]


def test_admin_migration_across_cells_sends_only_missing_chunks(vcloud):
    volume = create(vcloud, name="travelling", volume_type="local-cell1", size=1)
    vid = volume["id"]
    source = va.volume_path(vcloud, vid)
    pattern = {5 * MIB: os.urandom(3 * MIB), 1024 * MIB - MIB: os.urandom(MIB)}
    for offset, data in pattern.items():
        va.write_at(source, offset, data)

    _migrate(vcloud, vid, "local-cell2")
    target = va.volume_path(vcloud, vid)
    assert "/local-cell2/" in target and not os.path.exists(source)
    for offset, data in pattern.items():
        assert va.read_at(target, offset, len(data)) == data
    assert os.path.getsize(target) == 1024 ** 3
    moved = _last_transfer(vcloud, vid)
    assert moved["through_store"] is True and moved["bytes"] == 1024 ** 3
    # 5-8 MiB lies in chunk 1, the last MiB in chunk 255: two chunks sent, no holes
    assert moved["bytes_sent"] == 2 * CHUNK, moved

    # one chunk changed: going back sends that chunk only (the store kept the rest)
    changed = os.urandom(MIB)
    va.write_at(target, 6 * MIB, changed)
    _migrate(vcloud, vid, "local-cell1")
    back = va.volume_path(vcloud, vid)
    assert va.read_at(back, 6 * MIB, MIB) == changed
    assert va.read_at(back, 1023 * MIB, MIB) == pattern[1024 * MIB - MIB]
    assert _last_transfer(vcloud, vid)["bytes_sent"] == CHUNK
    assert not os.path.exists(target)

    # local-cell1 and shared share cell1: a direct copy, nothing through the store
    _migrate(vcloud, vid, "shared")
    assert _last_transfer(vcloud, vid)["through_store"] is False
    assert va.read_at(va.volume_path(vcloud, vid), 6 * MIB, MIB) == changed
    assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


def test_migration_refusals_change_nothing(vcloud):
    volume = create(vcloud, name="stays", volume_type="local-cell1")
    vid = volume["id"]
    body = _migrate(vcloud, vid, "local-cell1", expect=400)
    assert "different" in body["badRequest"]["message"]
    _migrate(vcloud, vid, "nowhere", expect=400)
    resp = call(vcloud, "POST", f"/volumes/{vid}/action", ADMIN,
                json={"os-migrate_volume": {"host": "otherhost@shared#shared"}})
    assert resp.status_code == 400
    _migrate(vcloud, vid, "local-cell2", expect=403, cloud_name=USER)
    # attached: refused (only a move, which stops the guest first, migrates it)
    resp = call(vcloud, "POST", "/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": str(uuid.uuid4()),
        "connector": {"host": "cell1-host1"}}})
    attachment = resp.json()["attachment"]
    call(vcloud, "POST", f"/attachments/{attachment['id']}/action",
         json={"os-complete": None})
    body = _migrate(vcloud, vid, "local-cell2", expect=400)
    assert "in-use" in body["badRequest"]["message"]
    found = show(vcloud, vid)
    assert found["os-vol-host-attr:host"] == "transcell@local-cell1#local-cell1"
    assert found["migration_status"] is None and found["status"] == "in-use"
    call(vcloud, "DELETE", f"/attachments/{attachment['id']}")
    assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


@pytest.fixture(scope="module")
def client(vcloud) -> VolumeHTTPClient:
    session = ks_session.Session(auth=token_endpoint.Token(
        f"{vcloud.base_url}/volume", vcloud.token(ADMIN)))
    return VolumeHTTPClient(session, f"{vcloud.base_url}/volume")


def test_move_steps_over_http_repeat_safely(vcloud, client):
    admin = RequestContext.admin()
    volume = create(vcloud, name="moving", volume_type="local-cell1")
    vid = volume["id"]
    source = va.volume_path(vcloud, vid)
    data = os.urandom(2 * MIB)
    va.write_at(source, 9 * MIB, data)

    assert client.plan_move(admin, vid, "cell1")["action"] == "keep"
    plan = client.plan_move(admin, vid, "cell2")
    assert (plan["action"], plan["from_backend"], plan["to_backend"]) == \
        ("migrate", "local-cell1", "local-cell2")
    assert plan["bytes"] == 2 * MIB

    move_id = str(uuid.uuid4())
    first = client.move_copy(admin, vid, move_id, "local-cell2")
    again = client.move_copy(admin, vid, move_id, "local-cell2")  # a conductor's repeat
    assert first == again and first["bytes"] == 1024 ** 3
    assert client.get(admin, vid)["migration_status"] == "migrating"
    assert os.path.exists(source)  # the source is untouched until the switch
    switched = client.move_switch(admin, vid, move_id)
    assert switched["os-vol-host-attr:host"] == "transcell@local-cell2#local-cell2"
    client.move_switch(admin, vid, move_id)
    target = first["path"]
    assert va.read_at(target, 9 * MIB, 2 * MIB) == data
    kept = {(c["role"], c["state"]) for c in client.move_copies(admin)
            if c["move_id"] == move_id}
    assert kept == {("target", "live"), ("source", "retained")}

    # revert: back on the source backend, the new copy gone
    client.move_revert(admin, vid, move_id)
    client.move_revert(admin, vid, move_id)
    assert client.get(admin, vid)["os-vol-host-attr:host"].endswith("#local-cell1")
    assert os.path.exists(source) and not os.path.exists(target)
    assert not [c for c in client.move_copies(admin) if c["volume_id"] == vid]

    # a second move, confirmed: the source copy is deleted, twice is fine
    move_id = str(uuid.uuid4())
    client.move_copy(admin, vid, move_id, "local-cell2")
    client.move_switch(admin, vid, move_id)
    client.move_confirm(admin, vid, move_id)
    client.move_confirm(admin, vid, move_id)
    assert not os.path.exists(source)
    assert client.backend_info(admin, vid)["backend"] == "local-cell2"
    assert va.read_at(client.backend_info(admin, vid)["path"], 9 * MIB, 2 * MIB) == data
    assert not [c for c in client.move_copies(admin) if c["volume_id"] == vid]


def test_http_client_answers_as_the_service_does(vcloud, client):
    user = RequestContext(user_id="u", project_id=uuid.uuid4().hex, roles=["member"])
    admin = RequestContext.admin()
    volume = client.create(user, size=1, name="for-a-user", volume_type="local-cell2")
    assert volume["os-vol-tenant-attr:tenant_id"] == user.project_id
    assert client.get(user, volume["id"])["status"] == "available"
    stranger = RequestContext(user_id="s", project_id=uuid.uuid4().hex, roles=["member"])
    with pytest.raises(vexc.VolumeNotFound):
        client.get(stranger, volume["id"])
    with pytest.raises(vexc.VolumeBackendUnreachable) as caught:
        client.attachment_create(user, volume["id"], str(uuid.uuid4()),
                                 connector={"host": "cell1-host1"})
    assert "local-cell2" in str(caught.value) and "cell1" in str(caught.value)
    server = str(uuid.uuid4())
    attachment = client.attachment_create(user, volume["id"], server,
                                          connector={"host": "cell2-host2"})
    assert attachment["connection_info"]["data"]["backend"] == "local-cell2"
    with pytest.raises(vexc.InvalidVolume):
        client.attachment_create(user, volume["id"], str(uuid.uuid4()))
    client.attachment_complete(user, attachment["id"])
    assert client.get(user, volume["id"])["status"] == "in-use"
    with pytest.raises(vexc.InvalidVolume):
        client.delete(user, volume["id"])
    assert client.attachment_delete(user, attachment["id"]) == []
    with pytest.raises(exception.NotFound):
        client.attachment_get(user, attachment["id"])
    assert client.extend(user, volume["id"], 2)["size"] == 2
    client.delete(user, volume["id"])
    with pytest.raises(vexc.VolumeNotFound):
        client.get(admin, volume["id"])


def test_upload_to_image(vcloud):
    volume = create(vcloud, name="to-image", size=1)
    data = os.urandom(MIB)
    va.write_at(va.volume_path(vcloud, volume["id"]), 0, data)
    resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action",
                json={"os-volume_upload_image": {"image_name": "from-volume",
                                                 "disk_format": "raw"}})
    assert resp.status_code == 202, resp.text
    upload = resp.json()["os-volume_upload_image"]
    assert upload["status"] == "uploading" and upload["image_name"] == "from-volume"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = vcloud.request("GET", f"/image/v2/images/{upload['image_id']}",
                               cloud=USER).json()
        if image["status"] == "active":
            break
        time.sleep(0.2)
    assert image["status"] == "active" and image["size"] == 1024 ** 3
    resp = vcloud.request("GET", f"/image/v2/images/{upload['image_id']}/file", cloud=USER,
                          headers={"Range": f"bytes=0-{MIB - 1}"})
    assert resp.content[:MIB] == data
    assert va.wait_volume(vcloud, volume["id"],
                          lambda v: v["status"] != "uploading")["status"] == "available"
    bad = call(vcloud, "POST", f"/volumes/{volume['id']}/action",
               json={"os-volume_upload_image": {"image_name": "x", "disk_format": "vmdk"}})
    assert bad.status_code == 400
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_openstacksdk_block_storage(vcloud):
    conn = vcloud.sdk(USER)
    made = conn.block_storage.create_volume(size=1, name="sdk-volume")
    found = conn.block_storage.wait_for_status(made, status="available", wait=60)
    assert found.name == "sdk-volume" and found.size == 1
    assert conn.block_storage.get_volume(made.id).id == made.id
    assert made.id in [v.id for v in conn.block_storage.volumes()]
    conn.block_storage.delete_volume(made.id)
    conn.block_storage.wait_for_delete(made, wait=60)
