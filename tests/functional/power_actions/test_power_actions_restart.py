"""What a 202 of reboot, pause, suspend or a soft delete promised is carried out even
when the cloud is killed right after it, before the host did anything."""

from __future__ import annotations

import os
import signal
import time

from cloudclients import CloudProcess, start_cloud, stop_cloud
from powerhelpers import COMPUTE, RECLAIM_SECONDS, USER, boot, events, ok

LAYOUT = ("--cells", "2", "--hosts-per-cell", "1")


def _hold(cloud: CloudProcess, point: str, server_id: str) -> tuple[str, str]:
    faults = os.path.join(cloud.state_dir, "faults", "saga")
    os.makedirs(faults, exist_ok=True)
    name = f"{point}@{server_id}"
    paths = (os.path.join(faults, f"hold-{name}"), os.path.join(faults, f"reached-{name}"))
    open(paths[0], "w").close()
    return paths


def _wait_reached(paths: list[tuple[str, str]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for _, reached in paths:
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, f"never reached {reached}"
            time.sleep(0.05)


def test_kill_right_after_accepted_power_actions(tmp_path):
    state = str(tmp_path / "cloud")
    os.makedirs(state)
    with open(os.path.join(state, "transcell.conf"), "w") as fh:
        fh.write(f"[compute]\nreclaim_instance_interval = {RECLAIM_SECONDS * 100}\n")
    proc = start_cloud(state, extra=LAYOUT)
    cloud = CloudProcess(state, proc.port)
    try:
        names = ("reboot", "pause", "suspend", "soft_delete")
        srv = {name: boot(cloud, f"held-{name}")["id"] for name in names}
        paths = [_hold(cloud, f"accepted-{name}", srv[name]) for name in names]
        ok(cloud, srv["reboot"], {"reboot": {"type": "HARD"}})
        ok(cloud, srv["pause"], {"pause": None})
        ok(cloud, srv["suspend"], {"suspend": None})
        resp = cloud.request("DELETE", f"{COMPUTE}/servers/{srv['soft_delete']}", cloud=USER)
        assert resp.status_code == 204, resp.text
        _wait_reached(paths)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for held, reached in paths:
            os.unlink(held)
            os.unlink(reached)
        proc = start_cloud(state, extra=LAYOUT)
        cloud = CloudProcess(state, proc.port)

        rebooted = cloud.wait_status(srv["reboot"], "ACTIVE")
        assert rebooted["OS-EXT-STS:power_state"] == 1
        assert cloud.wait_status(srv["pause"], "PAUSED")["OS-EXT-STS:power_state"] == 3
        assert cloud.wait_status(srv["suspend"], "SUSPENDED")["OS-EXT-STS:power_state"] == 7
        gone = cloud.wait_status(srv["soft_delete"], "SOFT_DELETED")
        assert gone["OS-EXT-STS:power_state"] == 4
        log = cloud.request("POST", f"{COMPUTE}/servers/{srv['reboot']}/action",
                            json={"os-getConsoleOutput": {}}).json()["output"]
        assert "--- hard reboot ---" in log
        assert events(cloud, srv["pause"])[0]["action"] == "pause"
        ok(cloud, srv["soft_delete"], {"restore": None})
        cloud.wait_status(srv["soft_delete"], "ACTIVE")
    finally:
        stop_cloud(proc)
