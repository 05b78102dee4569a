"""Instance actions and events, read from the server's cell."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from compute_api_fixtures import ALT, DEMO

from transcell import exception, policy
from transcell.api.compute import instance_actions
from transcell.compute import actions
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db.types import utcnow

ACTION_KEYS = {"action", "instance_uuid", "request_id", "user_id", "project_id",
               "start_time", "message"}


def _arrange(cloud, **instance):
    server = cloud.add_instance(cloud.cell2, **instance)
    start = utcnow() - dt.timedelta(hours=1)
    cloud.add_action(cloud.cell2, server, "create", "req-create", start,
                     events=(("compute_build_and_run_instance", "Success", None),))
    cloud.add_action(cloud.cell2, server, "resize", "req-resize",
                     start + dt.timedelta(minutes=5),
                     events=(("conductor_migrate_server", "Success", None),
                             ("compute_prep_snapshot_based_resize_at_dest", "Error",
                              "Traceback: NoValidHost")))
    return server


def test_list_newest_first(cloud):
    server = _arrange(cloud)
    resp = cloud.get(f"/servers/{server}/os-instance-actions", token=DEMO)
    assert resp.status_int == 200
    actions = resp.json["instanceActions"]
    assert [a["action"] for a in actions] == ["resize", "create"]
    assert all(set(a) == ACTION_KEYS for a in actions)
    assert actions[0]["instance_uuid"] == server
    assert actions[0]["start_time"].endswith("Z")


def test_events_visibility_by_microversion_and_role(cloud):
    server = _arrange(cloud)
    path = f"/servers/{server}/os-instance-actions/req-resize"

    admin = cloud.get(path).json["instanceAction"]
    assert set(admin) == ACTION_KEYS | {"events"}
    assert [e["event"] for e in admin["events"]] == [
        "compute_prep_snapshot_based_resize_at_dest", "conductor_migrate_server"]
    assert admin["events"][0] == {"event": "compute_prep_snapshot_based_resize_at_dest",
                                  "start_time": admin["events"][0]["start_time"],
                                  "finish_time": admin["events"][0]["finish_time"],
                                  "result": "Error", "traceback": "Traceback: NoValidHost"}

    member_21 = cloud.get(path, token=DEMO).json["instanceAction"]
    assert "events" not in member_21
    member_251 = cloud.get(path, token=DEMO, version="2.51").json["instanceAction"]
    assert [set(e) for e in member_251["events"]] == \
        [{"event", "start_time", "finish_time", "result"}] * 2

    missing = cloud.get(f"/servers/{server}/os-instance-actions/999")
    assert missing.status_int == 404
    assert missing.json["itemNotFound"]["message"] == "Action 999 not found"


def test_deleted_servers_from_221_and_other_projects(cloud):
    server = _arrange(cloud, deleted=True, vm_state="deleted")
    path = f"/servers/{server}/os-instance-actions"
    old = cloud.get(path, token=DEMO)
    assert old.status_int == 404
    assert old.json["itemNotFound"]["message"] == f"Instance {server} could not be found."
    assert [a["action"] for a in cloud.get(path, token=DEMO, version="2.21")
            .json["instanceActions"]] == ["resize", "create"]

    live = _arrange(cloud)
    assert cloud.get(f"/servers/{live}/os-instance-actions", token=ALT).status_int == 404
    assert cloud.get("/servers/nonexistent/os-instance-actions").status_int == 404


# -- 2.58 paging and updated_at, 2.62 host and hostId, 2.66 changes-before, 2.84 details --

def _history(cloud, count: int = 5):
    """``count`` actions a minute apart, updated ten minutes after they start; their
    request ids newest first, and the server."""
    server = cloud.add_instance(cloud.cell1)
    start = utcnow() - dt.timedelta(hours=1)
    for n in range(count):
        when = start + dt.timedelta(minutes=n)
        cloud.add_action(cloud.cell1, server, "reboot", f"req-{n}", when,
                         updated_at=when + dt.timedelta(minutes=10))
    return [f"req-{n}" for n in reversed(range(count))], server


def test_258_adds_updated_at_to_list_and_show(cloud):
    server = _arrange(cloud)
    cloud.add_action(cloud.cell2, server, "stop", "req-stop", utcnow(),
                     updated_at=utcnow() + dt.timedelta(seconds=5))
    path = f"/servers/{server}/os-instance-actions"
    old = cloud.get(path, token=DEMO, version="2.57").json["instanceActions"]
    assert all(set(a) == ACTION_KEYS for a in old)
    new = cloud.get(path, token=DEMO, version="2.58").json
    assert set(new) == {"instanceActions"}
    assert all(set(a) == ACTION_KEYS | {"updated_at"} for a in new["instanceActions"])
    assert new["instanceActions"][0]["updated_at"].endswith("Z")
    assert new["instanceActions"][1]["updated_at"] is None  # a row never updated
    shown = cloud.get(f"{path}/req-stop", token=DEMO, version="2.58").json["instanceAction"]
    assert shown["updated_at"] == new["instanceActions"][0]["updated_at"]


def test_258_pages_by_request_id_with_a_next_link(cloud):
    expected, server = _history(cloud)
    path = f"/servers/{server}/os-instance-actions"
    first = cloud.get(f"{path}?limit=2", token=DEMO, version="2.58").json
    assert [a["request_id"] for a in first["instanceActions"]] == expected[:2]
    assert first["links"] == [{"rel": "next", "href": (
        f"http://localhost/v2.1/servers/{server}/os-instance-actions?limit=2&marker=req-3")}]
    second = cloud.get(first["links"][0]["href"].removeprefix("http://localhost"),
                       token=DEMO, version="2.58").json
    assert [a["request_id"] for a in second["instanceActions"]] == expected[2:4]
    last = cloud.get(f"{path}?limit=2&marker=req-1", token=DEMO, version="2.58").json
    assert [a["request_id"] for a in last["instanceActions"]] == ["req-0"]
    assert "links" not in last
    # paging parameters mean nothing below 2.58
    assert len(cloud.get(f"{path}?limit=2", token=DEMO).json["instanceActions"]) == 5


def test_258_bad_marker_and_closed_query(cloud):
    _, server = _history(cloud)
    path = f"/servers/{server}/os-instance-actions"
    bad = cloud.get(f"{path}?marker=req-nope", token=DEMO, version="2.58")
    assert bad.status_int == 400
    assert bad.json == {"badRequest": {"code": 400,
                                       "message": "Marker req-nope could not be found."}}
    unknown = cloud.get(f"{path}?action=reboot", token=DEMO, version="2.58")
    assert unknown.status_int == 400
    assert unknown.json["badRequest"]["message"] == \
        "Additional properties are not allowed ('action' was unexpected)"
    assert cloud.get(f"{path}?action=reboot", token=DEMO, version="2.57").status_int == 200
    before = "changes-before=2999-01-01T00:00:00Z"
    assert cloud.get(f"{path}?{before}", token=DEMO, version="2.65").status_int == 400
    assert cloud.get(f"{path}?{before}", token=DEMO, version="2.66").status_int == 200
    for query in ("limit=x", "limit=-2", "changes-since=soon", "marker=a&marker=b"):
        assert cloud.get(f"{path}?{query}", token=DEMO, version="2.66").status_int == 400, \
            query


def test_changes_since_and_before_window_on_updated_at(cloud):
    expected, server = _history(cloud)
    path = f"/servers/{server}/os-instance-actions"
    listed = cloud.get(path, token=DEMO, version="2.66").json["instanceActions"]
    middle = listed[2]["updated_at"]

    def ids(query: str) -> list[str]:
        resp = cloud.get(f"{path}?{query}", token=DEMO, version="2.66")
        assert resp.status_int == 200, resp.json
        return [a["request_id"] for a in resp.json["instanceActions"]]

    assert ids(f"changes-since={middle}") == expected[:3]
    assert ids(f"changes-before={middle}") == expected[2:]
    assert ids(f"changes-since={middle}&changes-before={middle}") == [expected[2]]
    # the window filters; a marker outside it still places the page
    assert ids(f"changes-before={middle}&marker={expected[0]}") == expected[2:]
    inverted = cloud.get(f"{path}?changes-since={listed[0]['updated_at']}"
                         f"&changes-before={listed[4]['updated_at']}", token=DEMO,
                         version="2.66")
    assert inverted.status_int == 400
    assert inverted.json["badRequest"]["message"] == \
        "The value of changes-since must be less than or equal to changes-before."


def _with_hosts(cloud, project: str | None = "demo-project"):
    server = cloud.add_instance(cloud.cell2)
    cloud.add_action(cloud.cell2, server, "stop", "req-stop", utcnow(), project=project,
                     events=(("compute_stop_instance", "Error", "Traceback: boom",
                              "cell2-host1", "InstanceInvalidState"),
                             ("conductor_noop", "Success", None, None, None)))
    return server, f"/servers/{server}/os-instance-actions/req-stop"


def test_262_host_id_for_everyone_host_for_admins(cloud):
    server, path = _with_hosts(cloud)
    expected = hashlib.sha224(b"demo-projectcell2-host1").hexdigest()
    member = cloud.get(path, token=DEMO, version="2.62").json["instanceAction"]["events"]
    assert member == [
        {"event": "conductor_noop", "start_time": member[0]["start_time"],
         "finish_time": member[0]["finish_time"], "result": "Success", "hostId": ""},
        {"event": "compute_stop_instance", "start_time": member[1]["start_time"],
         "finish_time": member[1]["finish_time"], "result": "Error", "hostId": expected}]
    admin = cloud.get(path, version="2.62").json["instanceAction"]["events"]
    assert [(e["host"], e["hostId"], e["traceback"]) for e in admin] == [
        (None, "", None), ("cell2-host1", expected, "Traceback: boom")]
    below = cloud.get(path, version="2.61").json["instanceAction"]["events"]
    assert all("host" not in e and "hostId" not in e for e in below)
    # the same hash the server view shows for the server on that host
    assert instance_actions.host_id("demo-project", "cell2-host1") == expected


def test_262_host_id_of_project_less_events_uses_the_servers_project(cloud):
    _, path = _with_hosts(cloud, project=None)
    events = cloud.get(path, version="2.62").json["instanceAction"]["events"]
    assert events[1]["hostId"] == hashlib.sha224(b"demo-projectcell2-host1").hexdigest()


def test_284_details_only_for_the_details_rule(cloud):
    _, path = _with_hosts(cloud)
    admin = cloud.get(path, version="2.84").json["instanceAction"]["events"]
    assert [e["details"] for e in admin] == [None, "InstanceInvalidState"]
    assert all("details" not in e
               for e in cloud.get(path, version="2.83").json["instanceAction"]["events"])
    member = cloud.get(path, token=DEMO, version="2.84").json["instanceAction"]["events"]
    assert all("details" not in e and "host" not in e and "traceback" not in e
               for e in member)


def test_284_details_follow_the_policy_not_the_role(cloud, tmp_path):
    _, path = _with_hosts(cloud)
    rules = tmp_path / "policy.yaml"
    rules.write_text('"os_compute_api:os-instance-actions:events:details": '
                     '"project_id:%(project_id)s"\n')
    CONF.set_override("policy_file", str(rules), group="oslo_policy")
    policy.reset()
    try:
        member = cloud.get(path, token=DEMO, version="2.84").json["instanceAction"]["events"]
        assert [e["details"] for e in member] == [None, "InstanceInvalidState"]
        assert all("traceback" not in e for e in member)
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()


def test_recorded_actions_carry_updated_at_and_failed_events_their_details(cloud):
    """What the compute services record is what 2.58 and 2.84 show."""
    server = cloud.add_instance(cloud.cell1)
    ctx = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
    actions.record_action(ctx, cloud.cell1, server, actions.STOP)
    path = f"/servers/{server}/os-instance-actions/{ctx.request_id}"
    fresh = cloud.get(path, version="2.84").json["instanceAction"]
    assert fresh["updated_at"] == fresh["start_time"]
    with pytest.raises(exception.InstanceInvalidState):
        with actions.event(ctx, cloud.cell1, server, "compute_stop_instance", "cell1-host1"):
            raise exception.InstanceInvalidState(action="stop", instance_uuid=server,
                                                 attr="vm_state", state="stopped")
    with pytest.raises(KeyError):
        with actions.event(ctx, cloud.cell1, server, "compute_cleanup", "cell1-host1"):
            raise KeyError("/var/lib/transcell/instances/secret-path")
    with actions.event(ctx, cloud.cell1, server, "compute_noop", "cell1-host1"):
        pass
    shown = cloud.get(path, version="2.84").json["instanceAction"]
    assert shown["updated_at"] >= fresh["updated_at"]
    details = {e["event"]: e["details"] for e in shown["events"]}
    assert details["compute_noop"] is None
    assert details["compute_cleanup"] == "KeyError"  # a foreign error is only named
    assert details["compute_stop_instance"] == exception.InstanceInvalidState(
        action="stop", instance_uuid=server, attr="vm_state", state="stopped").message
    assert "stopped" in details["compute_stop_instance"]
