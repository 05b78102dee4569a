"""kill -9 of the whole cloud right after the API accepted a createBackup, a rescue or a
changePassword; then a restart on the same state. Each request is finished or cleanly
undone: the server is at rest in a state the request allows, no half-made backup image
is left, the server takes the same request again, and the audit is clean.

A backup and a rescue are answered (202, 200) before their host starts: they are held
right there. A password change is answered once the host has set it (a call, as in
Nova): one is killed right after its 202, another while its host is held before the
guest took it (its caller never got an answer). One cloud holds one server at each
point, so a single kill covers them all.
"""

from __future__ import annotations

import threading

import movehelpers as mh
import requests
from cloudclients import CloudProcess, start_cloud, stop_cloud
from test_kill_matrix import hold, kill_and_restart, wait_reached

COMPUTE = mh.COMPUTE
#: request name -> the point its host's work is held at (``hold_point`` names)
POINTS = {"backup": "accepted-snapshot", "rescue": "accepted-rescue",
          "password-held": "accepted-set_admin_password"}


def _image(cloud: CloudProcess, image_id: str) -> dict | None:
    resp = cloud.request("GET", f"/image/v2/images/{image_id}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()


def _images_of(cloud: CloudProcess, server_id: str) -> list[dict]:
    resp = cloud.request("GET", f"/image/v2/images?instance_uuid={server_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["images"]


def _change_password(cloud: CloudProcess, server_id: str, out: list) -> None:
    """Ask for a password change whose host is held: the kill cuts it off unanswered."""
    try:
        out.append(cloud.request("POST", f"{COMPUTE}/servers/{server_id}/action",
                                 cloud=mh.USER,
                                 json={"changePassword": {"adminPass": "held-pass"}}))
    except requests.RequestException as exc:
        out.append(exc)


def test_kill_right_after_backup_rescue_and_password_change(tmp_path, capsys):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        srv = {name: mh.boot(cloud, f"held-{name}", flavor="1")["id"]
               for name in (*POINTS, "password")}
        paths = [hold(cloud, point, srv[name]) for name, point in POINTS.items()]
        resp = mh.action(cloud, srv["backup"], {"createBackup": {
            "name": "held-backup", "backup_type": "daily", "rotation": 2}},
            cloud_name=mh.USER, version="2.45")
        backup_id = resp.json()["image_id"]
        assert _image(cloud, backup_id)["status"] == "queued"
        mh.action(cloud, srv["rescue"], {"rescue": {"adminPass": "rescue-me"}}, expect=200,
                  cloud_name=mh.USER)
        unanswered: list = []
        caller = threading.Thread(target=_change_password, daemon=True,
                                  args=(cloud, srv["password-held"], unanswered))
        caller.start()
        wait_reached(paths)
        for name, task in (("backup", "image_backup"), ("rescue", "rescuing"),
                           ("password-held", "updating_password")):
            assert mh.server(cloud, srv[name])["OS-EXT-STS:task_state"] == task, name
        mh.action(cloud, srv["password"], {"changePassword": {"adminPass": "n3w-pass"}},
                  cloud_name=mh.USER)
        proc, cloud = kill_and_restart(proc, state, paths)
        caller.join(timeout=60)
        assert len(unanswered) == 1, unanswered
        cut_off = unanswered[0]
        assert not isinstance(cut_off, requests.Response) or cut_off.status_code >= 500, \
            cut_off.text

        outcomes = {name: mh.wait_task_done(cloud, sid)["status"] for name, sid in srv.items()}
        # the backup is given up as Nova gives it up (its half-made image deleted) or done
        backup = _image(cloud, backup_id)
        if backup is not None:
            assert backup["status"] == "active" and backup["image_type"] == "backup"
        assert all(i["status"] not in ("queued", "saving")
                   for i in _images_of(cloud, srv["backup"]))
        assert outcomes["backup"] == "ACTIVE", outcomes
        # a rescue ends rescued or not at all; a password change leaves the server running
        assert outcomes["rescue"] in ("RESCUE", "ACTIVE"), outcomes
        assert outcomes["password"] == outcomes["password-held"] == "ACTIVE", outcomes
        # each server takes requests again: the interrupted ones can be sent anew
        for name in ("password", "password-held"):
            mh.action(cloud, srv[name], {"changePassword": {"adminPass": "again"}},
                      cloud_name=mh.USER)
            assert mh.wait_task_done(cloud, srv[name])["status"] == "ACTIVE"
        if outcomes["rescue"] == "ACTIVE":
            mh.action(cloud, srv["rescue"], {"rescue": None}, expect=200, cloud_name=mh.USER)
            mh.wait_status(cloud, srv["rescue"], "RESCUE")
        mh.action(cloud, srv["rescue"], {"unrescue": None}, cloud_name=mh.USER)
        mh.wait_status(cloud, srv["rescue"], "ACTIVE")
        mh.action(cloud, srv["backup"], {"createBackup": {
            "name": "after-restart", "backup_type": "daily", "rotation": 2}},
            cloud_name=mh.USER, version="2.45")
        assert mh.wait_task_done(cloud, srv["backup"])["status"] == "ACTIVE"
        assert "after-restart" in [i["name"] for i in _images_of(cloud, srv["backup"])
                                   if i["status"] == "active"]
        mh.assert_audit_clean(cloud)
        with capsys.disabled():
            print(f"\nkill points covered right after an accepted action: {len(outcomes)} "
                  f"({', '.join(f'{n}: {s}' for n, s in outcomes.items())})")
    finally:
        stop_cloud(proc)
