"""Instance actions and events, read from the server's cell."""

from __future__ import annotations

import datetime as dt

from compute_api_fixtures import ALT, DEMO

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
