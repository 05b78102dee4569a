"""``transcell audit`` on volumes and port bindings: each kind of damage planted through
the services' own APIs (or a backend's directory) is named exactly, and the audit is
clean again once it is undone."""

from __future__ import annotations

import os
import uuid as uuidlib

import movehelpers as mh
import pytest
import volhelpers as vh
from test_audit_checks import assert_clean, assert_flags

VOLUME_HEADERS = {"OpenStack-API-Version": "volume 3.44"}


@pytest.fixture(scope="module")
def attached(acloud) -> dict:
    sid = mh.boot(acloud, "audit-volumes")["id"]
    vid = vh.create_volume(acloud, "audit-volume", "shared")["id"]
    vh.attach(acloud, sid, vid)
    return {"id": sid, "volume": vid, "host": mh.host_of(mh.server(acloud, sid))}


def test_a_server_with_a_volume_is_clean(acloud, attached):
    assert_clean(acloud)


def test_an_inactive_binding_no_move_needs(acloud, attached):
    port = vh.port_of(acloud, attached["id"])
    other = next(h for h in mh.hypervisors(acloud) if h != attached["host"])
    resp = acloud.request("POST", f"/network/v2.0/ports/{port['id']}/bindings",
                          json={"binding": {"host": other}})
    assert resp.status_code == 201, resp.text
    assert_flags(acloud, {("stale-port-binding", port["id"])})
    resp = acloud.request("DELETE", f"/network/v2.0/ports/{port['id']}/bindings/{other}")
    assert resp.status_code == 204, resp.text
    assert_clean(acloud)


def test_an_attachment_for_no_server(acloud, attached):
    vid = vh.create_volume(acloud, "audit-orphan", "shared")["id"]
    resp = acloud.request("POST", f"{vh.VOLUME}/attachments", headers=VOLUME_HEADERS, json={
        "attachment": {"volume_uuid": vid, "instance_uuid": str(uuidlib.uuid4())}})
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]["id"]
    assert_flags(acloud, {("attachment-without-server", attachment)})
    resp = acloud.request("DELETE", f"{vh.VOLUME}/attachments/{attachment}",
                          headers=VOLUME_HEADERS)
    assert resp.status_code == 200, resp.text
    assert_clean(acloud)


def test_a_file_on_a_backend_that_is_nobodys(acloud, attached):
    path = os.path.join(acloud.state_dir, "volumes", "shared", f"volume-{uuidlib.uuid4()}")
    with open(path, "wb") as fh:
        fh.write(b"left behind")
    assert_flags(acloud, {("stray-volume-file", path)})
    os.unlink(path)
    assert_clean(acloud)


def test_a_mapping_whose_attachment_is_gone(acloud, attached):
    found = vh.volume(acloud, attached["volume"])
    (attachment,) = [a["attachment_id"] for a in found["attachments"]]
    resp = acloud.request("DELETE", f"{vh.VOLUME}/attachments/{attachment}",
                          headers=VOLUME_HEADERS)
    assert resp.status_code == 200, resp.text
    assert_flags(acloud, {("volume-mapping-without-attachment", attached["id"])})
    resp = acloud.request("DELETE", f"{mh.COMPUTE}/servers/{attached['id']}")
    assert resp.status_code == 204, resp.text
    acloud.wait_gone(attached["id"])
    assert_clean(acloud)
