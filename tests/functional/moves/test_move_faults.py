"""A move that fails anywhere before its point of no return leaves the server as it
was: at its source, with its allocation, its data and its power state, and the
audit clean. The data a move carries is checked byte for byte."""

from __future__ import annotations

import glob
import json
import os
import time

import movehelpers as mh
import pytest

from transcell.compute.virt import disk

#: The fault matrix of the move steps: in `make test`, left out of the everyday `make test-fast`.
pytestmark = pytest.mark.slow

COMPUTE = mh.COMPUTE
STEPS = ["allocations", "target_db", "prep_dest", "precopy", "prep_source", "finish_dest",
         "flip"]


def assert_back_at_source(cloud, sid: str, src: str, old: dict, status: str = "ACTIVE"):
    found = mh.wait_task_done(cloud, sid)
    assert found["status"] == status, found
    assert mh.host_of(found) == src
    assert found["flavor"]["original_name"] == old["name"]
    mig = mh.wait_migration(cloud, sid, "error")                                     # F1
    assert mh.consumer_allocations(cloud, mig["uuid"]) == {}                          # F2
    assert mh.provider_allocations(cloud, src)[sid] == mh.flavor_resources(old)       # F3
    where = mh.locate(cloud, sid)
    assert [(r["cell"], r["hidden"]) for r in where["rows"]] == [(mh.cell_of_host(src), False)]
    assert {d["host"] for d in where["disks"]} == {src}
    events = {e["event"]: e["result"] for e in mh.actions(cloud, sid)["resize"]}
    assert events["conductor_migrate_server"] == "Error"
    deadline = time.monotonic() + 10
    while "compute_task.migrate_server.error" not in mh.events_of(cloud, sid):
        assert time.monotonic() < deadline, mh.events_of(cloud, sid)
        time.sleep(0.2)
    mh.assert_audit_clean(cloud)
    return mig


@pytest.mark.parametrize("step", STEPS)
def test_failure_in_each_step_is_undone(mcloud, step):
    cloud = mcloud
    old = mh.flavor(cloud, "11")
    srv = mh.boot(cloud, f"fail-{step}", stopped=(step == "prep_source"))
    sid, src = srv["id"], mh.host_of(srv)
    if step == "precopy":  # more than precopy_stop_mib, so a round runs and is undone
        disk.guest_write(mh.root_disk(cloud, sid, src), 0, os.urandom(20 * 1024 * 1024))
    with open(os.path.join(mh.fault_dir(cloud), step), "w") as fh:
        fh.write(f"injected failure in {step}")
    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
    mig = assert_back_at_source(cloud, sid, src, old,
                                "SHUTOFF" if step == "prep_source" else "ACTIVE")
    shown = json.loads(cloud.transcell("migration", "show", mig["uuid"], "--json").stdout)
    assert shown["status"] == "rolled_back"
    assert f"injected failure in {step}" in shown["error"]
    assert {s["name"]: s["state"] for s in shown["steps"]}[step] == "undone"
    # the server is fully usable: the same move now succeeds
    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
    mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "SHUTOFF" if step == "prep_source" else "ACTIVE")
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_target_host_failure_is_retried_on_an_alternate(mcloud):
    """Both gen2 hosts refuse to prepare: the first is tried, then its alternate in
    the same cell, and only then is the move undone."""
    cloud = mcloud
    old = mh.flavor(cloud, "11")
    srv = mh.boot(cloud, "alternate")
    sid, src = srv["id"], mh.host_of(srv)
    armed = []
    for host in ("cell2-host1", "cell2-host2"):
        faults = os.path.join(cloud.state_dir, "hosts", host, "faults")
        os.makedirs(faults, exist_ok=True)
        armed.append(os.path.join(faults, "instance_exists"))
        with open(armed[-1], "w") as fh:
            fh.write(f"{host} refuses")
    try:
        mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
        assert_back_at_source(cloud, sid, src, old)
        assert [p for p in armed if os.path.exists(p)] == [], "an alternate was not tried"
    finally:
        for path in armed:
            if os.path.exists(path):
                os.unlink(path)
    prep = [e for e in mh.actions(cloud, sid)["resize"]
            if e["event"] == "compute_prep_snapshot_based_resize_at_dest"]
    assert [e["result"] for e in prep] == ["Error", "Error"]
    # with the hosts healthy again the same move succeeds
    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
    mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


PATTERNS = {
    0: b"start of the disk " * 10,
    3 * 1024 * 1024 + 7: os.urandom(4096),
    1024 ** 3 + 12345: b"one GiB in" * 50,
    4 * 1024 ** 3 + 4096: os.urandom(70000),
}


def test_bytes_written_at_the_source_arrive_at_the_target(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "data-carrier")
    sid, src = srv["id"], mh.host_of(srv)
    path = mh.root_disk(cloud, sid, src)
    for offset, data in PATTERNS.items():
        disk.guest_write(path, offset, data)
    source_sum = disk.guest_checksum(path)
    found = mh.action(cloud, sid, {"resize": {"flavorRef": "22"}}) and \
        mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dst = mh.host_of(found)
    target = mh.root_disk(cloud, sid, dst)
    for offset, data in PATTERNS.items():
        assert disk.guest_read(target, offset, len(data)) == data, offset
    # the target disk grew to the new flavor; the bytes the guest saw are unchanged
    assert disk.virtual_size(target) == 10 * 1024 ** 3
    assert disk.guest_read(target, 5 * 1024 ** 3, 4096) == bytes(4096)
    kept = mh.root_disk(cloud, sid, src)
    assert disk.guest_checksum(kept) == source_sum
    mh.action(cloud, sid, {"revertResize": None})
    mh.wait_status(cloud, sid, "ACTIVE")
    back = mh.root_disk(cloud, sid, src)
    assert disk.guest_checksum(back) == source_sum
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def _snapshot_chunks(cloud) -> list[str]:
    """Chunks named only by a move's temporary snapshot (not by any other image)."""
    manifests = []
    for path in glob.glob(os.path.join(cloud.state_dir, "images", "images", "*.json")):
        with open(path) as fh:
            manifests.append(json.load(fh))
    others = {d for m in manifests if not m.get("transcell_migration") for d in m["chunks"]}
    snaps = [m for m in manifests if m.get("transcell_migration")]
    assert len(snaps) == 1, snaps
    return [d for d in snaps[0]["chunks"] if d not in others]


def _corrupt(cloud, digest: str) -> None:
    """Flip the first byte of a chunk where the store keeps it: its own file, or its place
    in the spool of the move's snapshot (a disk of mostly new data is spooled)."""
    images = os.path.join(cloud.state_dir, "images")
    found = glob.glob(os.path.join(images, "chunks", "*", digest))
    if found:
        path, offset = found[0], 0
    else:
        snap = next(m for m in (json.load(open(p)) for p in glob.glob(
            os.path.join(images, "images", "*.json"))) if m.get("transcell_migration"))
        path = os.path.join(images, "spools", snap["id"])
        offset = snap["chunks"].index(digest) * int(snap["chunk_size"])
    with open(path, "r+b") as fh:
        fh.seek(offset)
        first = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([first[0] ^ 0xFF]))


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "precopied"])
def test_a_corrupted_chunk_makes_the_move_roll_back(mcloud, running):
    """A stopped server's disk is read by the target after the stop; a running one's
    while it still runs, from the first pre-copy round."""
    cloud = mcloud
    old = mh.flavor(cloud, "11")
    srv = mh.boot(cloud, "corrupted", stopped=not running)
    sid, src = srv["id"], mh.host_of(srv)
    path = mh.root_disk(cloud, sid, src)
    # a running guest's changes are pre-copied only past precopy_stop_mib (16)
    disk.guest_write(path, 2 * 1024 * 1024, os.urandom((20 if running else 0) * 1024 * 1024
                                                        + 8192))
    before = disk.guest_checksum(path)
    faults = mh.fault_dir(cloud)
    point = f"compute-prebuild@{sid}" if running else "prep_source"
    hold = os.path.join(faults, f"hold-{point}")
    reached = os.path.join(faults, f"reached-{point}")
    open(hold, "w").close()
    try:
        mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the move never reached the hold point"
            time.sleep(0.1)
        unique = _snapshot_chunks(cloud)
        assert unique, "the snapshot holds no chunk of its own"
        _corrupt(cloud, unique[0])
    finally:
        os.unlink(hold)
        if os.path.exists(reached):
            os.unlink(reached)
    assert_back_at_source(cloud, sid, src, old, "ACTIVE" if running else "SHUTOFF")
    assert disk.guest_checksum(mh.root_disk(cloud, sid, src)) == before
    history = mh.actions(cloud, sid)["resize"]
    failed = ("conductor_precopy_disk" if running
              else "compute_finish_snapshot_based_resize_at_dest")
    finish = [e for e in history if e["event"] == failed]
    assert finish and finish[0]["result"] == "Error", history
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)
