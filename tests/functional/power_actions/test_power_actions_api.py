"""Reboot, pause, suspend, lock, rescue, state reset, passwords, console output and
diagnostics of a server on a real compute host, through the Compute API."""

from __future__ import annotations

import pytest
from powerhelpers import (
    ADMIN,
    COMPUTE,
    OTHER,
    USER,
    act,
    boot,
    error,
    events,
    force_delete,
    image_id,
    ok,
    show,
    wait_events_done,
)


@pytest.fixture
def server(pcloud, request):
    created = boot(pcloud, request.node.name[:40])
    yield created
    force_delete(pcloud, created["id"])


def _console(cloud, server_id: str, length=None, cloud_name: str = USER) -> str:
    body = {"os-getConsoleOutput": {} if length is None else {"length": length}}
    resp = ok(cloud, server_id, body, expect=200, cloud_name=cloud_name)
    return resp.json()["output"]


def test_soft_and_hard_reboot_record_their_action_and_boot_the_guest_again(pcloud, server):
    sid = server["id"]
    boots_before = _console(pcloud, sid).count("--- ")
    resp = ok(pcloud, sid, {"reboot": {"type": "SOFT"}})
    request_id = resp.headers["x-openstack-request-id"]
    found = wait_events_done(pcloud, sid, request_id)
    assert [(e["event"], e["result"]) for e in found] == [("compute_reboot_instance",
                                                           "Success")]
    assert pcloud.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1
    ok(pcloud, sid, {"reboot": {"type": "hard"}})
    pcloud.wait_status(sid, "ACTIVE")
    log = _console(pcloud, sid)
    assert log.count("--- ") == boots_before + 2
    assert "--- soft reboot ---" in log and "--- hard reboot ---" in log
    assert [a["action"] for a in events(pcloud, sid)][:2] == ["reboot", "reboot"]


def test_hard_reboot_starts_a_stopped_server_a_soft_one_is_refused(pcloud, server):
    sid = server["id"]
    ok(pcloud, sid, {"os-stop": None})
    pcloud.wait_status(sid, "SHUTOFF")
    message = error(act(pcloud, sid, {"reboot": {"type": "SOFT"}}), 409, "conflictingRequest")
    assert "vm_state stopped" in message
    ok(pcloud, sid, {"reboot": {"type": "HARD"}})
    assert pcloud.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1


@pytest.mark.parametrize("body", [{"reboot": {}}, {"reboot": {"type": "WARM"}},
                                  {"reboot": {"type": "SOFT", "force": True}},
                                  {"reboot": None}])
def test_bad_reboot_bodies_are_400_and_change_nothing(pcloud, server, body):
    error(act(pcloud, server["id"], body), 400, "badRequest")
    assert show(pcloud, server["id"])["OS-EXT-STS:task_state"] is None
    assert "reboot" not in [a["action"] for a in events(pcloud, server["id"])]


def test_pause_unpause_suspend_resume(pcloud, server):
    sid = server["id"]
    ok(pcloud, sid, {"pause": None})
    paused = pcloud.wait_status(sid, "PAUSED")
    assert (paused["OS-EXT-STS:vm_state"], paused["OS-EXT-STS:power_state"]) == ("paused", 3)
    # paused: no second pause, no suspend, no soft reboot
    for body in ({"pause": None}, {"suspend": None}, {"reboot": {"type": "SOFT"}},
                 {"resume": None}):
        error(act(pcloud, sid, body), 409, "conflictingRequest")
    ok(pcloud, sid, {"unpause": None})
    pcloud.wait_status(sid, "ACTIVE")
    error(act(pcloud, sid, {"unpause": None}), 409, "conflictingRequest")
    ok(pcloud, sid, {"suspend": None})
    suspended = pcloud.wait_status(sid, "SUSPENDED")
    assert (suspended["OS-EXT-STS:vm_state"], suspended["OS-EXT-STS:power_state"]) == \
        ("suspended", 7)
    ok(pcloud, sid, {"resume": None})
    assert pcloud.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1
    assert [a["action"] for a in events(pcloud, sid)][:4] == \
        ["resume", "suspend", "unpause", "pause"]
    log = _console(pcloud, sid)
    assert "guest paused" in log and "PM: resumed from saved memory" in log


def test_lock_with_reason_blocks_the_member_not_the_admin(pcloud, server):
    sid = server["id"]
    ok(pcloud, sid, {"lock": {"locked_reason": "maintenance window"}}, version="2.73")
    shown = show(pcloud, sid, version="2.73", cloud_name=USER)
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance window"
    assert "locked" not in show(pcloud, sid, version="2.8")
    assert "locked_reason" not in show(pcloud, sid, version="2.72")
    for body in ({"reboot": {"type": "SOFT"}}, {"pause": None}, {"os-stop": None},
                 {"changePassword": {"adminPass": "x"}}, {"rescue": None}):
        message = error(act(pcloud, sid, body), 409, "conflictingRequest")
        assert "is locked" in message
    resp = pcloud.request("DELETE", f"{COMPUTE}/servers/{sid}", cloud=USER)
    assert "is locked" in error(resp, 409, "conflictingRequest")
    # the administrator is not held back by the lock
    ok(pcloud, sid, {"reboot": {"type": "SOFT"}}, cloud_name=ADMIN)
    pcloud.wait_status(sid, "ACTIVE")
    ok(pcloud, sid, {"unlock": None})
    shown = show(pcloud, sid)
    assert shown["locked"] is False and shown["locked_reason"] is None
    ok(pcloud, sid, {"pause": None})
    pcloud.wait_status(sid, "PAUSED")
    actions = [a["action"] for a in events(pcloud, sid)]
    assert actions[:4] == ["pause", "unlock", "reboot", "lock"]


def test_an_admins_lock_stays_until_an_admin_unlocks(pcloud, server):
    sid = server["id"]
    ok(pcloud, sid, {"lock": None}, cloud_name=ADMIN)
    resp = act(pcloud, sid, {"unlock": None})
    error(resp, 403, "forbidden")
    assert show(pcloud, sid)["locked"] is True
    ok(pcloud, sid, {"unlock": None}, cloud_name=ADMIN)
    assert show(pcloud, sid)["locked"] is False


def test_lock_reason_is_checked_from_273(pcloud, server):
    sid = server["id"]
    for body in ({"lock": {"locked_reason": ""}}, {"lock": {"locked_reason": "x" * 256}},
                 {"lock": {"reason": "x"}}):
        error(act(pcloud, sid, body, version="2.73"), 400, "badRequest")
    assert show(pcloud, sid)["locked"] is False
    # before 2.73 a reason is not read
    ok(pcloud, sid, {"lock": {"locked_reason": "ignored"}}, version="2.72")
    assert show(pcloud, sid)["locked_reason"] is None


def test_reset_state_is_for_admins(pcloud, server):
    sid = server["id"]
    error(act(pcloud, sid, {"os-resetState": {"state": "error"}}), 403, "forbidden")
    error(act(pcloud, sid, {"os-resetState": {"state": "paused"}}, cloud_name=ADMIN), 400,
          "badRequest")
    ok(pcloud, sid, {"os-resetState": {"state": "error"}}, cloud_name=ADMIN)
    shown = show(pcloud, sid)
    assert (shown["status"], shown["OS-EXT-STS:vm_state"]) == ("ERROR", "error")
    error(act(pcloud, sid, {"pause": None}), 409, "conflictingRequest")
    ok(pcloud, sid, {"os-resetState": {"state": "active"}}, cloud_name=ADMIN)
    assert show(pcloud, sid)["status"] == "ACTIVE"
    assert [a["action"] for a in events(pcloud, sid)][:2] == ["resetState", "resetState"]


def test_another_projects_server_is_not_found(pcloud, server):
    sid = server["id"]
    for body in ({"reboot": {"type": "HARD"}}, {"pause": None}, {"lock": None},
                 {"os-getConsoleOutput": {}}, {"rescue": None}, {"restore": None},
                 {"forceDelete": None}):
        error(act(pcloud, sid, body, cloud_name=OTHER), 404, "itemNotFound")
    resp = pcloud.request("GET", f"{COMPUTE}/servers/{sid}/os-server-password", cloud=OTHER)
    error(resp, 404, "itemNotFound")
    assert show(pcloud, sid)["status"] == "ACTIVE"


def test_console_output_tails_the_guests_log(pcloud, server):
    sid = server["id"]
    whole = _console(pcloud, sid)
    assert "login:" in whole and "Booting from Hard Disk..." in whole
    ten = _console(pcloud, sid, 10)
    assert len(ten.split("\n")) == 10 and whole.endswith(ten)
    assert _console(pcloud, sid, "3") == "\n".join(whole.split("\n")[-3:])
    assert _console(pcloud, sid, -1) == whole
    for length in (-2, "abc", 1.5, "-3"):
        error(act(pcloud, sid, {"os-getConsoleOutput": {"length": length}}), 400,
              "badRequest")
    error(act(pcloud, sid, {"os-getConsoleOutput": {"lines": 3}}), 400, "badRequest")


def test_change_password_reaches_the_guest_and_server_password_can_be_cleared(pcloud,
                                                                             server):
    sid = server["id"]
    resp = ok(pcloud, sid, {"changePassword": {"adminPass": "n3w-secret"}})
    wait_events_done(pcloud, sid, resp.headers["x-openstack-request-id"])
    assert show(pcloud, sid)["OS-EXT-STS:task_state"] is None
    assert "administrator password changed" in _console(pcloud, sid)
    error(act(pcloud, sid, {"changePassword": {}}), 400, "badRequest")
    error(act(pcloud, sid, {"changePassword": {"adminPass": 5}}), 400, "badRequest")
    ok(pcloud, sid, {"os-stop": None})
    pcloud.wait_status(sid, "SHUTOFF")
    error(act(pcloud, sid, {"changePassword": {"adminPass": "x"}}), 409, "conflictingRequest")
    path = f"{COMPUTE}/servers/{sid}/os-server-password"
    resp = pcloud.request("GET", path, cloud=USER)
    assert resp.status_code == 200 and resp.json() == {"password": ""}
    resp = pcloud.request("DELETE", path, cloud=USER)
    assert resp.status_code == 204, resp.text


def test_rescue_and_unrescue(pcloud, server):
    sid = server["id"]
    resp = ok(pcloud, sid, {"rescue": {"adminPass": "rescue-me"}}, expect=200)
    assert resp.json() == {"adminPass": "rescue-me"}
    rescued = pcloud.wait_status(sid, "RESCUE")
    assert rescued["OS-EXT-STS:vm_state"] == "rescued"
    assert "rescue boot from image" in _console(pcloud, sid)
    error(act(pcloud, sid, {"rescue": None}), 409, "conflictingRequest")
    error(act(pcloud, sid, {"pause": None}), 409, "conflictingRequest")
    ok(pcloud, sid, {"unrescue": None})
    pcloud.wait_status(sid, "ACTIVE")
    error(act(pcloud, sid, {"unrescue": None}), 409, "conflictingRequest")
    generated = ok(pcloud, sid, {"rescue": None}, expect=200).json()["adminPass"]
    assert len(generated) == 12
    pcloud.wait_status(sid, "RESCUE")
    ok(pcloud, sid, {"unrescue": None})
    pcloud.wait_status(sid, "ACTIVE")
    image = image_id(pcloud)
    ok(pcloud, sid, {"rescue": {"rescue_image_ref": image}}, expect=200)
    pcloud.wait_status(sid, "RESCUE")
    assert f"rescue boot from image {image}" in _console(pcloud, sid)
    ok(pcloud, sid, {"unrescue": None})
    pcloud.wait_status(sid, "ACTIVE")


def test_rescue_bodies_are_checked(pcloud, server):
    sid = server["id"]
    for body in ({"rescue": {"rescue_image_ref": "not-a-uuid"}},
                 {"rescue": {"rescue_image_ref": "a2b5c0c5-1d1e-4a8a-9d5a-0a7f0c3b0a11"}},
                 {"rescue": {"password": "x"}}):
        error(act(pcloud, sid, body), 400, "badRequest")
    assert show(pcloud, sid)["status"] == "ACTIVE"


def test_diagnostics_for_admins_in_the_248_format(pcloud, server):
    sid = server["id"]
    path = f"{COMPUTE}/servers/{sid}/diagnostics"
    error(pcloud.request("GET", path, cloud=USER, version="2.48"), 403, "forbidden")
    resp = pcloud.request("GET", path, version="2.48")
    assert resp.status_code == 200, resp.text
    diag = resp.json()
    assert diag["state"] == "running" and diag["num_cpus"] == 1 and diag["num_nics"] == 1
    assert diag["memory_details"]["maximum"] == 512
    assert diag["nic_details"][0]["mac_address"]
    assert diag["num_disks"] == len(diag["disk_details"]) == 1
    legacy = pcloud.request("GET", path, version="2.47").json()
    assert "cpu0_time" in legacy and legacy["memory"] == 512 and "state" not in legacy
    ok(pcloud, sid, {"pause": None})
    pcloud.wait_status(sid, "PAUSED")
    error(pcloud.request("GET", path, version="2.48"), 409, "conflictingRequest")


def test_unknown_action_is_400(pcloud, server):
    error(act(pcloud, server["id"], {"reboooot": None}), 400, "badRequest")


def test_of_racing_pauses_exactly_one_is_accepted(pcloud, server):
    from concurrent.futures import ThreadPoolExecutor
    sid = server["id"]
    pcloud.token(USER)  # one token for every thread
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = sorted(pool.map(lambda _: act(pcloud, sid, {"pause": None}).status_code,
                                range(4)))
    assert codes == [202, 409, 409, 409]
    pcloud.wait_status(sid, "PAUSED")
    assert [a["action"] for a in events(pcloud, sid)].count("pause") == 1


def _hold(cloud, point: str, server_id: str) -> tuple[str, str]:
    import os
    faults = os.path.join(cloud.state_dir, "faults", "saga")
    os.makedirs(faults, exist_ok=True)
    paths = (os.path.join(faults, f"hold-{point}@{server_id}"),
             os.path.join(faults, f"reached-{point}@{server_id}"))
    open(paths[0], "w").close()
    return paths


def _release_when_reached(paths: tuple[str, str]) -> None:
    import os
    import time
    deadline = time.monotonic() + 30
    while not os.path.exists(paths[1]):
        assert time.monotonic() < deadline, "the host never reached the held point"
        time.sleep(0.05)
    os.unlink(paths[0])


def test_a_delete_overtakes_a_pause_on_its_way(pcloud, server):
    sid = server["id"]
    held = _hold(pcloud, "accepted-pause", sid)
    try:
        ok(pcloud, sid, {"pause": None})
        assert show(pcloud, sid)["OS-EXT-STS:task_state"] == "pausing"
        ok(pcloud, sid, {"forceDelete": None})
    finally:
        _release_when_reached(held)
    pcloud.wait_gone(sid)


def test_a_state_reset_overtakes_a_suspend_on_its_way(pcloud, server):
    sid = server["id"]
    held = _hold(pcloud, "accepted-suspend", sid)
    try:
        ok(pcloud, sid, {"suspend": None})
        error(act(pcloud, sid, {"suspend": None}), 409, "conflictingRequest")
        ok(pcloud, sid, {"os-resetState": {"state": "active"}}, cloud_name=ADMIN)
    finally:
        _release_when_reached(held)
    request_id = events(pcloud, sid)[1]["request_id"]
    found = wait_events_done(pcloud, sid, request_id)
    assert [(e["event"], e["result"]) for e in found] == [("compute_suspend_instance",
                                                           "Success")]
    shown = show(pcloud, sid)
    assert (shown["OS-EXT-STS:vm_state"], shown["OS-EXT-STS:task_state"]) == ("active", None)


@pytest.mark.parametrize("cell", ["cell1", "cell2"])
def test_actions_reach_the_host_in_either_cell(pcloud, cell):
    sid = boot(pcloud, f"in-{cell}", zone=cell)["id"]
    try:
        assert show(pcloud, sid)["OS-EXT-AZ:availability_zone"] == cell
        ok(pcloud, sid, {"pause": None})
        pcloud.wait_status(sid, "PAUSED")
        ok(pcloud, sid, {"reboot": {"type": "HARD"}})
        pcloud.wait_status(sid, "ACTIVE")
        assert "--- hard reboot ---" in _console(pcloud, sid)
        diag = pcloud.request("GET", f"{COMPUTE}/servers/{sid}/diagnostics", version="2.48")
        assert diag.status_code == 200 and diag.json()["state"] == "running"
    finally:
        force_delete(pcloud, sid)
