"""Draining a cell end to end, through the admin API and ``transcell drain``.

A cloud of three cells with one host each of its own: a drain empties a cell
into the other two, so these tests never move the other move tests' servers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import movehelpers as mh
import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.compute.virt import disk

COMPUTE = mh.COMPUTE
DRAINS = f"{COMPUTE}/os-transcell-drains"
PATTERN = {0: b"drain-first-block" * 64, 3 * 1024 * 1024: b"drain-later" * 300}


@pytest.fixture(scope="module")
def dcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("drains"))
    proc = start_cloud(state_dir, extra=("--cells", "3", "--hosts-per-cell", "1"))
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


def boot_in(cloud, zone: str, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        body = {"server": {"name": name, "flavorRef": "1", "imageRef": mh.image_id(cloud),
                           "networks": [{"uuid": mh.network_id(cloud)}],
                           "availability_zone": zone}}
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["server"]["id"])
    for sid in ids:
        found = mh.wait_status(cloud, sid, "ACTIVE")
        assert mh.cell_of_host(mh.host_of(found)) == zone
    return ids


def drains(cloud) -> list[dict]:
    resp = cloud.request("GET", DRAINS)
    assert resp.status_code == 200, resp.text
    return resp.json()["drains"]


def show(cloud, drain_id: str) -> dict:
    resp = cloud.request("GET", f"{DRAINS}/{drain_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["drain"]


def wait_drain(cloud, drain_id: str, check=lambda d: d["status"] == "done",
               timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = show(cloud, drain_id)
        if check(found):
            return found
        assert time.monotonic() < deadline, json.dumps(found, indent=1)
        time.sleep(0.3)


def where(cloud, ids: list[str]) -> dict[str, tuple[str, str]]:
    return {sid: (mh.server(cloud, sid)["status"], mh.host_of(mh.server(cloud, sid)))
            for sid in ids}


def test_refused_requests_change_nothing(dcloud):
    cloud = dcloud
    for who in (mh.USER, "transcell-reader"):
        resp = cloud.request("POST", DRAINS, cloud=who, json={"drain": {"cell": "cell1"}})
        assert resp.status_code == 403, resp.text
        assert resp.json()["forbidden"]["code"] == 403
        assert cloud.request("GET", DRAINS, cloud=who).status_code == 403
    for body in ({}, {"drain": {}}, {"drain": {"cell": "cell1", "concurrency": 0}},
                 {"drain": {"cell": "cell1", "bandwidth_mib_s": 0}},
                 {"drain": {"cell": "cell1", "bogus": 1}},
                 {"drain": {"cell": "cell1", "to": "cell1"}},
                 {"drain": {"cell": "cell1", "to": "nowhere"}},
                 {"drain": {"cell": "cell0"}}, {"drain": {"cell": ""}}, [], "x"):
        resp = cloud.request("POST", DRAINS, json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["badRequest"]["code"] == 400
    resp = cloud.request("POST", DRAINS, json={"drain": {"cell": "cell9"}})
    assert resp.status_code == 404 and "itemNotFound" in resp.json(), resp.text
    assert cloud.request("GET", f"{DRAINS}/{'0' * 8}-0000-0000-0000-{'0' * 12}"
                         ).status_code == 404
    resp = cloud.request("POST", f"{DRAINS}/nope/action", json={"pause": None})
    assert resp.status_code == 404, resp.text
    assert drains(cloud) == []


def test_dry_run_plans_every_server_and_changes_nothing(dcloud):
    cloud = dcloud
    ids = boot_in(cloud, "cell1", [f"drained-{n}" for n in range(4)])
    before = where(cloud, ids)
    proc = cloud.transcell("drain", "cell1", "--dry-run", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for sid in ids:
        assert sid in proc.stdout
    assert "nothing was changed" in proc.stdout
    assert where(cloud, ids) == before
    assert all(not mh.migrations(cloud, sid) for sid in ids)
    assert drains(cloud) == []


def test_drain_pauses_resumes_and_moves_every_server(dcloud):
    """The CLI drains cell1: SIGUSR1 pauses it (the moves running finish, no new one
    starts), SIGUSR2 resumes it; every server ends ACTIVE in another cell with its
    bytes, each move confirmed by the drain, and the report lists each."""
    cloud = dcloud
    ids = [s["id"] for s in cloud.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1",
                                          version="2.53").json()["servers"]
           if mh.cell_of_host(s["OS-EXT-SRV-ATTR:host"]) == "cell1"]
    assert len(ids) == 4
    sums = {}
    for sid in ids:
        path = mh.root_disk(cloud, sid, "cell1-host1")
        for offset, data in PATTERN.items():
            disk.guest_write(path, offset, data + sid.encode())
        sums[sid] = disk.guest_checksum(path)
    faults = mh.fault_dir(cloud)
    hold = os.path.join(faults, "hold-allocations")
    reached = os.path.join(faults, "reached-allocations")
    open(hold, "w").close()
    cli = subprocess.Popen(
        [sys.executable, "-m", "transcell.cli.main", "drain", "cell1", "--concurrency", "2",
         "--state-dir", cloud.state_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        first = cli.stdout.readline()
        assert "accepted" in first, first + cli.stderr.read()
        drain_id = first.split()[1]
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "no move reached the hold point"
            time.sleep(0.1)
        cli.send_signal(signal.SIGUSR1)
        wait_drain(cloud, drain_id, lambda d: d["status"] == "paused", timeout=30)
        # a second drain of the same cell: 409, nothing recorded
        resp = cloud.request("POST", DRAINS, json={"drain": {"cell": "cell1"}})
        assert resp.status_code == 409 and "conflictingRequest" in resp.json(), resp.text
        os.unlink(hold)
        paused = wait_drain(cloud, drain_id, lambda d: d["progress"]["in_progress"] == 0)
        time.sleep(3)
        still = show(cloud, drain_id)
        assert still["status"] == "paused"
        assert still["progress"]["moved"] == 2 and still["progress"]["pending"] == 2, still
        assert [s["state"] for s in still["servers"]] == [s["state"] for s in
                                                          paused["servers"]]
        cli.send_signal(signal.SIGUSR2)
        out, err = cli.communicate(timeout=240)
    finally:
        if os.path.exists(hold):
            os.unlink(hold)
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, out + err
    done = show(cloud, drain_id)
    assert done["status"] == "done" and done["progress"]["moved"] == 4, done
    for entry in done["servers"]:
        sid = entry["id"]
        found = mh.server(cloud, sid)
        assert found["status"] == "ACTIVE" and found["OS-EXT-STS:task_state"] is None
        host = mh.host_of(found)
        assert mh.cell_of_host(host) in ("cell2", "cell3") and host == entry["dest_host"]
        assert entry["state"] == "moved" and entry["downtime_seconds"] is not None
        assert entry["bytes"] and entry["bytes"] > 0
        target = mh.root_disk(cloud, sid, host)
        assert disk.guest_checksum(target) == sums[sid]
        for offset, data in PATTERN.items():
            assert disk.guest_read(target, offset, len(data)) == data
        assert mh.migrations(cloud, sid)[0]["status"] == "confirmed"
        assert f"moved  {entry['name']} ({sid})" in out
    assert "4 moved, 0 failed" in out
    assert "[" in out and "ETA" in out  # the plain progress bar, not a TTY
    mh.assert_audit_clean(cloud)


def test_a_move_that_keeps_failing_is_retried_then_listed(dcloud):
    """One server's move fails every time: it is tried on one host, then on the
    other (its alternate), then listed as failed with the reason; the rest move."""
    cloud = dcloud
    ids = boot_in(cloud, "cell2", ["stubborn", "willing"])
    stubborn = ids[0]
    fault = os.path.join(mh.fault_dir(cloud), f"always-finish_dest@{stubborn}")
    with open(fault, "w") as fh:
        fh.write("injected: this server will not move")
    try:
        resp = cloud.request("POST", DRAINS, json={"drain": {"cell": "cell2",
                                                             "max_attempts": 2}})
        assert resp.status_code == 202, resp.text
        drain_id = resp.json()["drain"]["id"]
        assert {s["id"] for s in resp.json()["drain"]["servers"]} >= set(ids)
        done = wait_drain(cloud, drain_id)
    finally:
        os.unlink(fault)
    by_id = {s["id"]: s for s in done["servers"]}
    failed = by_id[stubborn]
    assert failed["state"] == "failed" and failed["attempts"] == 2, failed
    assert "this server will not move" in failed["error"]
    assert len(failed["errors"]) == 2
    found = mh.server(cloud, stubborn)
    assert found["status"] == "ACTIVE" and mh.host_of(found) == "cell2-host1"
    assert done["progress"]["failed"] == 1
    assert done["progress"]["moved"] == len(done["servers"]) - 1
    for sid, entry in by_id.items():
        if sid != stubborn:
            assert entry["state"] == "moved"
            assert mh.cell_of_host(mh.host_of(mh.server(cloud, sid))) in ("cell1", "cell3")
    proc = cloud.transcell("drain", "--watch", drain_id, check=False)
    assert proc.returncode == 3
    assert f"FAILED stubborn ({stubborn}) after 2 attempts" in proc.stdout
    mh.assert_audit_clean(cloud)


def test_two_drains_of_one_cell_sent_at_once_one_is_accepted(dcloud):
    """Two drains of the same cell race: exactly one 202, the other 409, and only the
    winner is recorded and runs to its end."""
    cloud = dcloud
    before = {d["id"] for d in drains(cloud)}
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def send(i: int) -> None:
        barrier.wait()
        answers[i] = cloud.request("POST", DRAINS, json={"drain": {"cell": "cell2"}})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 202).json()["drain"]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert "conflictingRequest" in loser, loser
    new = [d for d in drains(cloud) if d["id"] not in before]
    assert [d["id"] for d in new] == [winner["id"]]
    assert wait_drain(cloud, winner["id"])["progress"]["failed"] == 0
    mh.assert_audit_clean(cloud)


@pytest.mark.slow
def test_kill_the_cloud_mid_drain_and_it_continues(tmp_path):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state, extra=("--cells", "2", "--hosts-per-cell", "1"))
    cloud = CloudProcess(state, proc.port)
    try:
        ids = boot_in(cloud, "cell1", ["crash-a", "crash-b", "crash-c"])
        faults = mh.fault_dir(cloud)
        hold = os.path.join(faults, "hold-prep_source")
        reached = os.path.join(faults, "reached-prep_source")
        open(hold, "w").close()
        resp = cloud.request("POST", DRAINS, json={"drain": {
            "cell": "cell1", "to": "cell2", "concurrency": 1, "max_attempts": 3}})
        assert resp.status_code == 202, resp.text
        drain_id = resp.json()["drain"]["id"]
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the drain never reached the hold point"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.unlink(hold)
        os.unlink(reached)
        proc = start_cloud(state, extra=("--cells", "2", "--hosts-per-cell", "1"))
        cloud = CloudProcess(state, proc.port)
        done = wait_drain(cloud, drain_id)
        assert done["progress"]["moved"] == 3, json.dumps(done["servers"], indent=1)
        # the move the kill interrupted was undone, then tried again
        assert any("interrupted" in error for s in done["servers"] for error in s["errors"])
        for sid in ids:
            found = mh.server(cloud, sid)
            assert found["status"] == "ACTIVE" and mh.host_of(found) == "cell2-host1"
        mh.assert_audit_clean(cloud)
    finally:
        stop_cloud(proc, purge=True)
