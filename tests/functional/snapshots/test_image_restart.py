"""Accepted is durable: a rebuild or a snapshot the API accepted, whose cloud stopped
before the host did the work, is carried on when the cloud starts again (a rebuild is
finished; a snapshot is given up as Nova gives it up), and no task state is left behind."""

from __future__ import annotations

import json
import os
import time

import pytest
import snaphelpers as sh
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.compute.virt import disk

#: Whole-cloud kills and restarts: in `make test`, left out of the everyday `make test-fast`.
pytestmark = pytest.mark.slow


def test_work_accepted_before_a_stop_is_finished_or_undone_after_a_start(tmp_path):
    state_dir = str(tmp_path / "state")
    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        cloud = CloudProcess(state_dir, proc.port)
        base = sh.base_image(cloud)
        source = sh.boot(cloud, "restart-source")
        disk.guest_write(sh.root_disk(cloud, source), 0, b"the snapshot's bytes" * 50)
        checksum = disk.guest_checksum(sh.root_disk(cloud, source))
        image_id = sh.action(cloud, source["id"], {"createImage": {"name": "restart"}}
                             ).json()["image_id"]
        sh.wait_image(cloud, image_id)
        sh.wait_server(cloud, source["id"], "ACTIVE")
        target = sh.boot(cloud, "restart-rebuild")
        imaged = sh.boot(cloud, "restart-snapshot")
        holds = [sh.hold(cloud, "accepted-rebuild", target["id"]),
                 sh.hold(cloud, "accepted-snapshot", imaged["id"])]
        resp = sh.action(cloud, target["id"], {"rebuild": {"imageRef": image_id}})
        assert resp.status_code == 202, resp.text
        lost = sh.action(cloud, imaged["id"], {"createImage": {"name": "lost"}}
                         ).json()["image_id"]
        sh.wait_reached(cloud, "accepted-rebuild", target["id"])
        sh.wait_reached(cloud, "accepted-snapshot", imaged["id"])
    finally:
        stop_cloud(proc, purge=False)
    for path in holds:
        os.unlink(path)

    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        cloud = CloudProcess(state_dir, proc.port)
        rebuilt = sh.wait_server(cloud, target["id"], "ACTIVE")
        assert rebuilt["image"]["id"] == image_id
        assert disk.guest_checksum(sh.root_disk(cloud, rebuilt)) == checksum
        assert sh.wait_server(cloud, imaged["id"], "ACTIVE")["OS-EXT-STS:task_state"] is None
        deadline = time.monotonic() + 30
        while sh.image(cloud, lost) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sh.image(cloud, lost) is None
        assert base != image_id
        _assert_audit_clean(cloud)
    finally:
        stop_cloud(proc)


def _assert_audit_clean(cloud, attempts: int = 30) -> None:
    """Mappings, rows, allocations, ports and images agree (usage refreshes are
    asynchronous, so the audit may need a moment)."""
    report: dict = {}
    for _ in range(attempts):
        report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
        if report["ok"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"audit found problems: {report['problems']}")
