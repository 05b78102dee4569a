"""Pre-copy: a running server's disk is copied in rounds while it runs, and only the
last few chunks after it stops; a pre-copy that fails or is killed leaves the server
running where it was, with nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import time

import movehelpers as mh
import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.compute.virt import disk, disk_chain

MiB = 1024 * 1024


def _hold(cloud, point: str, sid: str) -> tuple[str, str]:
    faults = mh.fault_dir(cloud)
    paths = (os.path.join(faults, f"hold-{point}@{sid}"),
             os.path.join(faults, f"reached-{point}@{sid}"))
    open(paths[0], "w").close()
    return paths


def _wait_reached(paths: tuple[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(paths[1]):
        assert time.monotonic() < deadline, f"never reached {paths[1]}"
        time.sleep(0.05)


def _release(paths: tuple[str, str]) -> None:
    os.unlink(paths[0])


def _show(cloud, migration_uuid: str) -> dict:
    return json.loads(cloud.transcell("migration", "show", migration_uuid, "--json").stdout)


def _guest_state(cloud, sid: str, host: str) -> dict:
    path = os.path.join(os.path.dirname(mh.root_disk(cloud, sid, host)), "guest.json")
    with open(path) as fh:
        return json.load(fh)


def test_writes_made_during_precopy_travel_and_the_downtime_is_recorded(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "precopy-writes")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    # more than [conductor] precopy_stop_mib (16) since the image, or nothing is pre-copied
    written = {4096: os.urandom(3000), 9 * MiB + 7: os.urandom(18 * MiB)}
    for offset, data in written.items():
        disk.guest_write(root, offset, data)
    # the target builds from round 1 while the guest, still running, writes again
    held = _hold(cloud, "compute-prebuild", sid)
    mh.action(cloud, sid, {"migrate": None})
    _wait_reached(held)
    assert mh.server(cloud, sid)["OS-EXT-STS:power_state"] == 1  # still running
    assert disk_chain.frozen_layers(root) == [root + ".pre-1"]
    # more than [conductor] precopy_stop_mib (16), so another round sends it: chunks
    # 0 and 1 and the five chunks from 40 MiB
    during = {5 * MiB: os.urandom(MiB), 4096: os.urandom(100), 40 * MiB: os.urandom(20 * MiB)}
    for offset, data in during.items():
        disk.guest_write(root, offset, data)
    written[5 * MiB] = during[5 * MiB]
    written[40 * MiB] = during[40 * MiB]
    written[4096] = during[4096] + written[4096][100:]
    _release(held)
    moved = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dest = mh.host_of(moved)
    assert dest != src
    target = mh.root_disk(cloud, sid, dest)
    for offset, data in written.items():
        assert disk.guest_read(target, offset, len(data)) == data, offset
    mig = mh.migrations(cloud, sid)[0]
    shown = _show(cloud, mig["uuid"])
    rounds = shown["precopy_rounds"]
    assert len(rounds) == 2, rounds
    # round 2 sent what was written during round 1, not the disk again, and nothing was
    # written after its freeze, so nothing was left for after the stop
    assert rounds[1]["bytes_sent"] == 7 * 4 * MiB, rounds
    assert rounds[1]["pending_bytes"] == 0 and shown["chunks_after_stop"] == 0, shown
    # round 1 was mostly new data: the target took the store's spool over, writing
    # none of it again; round 2 patched only the seven chunks it sent
    assert rounds[0]["bytes_taken_at_target"] >= 18 * MiB, rounds
    assert rounds[0]["bytes_written_at_target"] <= 4 * MiB, rounds  # the image's chunk
    assert rounds[1]["bytes_taken_at_target"] == 0, rounds
    assert rounds[1]["bytes_written_at_target"] == 7 * 4 * MiB, rounds
    assert all(r["upload_seconds"] > 0 and r["build_seconds"] > 0 for r in rounds), rounds
    assert shown["downtime_seconds"] is not None and shown["downtime_seconds"] > 0
    assert {s["name"]: s["state"] for s in shown["steps"]}["precopy"] == "done"
    # the Compute API shows it too, in the target's finish event (details, 2.84)
    finish = [e for e in mh.actions(cloud, sid)["migrate"]
              if e["event"] == "compute_finish_snapshot_based_resize_at_dest"][0]
    assert finish["details"] == (
        f"guest down {shown['downtime_seconds']:.2f} s; root disk: 0.0 MiB sent after the "
        f"stop, {sum(r['bytes_sent'] for r in rounds) / MiB:.1f} MiB while running "
        f"(2 pre-copy rounds)"), finish
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)


def test_a_quiet_server_moves_without_a_round_and_the_record_says_why(mcloud):
    """A guest that wrote less than precopy_stop_mib since its image is measured once
    and stopped at once: nothing frozen, no round image, its chunks sent after the stop."""
    cloud = mcloud
    srv = mh.boot(cloud, "precopy-quiet")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    # chunks 0, 1 and 3: 12 MiB of chunks, under the 16 MiB threshold
    written = {4096: os.urandom(3000), 5 * MiB: os.urandom(MiB), 13 * MiB: os.urandom(4096)}
    for offset, data in written.items():
        disk.guest_write(root, offset, data)
    resp = cloud.request("POST", f"{mh.COMPUTE}/os-transcell-move-plans",
                         json={"move_plan": {"server_id": sid}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["move_plans"][0]["predicted"]["precopy"] is False
    mh.action(cloud, sid, {"migrate": None})
    moved = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dest = mh.host_of(moved)
    target = mh.root_disk(cloud, sid, dest)
    for offset, data in written.items():
        assert disk.guest_read(target, offset, len(data)) == data, offset
    assert disk_chain.frozen_layers(root) == []  # never frozen
    mig = mh.migrations(cloud, sid)[0]
    shown = _show(cloud, mig["uuid"])
    assert shown["precopy_rounds"] == [], shown
    assert shown["precopy_skipped"]["pending_bytes"] == 3 * 4 * MiB, shown
    assert shown["precopy_skipped"]["stop_bytes"] == 16 * MiB, shown
    assert "precopy_stop_mib" in shown["precopy_skipped"]["reason"]
    # everything went after the stop, in one image
    assert shown["bytes_uploaded_after_stop"] == 3 * 4 * MiB, shown
    text = cloud.transcell("migration", "show", mig["uuid"]).stdout
    assert "pre-copy: skipped" in text, text
    events = [e["event"] for e in mh.actions(cloud, sid)["migrate"]]
    assert "conductor_precopy_disk" not in events, events
    images = cloud.request("GET", "/image/v2/images?os_hidden=true").json()["images"]
    assert [i["id"] for i in images if i.get("transcell_migration") == mig["uuid"]] == []
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)


def test_revert_after_precopy_folds_the_source_disk_back(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "precopy-revert")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    data = os.urandom(20 * MiB)  # more than precopy_stop_mib: worth pre-copying
    disk.guest_write(root, 2 * MiB, data)
    # the plan of a running server counts its disk's transfer in the move, not the downtime
    resp = cloud.request("POST", f"{mh.COMPUTE}/os-transcell-move-plans",
                         json={"move_plan": {"server_id": sid}})
    assert resp.status_code == 200, resp.text
    predicted = resp.json()["move_plans"][0]["predicted"]
    assert predicted["precopy"] is True
    assert predicted["downtime_seconds"] < predicted["move_seconds"], predicted
    mh.action(cloud, sid, {"migrate": None})
    mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    assert disk_chain.frozen_layers(root)  # kept, as the source's disk, until the move ends
    mh.action(cloud, sid, {"revertResize": None})
    back = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(back) == src
    assert disk_chain.frozen_layers(root) == []
    assert disk.guest_read(root, 2 * MiB, len(data)) == data
    mh.assert_audit_clean(cloud)


def _boots(cloud, sid: str, host: str) -> int:
    """Times the guest booted, from its console: a guest stopped and started again
    by an undone move boots once more."""
    path = os.path.join(os.path.dirname(mh.root_disk(cloud, sid, host)), "console.log")
    with open(path) as fh:
        return sum("Booting from Hard Disk" in line for line in fh)


def _assert_running_at_source_with_nothing_left(cloud, sid: str, src: str, root: str,
                                                written: dict[int, bytes]) -> dict:
    found = mh.wait_task_done(cloud, sid)
    assert found["status"] == "ACTIVE" and mh.host_of(found) == src, found
    assert _guest_state(cloud, sid, src)["power_state"] == 1
    assert disk_chain.frozen_layers(root) == []
    for offset, data in written.items():
        assert disk.guest_read(root, offset, len(data)) == data, offset
    where = mh.locate(cloud, sid)
    assert {d["host"] for d in where["disks"]} == {src}, where
    mig = mh.wait_migration(cloud, sid, "error")
    images = cloud.request("GET", "/image/v2/images?os_hidden=true").json()["images"]
    assert not [i for i in images if i.get("transcell_migration") == mig["uuid"]], images
    mh.assert_audit_clean(cloud)
    return mig


def test_a_failure_during_precopy_leaves_the_guest_running_where_it_was(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "precopy-fails")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    written = {8192: os.urandom(20 * MiB)}
    for offset, data in written.items():
        disk.guest_write(root, offset, data)
    boots = _boots(cloud, sid, src)
    with open(os.path.join(mh.fault_dir(cloud), f"always-precopy-round@{sid}"), "w") as fh:
        fh.write("injected failure after a pre-copy round")
    try:
        mh.action(cloud, sid, {"migrate": None})
        mig = _assert_running_at_source_with_nothing_left(cloud, sid, src, root, written)
    finally:
        os.unlink(os.path.join(mh.fault_dir(cloud), f"always-precopy-round@{sid}"))
    shown = _show(cloud, mig["uuid"])
    assert shown["precopy_rounds"], shown  # it had copied before it failed
    assert {s["name"]: s["state"] for s in shown["steps"]}["precopy"] == "undone"
    assert _boots(cloud, sid, src) == boots  # never stopped, so never booted again


@pytest.mark.slow
def test_a_kill_during_precopy_leaves_the_guest_running_where_it_was(tmp_path):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    try:
        cloud = CloudProcess(state, proc.port)
        srv = mh.boot(cloud, "precopy-killed")
        sid, src = srv["id"], mh.host_of(srv)
        root = mh.root_disk(cloud, sid, src)
        written = {4096: os.urandom(20 * MiB)}
        for offset, data in written.items():
            disk.guest_write(root, offset, data)
        boots = _boots(cloud, sid, src)
        held = _hold(cloud, "compute-prebuild", sid)
        mh.action(cloud, sid, {"migrate": None})
        _wait_reached(held)
        late = os.urandom(4096)
        disk.guest_write(root, 30 * MiB, late)  # on top of the frozen layer
        written[30 * MiB] = late
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.unlink(held[0])
        os.unlink(held[1])
        proc = start_cloud(state)
        cloud = CloudProcess(state, proc.port)
        _assert_running_at_source_with_nothing_left(cloud, sid, src, root, written)
        # a restarted host boots its running guests again; the move itself stopped nothing
        assert _boots(cloud, sid, src) <= boots + 1
    finally:
        stop_cloud(proc)


def test_the_audit_finds_layers_a_host_failed_to_fold_and_fix_folds_them(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "precopy-stale")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    data = os.urandom(MiB)
    disk.guest_write(root, 3 * MiB, data)
    # what a move's frozen layers look like once nothing will fold them back
    disk_chain.freeze(root, "qcow2")
    disk.guest_write(root, 7 * MiB, data)
    report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
    assert [(p["kind"], p.get("subject")) for p in report["problems"]] == [
        ("precopy-layers", sid)], report
    fixed = json.loads(cloud.transcell("audit", "--json", "--fix", check=False).stdout)
    assert [(f["kind"], f["subject"]) for f in fixed["fixed"]] == [("precopy-layers", sid)]
    assert disk_chain.frozen_layers(root) == []
    assert disk.guest_read(root, 3 * MiB, MiB) == data
    assert disk.guest_read(root, 7 * MiB, MiB) == data
    mh.assert_audit_clean(cloud)


def test_an_audit_fold_that_a_move_overtakes_leaves_the_moves_layers_alone(mcloud):
    """The audit saw a disk's stale frozen layers with no move under way; before its fix
    folds them a move starts and freezes the disk for its pre-copy. The fold, asked
    again under the disk's writer lock, sees the move and leaves the chain alone, so the
    round reading it loses nothing, and the move's own end folds the layers."""
    import subprocess
    import sys

    cloud = mcloud
    srv = mh.boot(cloud, "precopy-audit-race")
    sid, src = srv["id"], mh.host_of(srv)
    root = mh.root_disk(cloud, sid, src)
    before, stale = os.urandom(18 * MiB), os.urandom(MiB)
    disk.guest_write(root, 2 * MiB, before)
    disk_chain.freeze(root, "qcow2")  # a move's layers a host failed to fold back
    disk.guest_write(root, 30 * MiB, stale)
    fold = _hold(cloud, "audit-fold", sid)
    audit = subprocess.Popen(
        [sys.executable, "-m", "transcell.cli.main", "audit", "--json", "--fix",
         "--state-dir", cloud.state_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        _wait_reached(fold)
        prebuild = _hold(cloud, "compute-prebuild", sid)
        mh.action(cloud, sid, {"migrate": None})
        _wait_reached(prebuild)  # frozen once more, and the round uploaded from the chain
        layers = disk_chain.frozen_layers(root)
        assert len(layers) == 2, layers
        _release(fold)
        out, err = audit.communicate(timeout=300)
    finally:
        if audit.poll() is None:
            audit.kill()
    fixed = json.loads(out)["fixed"]
    assert [f["kind"] for f in fixed] == [], (fixed, err)
    assert disk_chain.frozen_layers(root) == layers  # the move's chain stands as it was
    _release(prebuild)
    moved = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    target = mh.root_disk(cloud, sid, mh.host_of(moved))
    assert disk.guest_read(target, 2 * MiB, len(before)) == before
    assert disk.guest_read(target, 30 * MiB, MiB) == stale
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)
