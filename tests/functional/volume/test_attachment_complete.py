"""os-complete as Cinder answers it: an attachment is completed with or without a
connector. Nova completes the attachment of a volume attached to a shelved-offloaded
server, which has no host yet; the volume is in-use, and a later update hands the
connector of the host the server lands on."""

from __future__ import annotations

import uuid

from volapi import call, create, show


def _attachments(cloud, volume_id: str) -> list[dict]:
    resp = call(cloud, "GET", f"/attachments/detail?volume_id={volume_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["attachments"]


def test_complete_without_a_connector_then_connect(vcloud):
    volume = create(vcloud, name="offloaded-attach", volume_type="local-cell1")
    server = str(uuid.uuid4())
    resp = call(vcloud, "POST", "/attachments", json={"attachment": {
        "volume_uuid": volume["id"], "instance_uuid": server}})
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]
    assert show(vcloud, volume["id"])["status"] == "reserved"

    resp = call(vcloud, "POST", f"/attachments/{attachment['id']}/action",
                json={"os-complete": None})
    assert resp.status_code == 204, resp.text
    found = show(vcloud, volume["id"])
    assert found["status"] == "in-use"
    assert [(a["server_id"], a["host_name"]) for a in found["attachments"]] == [(server, None)]
    (listed,) = _attachments(vcloud, volume["id"])
    assert listed["status"] == "attached" and listed["connection_info"] == {}
    assert listed["attached_at"]
    # a second complete changes nothing
    resp = call(vcloud, "POST", f"/attachments/{attachment['id']}/action",
                json={"os-complete": None})
    assert resp.status_code == 204
    assert _attachments(vcloud, volume["id"]) == [listed]

    # an unreachable host is still refused, and leaves it as it was
    resp = call(vcloud, "PUT", f"/attachments/{attachment['id']}",
                json={"attachment": {"connector": {"host": "cell2-host1"}}})
    assert resp.status_code == 400, resp.text
    assert _attachments(vcloud, volume["id"]) == [listed]
    # the host the server lands on connects it; it stays attached and in-use
    resp = call(vcloud, "PUT", f"/attachments/{attachment['id']}",
                json={"attachment": {"connector": {"host": "cell1-host1",
                                                   "mountpoint": "/dev/vdb"}}})
    assert resp.status_code == 200, resp.text
    connected = resp.json()["attachment"]
    assert connected["status"] == "attached"
    assert connected["connection_info"]["data"]["backend"] == "local-cell1"
    found = show(vcloud, volume["id"])
    assert found["status"] == "in-use"
    assert [(a["host_name"], a["device"]) for a in found["attachments"]] == \
        [("cell1-host1", "/dev/vdb")]

    resp = call(vcloud, "DELETE", f"/attachments/{attachment['id']}")
    assert resp.status_code == 200 and resp.json() == {"attachments": []}
    assert show(vcloud, volume["id"])["status"] == "available"
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_complete_of_an_unknown_attachment_is_404(vcloud):
    resp = call(vcloud, "POST", f"/attachments/{uuid.uuid4()}/action",
                json={"os-complete": None})
    assert resp.status_code == 404 and "itemNotFound" in resp.json()
