"""POST /os-server-external-events on a running cloud: each event answered on its own,
delivered to the server's host in its cell, and acted on there (power-update turns
the server off and on, volume-extended takes the volume's new size, every event is
recorded by the fake driver); refused whole for bad input or a non-service caller,
with nothing delivered."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid

import pytest
import servicecalls as sc
from cloudclients import CloudProcess, start_cloud, stop_cloud

URL = f"{sc.COMPUTE}/os-server-external-events"


@pytest.fixture(scope="module")
def ecloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("external-events"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


@pytest.fixture(scope="module")
def srv(ecloud) -> dict:
    return sc.boot(ecloud, "events-1")


def _post(proc: CloudProcess, events, version: str = "2.91", **kwargs):
    return proc.request("POST", URL, version=version, json={"events": events}, **kwargs)


def _recorded(cloud, server: dict) -> list[tuple]:
    host = server["OS-EXT-SRV-ATTR:host"]
    return [(e["name"], e["status"], e["tag"])
            for e in sc.driver(cloud, host).external_events(server["id"])]


def _state(cloud, server: dict) -> tuple:
    found = sc.server(cloud, server["id"])
    return found["status"], found["OS-EXT-STS:power_state"], _recorded(cloud, server)


def _nothing_delivered(cloud, server: dict, before: tuple) -> None:
    """The server as it was, and its host got no event: one sent now to probe is the
    only one recorded after ``before`` was read (the host takes a server's events
    in the order they were sent)."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    resp = _post(cloud, [{"name": "network-changed", "server_uuid": server["id"],
                          "tag": probe}])
    assert resp.status_code == 200, resp.text
    sc.wait_for(lambda: ("network-changed", "completed", probe) in _recorded(cloud, server),
                "the probe")
    status, power, recorded = before
    assert _state(cloud, server) == (status, power,
                                     [*recorded, ("network-changed", "completed", probe)])


def test_network_changed_is_answered_and_recorded_on_the_host(ecloud, srv):
    before = _recorded(ecloud, srv)
    resp = _post(ecloud, [{"name": "network-changed", "server_uuid": srv["id"]},
                          {"name": "network-vif-plugged", "server_uuid": srv["id"],
                           "status": "failed", "tag": "port-1"}])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"events": [
        {"name": "network-changed", "server_uuid": srv["id"], "status": "completed",
         "code": 200},
        {"name": "network-vif-plugged", "server_uuid": srv["id"], "status": "completed",
         "tag": "port-1", "code": 200}]}
    sc.wait_for(lambda: len(_recorded(ecloud, srv)) == len(before) + 2, "both events")
    assert _recorded(ecloud, srv)[-2:] == [("network-changed", "completed", None),
                                           ("network-vif-plugged", "failed", "port-1")]


def test_a_service_user_may_send_events(ecloud, srv):
    token = sc.service_token(ecloud)
    resp = _post(ecloud, [{"name": "network-vif-unplugged", "server_uuid": srv["id"],
                           "tag": "port-2"}], token=token)
    assert resp.status_code == 200, resp.text
    sc.wait_for(lambda: ("network-vif-unplugged", "completed", "port-2")
                in _recorded(ecloud, srv), "the service's event")


def test_power_update_turns_the_server_off_and_on(ecloud):
    server = sc.boot(ecloud, "events-power")
    resp = _post(ecloud, [{"name": "power-update", "server_uuid": server["id"],
                           "tag": "POWER_OFF"}], version="2.76")
    assert resp.status_code == 200, resp.text
    ecloud.wait_status(server["id"], "SHUTOFF")
    assert sc.server(ecloud, server["id"])["OS-EXT-STS:power_state"] == 4
    # already off: recorded, nothing else changes
    assert _post(ecloud, [{"name": "power-update", "server_uuid": server["id"],
                           "tag": "POWER_OFF"}]).status_code == 200
    sc.wait_for(lambda: _recorded(ecloud, server).count(
        ("power-update", "completed", "POWER_OFF")) == 2, "the second event")
    assert sc.server(ecloud, server["id"])["status"] == "SHUTOFF"
    resp = _post(ecloud, [{"name": "power-update", "server_uuid": server["id"],
                           "tag": "POWER_ON"}])
    assert resp.status_code == 200, resp.text
    ecloud.wait_status(server["id"], "ACTIVE")
    assert sc.server(ecloud, server["id"])["OS-EXT-STS:power_state"] == 1


def test_volume_extended_takes_the_new_size(ecloud, srv):
    vol = sc.create_volume(ecloud, "events-vol")
    sc.attach(ecloud, srv["id"], vol["id"])
    resp = ecloud.request("POST", f"{sc.VOLUME}/volumes/{vol['id']}/action", cloud=sc.DEMO,
                          json={"os-extend": {"new_size": 2}},
                          headers={"OpenStack-API-Version": "volume 3.42"})
    assert resp.status_code == 202, resp.text
    sc.wait_for(lambda: sc.volume(ecloud, vol["id"])["size"] == 2, "the volume grown")
    resp = _post(ecloud, [{"name": "volume-extended", "server_uuid": srv["id"],
                           "tag": vol["id"]}], version="2.51")
    assert resp.status_code == 200, resp.text
    sc.wait_for(lambda: ("volume-extended", "completed", vol["id"])
                in _recorded(ecloud, srv), "the event")
    sc.wait_for(lambda: _mapped_size(ecloud, srv["id"], vol["id"]) == 2, "the size in the "
                "server's block device mapping")


def _mapped_size(cloud, server_id: str, volume_id: str) -> int | None:
    """The volume's size as the server's cell records it (the cells' SQLite files)."""
    sizes = []
    for name in sorted(os.listdir(cloud.state_dir)):
        if not name.endswith(".sqlite"):
            continue
        with contextlib.closing(sqlite3.connect(os.path.join(cloud.state_dir, name))) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'block_device_mapping'"
                          ).fetchone():
                sizes += [r[0] for r in db.execute(
                    "SELECT volume_size FROM block_device_mapping WHERE instance_uuid = ? "
                    "AND volume_id = ? AND deleted = 0", (server_id, volume_id))]
    if not sizes:
        pytest.skip("the cells' databases are not SQLite files in the state directory")
    return sizes[0]


def test_each_event_answered_on_its_own(ecloud, srv):
    before = _recorded(ecloud, srv)
    missing = str(uuid.uuid4())
    resp = _post(ecloud, [
        {"name": "network-changed", "server_uuid": srv["id"]},
        {"name": "network-changed", "server_uuid": missing},
        {"name": "volume-extended", "server_uuid": srv["id"]},
        {"name": "power-update", "server_uuid": srv["id"], "tag": "POWER_CYCLE"}])
    assert resp.status_code == 207, resp.text
    assert [(e["server_uuid"], e["status"], e["code"]) for e in resp.json()["events"]] == [
        (srv["id"], "completed", 200), (missing, "failed", 404),
        (srv["id"], "failed", 400), (srv["id"], "failed", 400)]
    # only the accepted event reaches the host
    sc.wait_for(lambda: len(_recorded(ecloud, srv)) == len(before) + 1, "the accepted event")
    assert _recorded(ecloud, srv)[-1] == ("network-changed", "completed", None)


def test_no_server_found_is_404_and_nothing_is_sent(ecloud, srv):
    before = _state(ecloud, srv)
    resp = _post(ecloud, [{"name": "network-changed", "server_uuid": str(uuid.uuid4())}])
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "No instances found for any event"
    # an event refused for itself leaves no event to send either
    resp = _post(ecloud, [{"name": "volume-extended", "server_uuid": srv["id"]}])
    assert resp.status_code == 404, resp.text
    _nothing_delivered(ecloud, srv, before)


@pytest.mark.parametrize(("body", "version"), [
    ({}, "2.91"),
    ({"events": []}, "2.91"),
    ({"events": [{"name": "network-changed"}]}, "2.91"),
    ({"events": [{"server_uuid": "S"}]}, "2.91"),
    ({"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}, "2.91"),
    ({"events": [{"name": "reboot", "server_uuid": "S"}]}, "2.91"),
    ({"events": [{"name": "network-changed", "server_uuid": "S", "status": "done"}]}, "2.91"),
    ({"events": [{"name": "network-changed", "server_uuid": "S", "tag": "t" * 256}]}, "2.91"),
    ({"events": [{"name": "network-changed", "server_uuid": "S", "extra": 1}]}, "2.91"),
    ({"events": [{"name": "network-changed", "server_uuid": "S"}], "more": 1}, "2.91"),
    ({"events": [{"name": "volume-extended", "server_uuid": "S", "tag": "v"}]}, "2.50"),
    ({"events": [{"name": "power-update", "server_uuid": "S", "tag": "POWER_OFF"}]}, "2.75"),
    ({"events": [{"name": "accelerator-request-bound", "server_uuid": "S"}]}, "2.81"),
    ({"events": [{"name": "volume-reimaged", "server_uuid": "S", "tag": "v"}]}, "2.91"),
], ids=lambda v: str(v)[:60])
def test_bad_input_is_400_and_nothing_changes(ecloud, srv, body, version):
    before = _state(ecloud, srv)
    for event in body.get("events", []):
        if event.get("server_uuid") == "S":
            event["server_uuid"] = srv["id"]
    resp = ecloud.request("POST", URL, version=version, json=body)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json()
    _nothing_delivered(ecloud, srv, before)


@pytest.mark.parametrize("user", [sc.DEMO, sc.READER])
def test_users_are_refused_and_nothing_changes(ecloud, srv, user):
    before = _state(ecloud, srv)
    resp = _post(ecloud, [{"name": "power-update", "server_uuid": srv["id"],
                           "tag": "POWER_OFF"}], cloud=user)
    assert resp.status_code == 403, resp.text
    _nothing_delivered(ecloud, srv, before)
