"""Requests that race, sent through the API of a real ``transcell up`` as a hostile client
would: many at once against one server or one project's last quota. Each race ends with
exactly the outcomes one request at a time would allow, and a clean audit."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import movehelpers as mh
import pytest
import requests
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.move import plan

COMPUTE = mh.COMPUTE
QUOTA_INSTANCES = 6


@pytest.fixture(scope="module")
def rcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("races"))
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[quota]\ninstances = {QUOTA_INSTANCES}\n")
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call on its own thread, released together; answers in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(a is not None for a in answers), "a request never came back"
    return answers  # type: ignore[return-value]


def post_action(cloud: CloudProcess, server_id: str, body: dict,
                cloud_name: str = mh.USER) -> Callable[[], requests.Response]:
    return lambda: cloud.request("POST", f"{COMPUTE}/servers/{server_id}/action",
                                 cloud=cloud_name, json=body)


def delete_all(cloud: CloudProcess, server_ids: list[str]) -> None:
    for sid in server_ids:
        resp = cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
        assert resp.status_code in (204, 404), resp.text
    for sid in server_ids:
        cloud.wait_gone(sid)


def project_servers(cloud: CloudProcess, cloud_name: str) -> list[dict]:
    resp = cloud.request("GET", f"{COMPUTE}/servers", cloud=cloud_name)
    assert resp.status_code == 200, resp.text
    return resp.json()["servers"]


def settled(cloud: CloudProcess, server_id: str, timeout: float = 120) -> dict:
    """Until a confirmed move has ended (confirm answers before the conductor is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mh.wait_task_done(cloud, server_id)
        if found["status"] != "VERIFY_RESIZE":
            return found
        time.sleep(0.2)
    raise AssertionError(f"{server_id} stayed in VERIFY_RESIZE")


def test_parallel_creates_at_the_quota_edge_never_pass_it(rcloud):
    """Two servers are left under the limit; twelve creates race for them."""
    existing = [mh.boot(rcloud, f"quota-{i}", flavor="1")["id"]
                for i in range(QUOTA_INSTANCES - 2)]
    rcloud.token(mh.USER)
    body = {"server": {"name": "racer", "flavorRef": "1", "imageRef": mh.image_id(rcloud),
                       "networks": [{"uuid": mh.network_id(rcloud)}]}}
    answers = at_once([lambda: rcloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER,
                                              json=body) for _ in range(12)])
    codes = Counter(a.status_code for a in answers)
    assert set(codes) <= {202, 403}, [a.text for a in answers if a.status_code not in (202, 403)]
    assert codes[202] <= 2, codes
    for refused in (a for a in answers if a.status_code == 403):
        assert "Quota exceeded for instances" in refused.json()["forbidden"]["message"]
    created = [a.json()["server"]["id"] for a in answers if a.status_code == 202]
    # Racers may all be refused (each counted the others); the slots they did
    # not take are still free, one request at a time.
    while len(created) < 2:
        resp = rcloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body)
        assert resp.status_code == 202, resp.text
        created.append(resp.json()["server"]["id"])
    resp = rcloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body)
    assert resp.status_code == 403, resp.text
    for sid in created:
        rcloud.wait_status(sid, "ACTIVE")
    assert len(project_servers(rcloud, mh.USER)) <= QUOTA_INSTANCES
    limits = rcloud.request("GET", f"{COMPUTE}/limits", cloud=mh.USER).json()["limits"]
    assert limits["absolute"]["totalInstancesUsed"] <= QUOTA_INSTANCES
    mh.assert_audit_clean(rcloud)
    delete_all(rcloud, existing + created)


def test_twenty_parallel_resizes_of_one_server_accept_exactly_one(rcloud):
    sid = mh.boot(rcloud, "resize-race")["id"]
    rcloud.token(mh.USER)
    answers = at_once([post_action(rcloud, sid, {"resize": {"flavorRef": "21"}})
                       for _ in range(20)])
    codes = Counter(a.status_code for a in answers)
    assert codes == Counter({202: 1, 409: 19}), [a.text for a in answers]
    for loser in (a for a in answers if a.status_code == 409):
        assert loser.json()["conflictingRequest"]["code"] == 409
    found = mh.wait_status(rcloud, sid, "VERIFY_RESIZE")
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"
    assert len(mh.migrations(rcloud, sid)) == 1
    mh.action(rcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(rcloud, sid, "ACTIVE")
    mh.assert_audit_clean(rcloud)
    delete_all(rcloud, [sid])


@pytest.mark.parametrize("round_", range(2))
def test_confirm_and_revert_sent_together_exactly_one_is_accepted(rcloud, round_):
    srv = mh.boot(rcloud, f"end-race-{round_}")
    sid, source = srv["id"], mh.host_of(srv)
    mh.action(rcloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
    target = mh.host_of(mh.wait_status(rcloud, sid, "VERIFY_RESIZE"))
    rcloud.token(mh.USER)
    confirm, revert = at_once([post_action(rcloud, sid, {"confirmResize": None}),
                               post_action(rcloud, sid, {"revertResize": None})])
    assert sorted([confirm.status_code, revert.status_code]) in ([204, 409], [202, 409]), (
        confirm.text, revert.text)
    found = mh.wait_status(rcloud, sid, "ACTIVE")
    expected_host = target if confirm.status_code == 204 else source
    assert mh.host_of(found) == expected_host
    [migration] = mh.migrations(rcloud, sid)
    assert migration["status"] == ("confirmed" if confirm.status_code == 204 else "reverted")
    mh.assert_audit_clean(rcloud)
    delete_all(rcloud, [sid])


def test_a_second_ending_of_the_same_move_is_refused(rcloud):
    sid = mh.boot(rcloud, "end-twice")["id"]
    mh.action(rcloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
    mh.wait_status(rcloud, sid, "VERIFY_RESIZE")
    mh.action(rcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(rcloud, sid, "ACTIVE")
    for body in ({"confirmResize": None}, {"revertResize": None}):
        mh.action(rcloud, sid, body, expect=409, cloud_name=mh.USER)
    assert mh.server(rcloud, sid)["status"] == "ACTIVE"
    mh.assert_audit_clean(rcloud)
    delete_all(rcloud, [sid])


@pytest.mark.parametrize("step", plan.STEP_NAMES)
def test_delete_while_a_move_is_held_after_each_step(rcloud, step):
    """A delete never overtakes the move that owns the server; once the move reaches
    VERIFY_RESIZE the delete confirms it and removes the server from both cells."""
    sid = mh.boot(rcloud, f"del-{step}")["id"]
    faults = mh.fault_dir(rcloud)
    hold, reached = (os.path.join(faults, f"{what}-{step}") for what in ("hold", "reached"))
    open(hold, "w").close()
    try:
        mh.action(rcloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, f"the move never reached {step}"
            time.sleep(0.05)
        resp = rcloud.request("DELETE", f"{COMPUTE}/servers/{sid}", cloud=mh.USER)
        assert resp.status_code == 409, resp.text
    finally:
        os.unlink(hold)
    mh.wait_status(rcloud, sid, "VERIFY_RESIZE")
    os.unlink(reached)
    resp = rcloud.request("DELETE", f"{COMPUTE}/servers/{sid}", cloud=mh.USER)
    assert resp.status_code == 204, resp.text
    rcloud.wait_gone(sid)
    assert mh.locate(rcloud, sid)["disks"] == []
    mh.assert_audit_clean(rcloud)


def test_stop_start_and_resize_interleaved_leave_one_consistent_server(rcloud):
    sid = mh.boot(rcloud, "interleave")["id"]
    rcloud.token(mh.USER)
    accepted_moves = 0
    faults = mh.fault_dir(rcloud)
    # Whatever is accepted waits until every answer is in: otherwise a stop that ends
    # before a resize arrives lets both be accepted, one after the other, rightly.
    holds = [os.path.join(faults, f"hold-accepted-{point}@{sid}")
             for point in ("stop", "start", "move")]
    for _ in range(4):
        for path in holds:
            open(path, "w").close()
        try:
            answers = at_once([post_action(rcloud, sid, {"os-stop": None}),
                               post_action(rcloud, sid, {"os-start": None}),
                               post_action(rcloud, sid, {"resize": {"flavorRef": "21"}}),
                               post_action(rcloud, sid, {"resize": {"flavorRef": "12"}})])
        finally:
            for path in holds:
                os.unlink(path)
        # 400: a resize to the flavor the server already has
        assert {a.status_code for a in answers} <= {202, 400, 409}, [a.text for a in answers]
        assert sum(a.status_code == 202 for a in answers) <= 1, [a.text for a in answers]
        accepted_moves += sum(a.status_code == 202 for a in answers[2:])
        found = mh.wait_task_done(rcloud, sid)
        if found["status"] == "VERIFY_RESIZE":
            mh.action(rcloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
            found = settled(rcloud, sid)
        assert found["status"] in ("ACTIVE", "SHUTOFF"), found
    assert len(mh.migrations(rcloud, sid)) == accepted_moves
    mh.assert_audit_clean(rcloud)
    delete_all(rcloud, [sid])
