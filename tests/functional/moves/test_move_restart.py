"""Kill the whole cloud in the middle of a move and start it again on the same state:
the move is undone if it had not reached its point of no return, finished if it had."""

from __future__ import annotations

import os
import signal
import time

import movehelpers as mh
import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

#: Whole-cloud kills and restarts: in `make test`, left out of the everyday `make test-fast`.
pytestmark = pytest.mark.slow

COMPUTE = mh.COMPUTE


@pytest.mark.parametrize("hold_after, outcome", [
    ("prep_source", "undone"),     # guest stopped, snapshot uploaded
    ("finish_dest", "undone"),     # target guest running, source kept
    ("flip", "finished"),          # past the point of no return
])
def test_kill_mid_move_then_restart(tmp_path, hold_after, outcome):
    state = str(tmp_path / "cloud")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        srv = mh.boot(cloud, f"crash-{hold_after}")
        sid, src = srv["id"], mh.host_of(srv)
        faults = mh.fault_dir(cloud)
        hold = os.path.join(faults, f"hold-{hold_after}")
        reached = os.path.join(faults, f"reached-{hold_after}")
        open(hold, "w").close()
        mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
        deadline = time.monotonic() + 60
        while not os.path.exists(reached):
            assert time.monotonic() < deadline, "the move never reached the hold point"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.unlink(hold)
        os.unlink(reached)

        proc = start_cloud(state)
        cloud = CloudProcess(state, proc.port)
        if outcome == "undone":
            found = mh.wait_task_done(cloud, sid)
            assert found["status"] == "ACTIVE" and mh.host_of(found) == src
            assert found["OS-EXT-STS:power_state"] == 1
            assert mh.wait_migration(cloud, sid, "error")
            assert [r["cell"] for r in mh.locate(cloud, sid)["rows"]] == ["cell1"]
        else:
            found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
            assert mh.cell_of_host(mh.host_of(found)) == "cell2"
            mh.action(cloud, sid, {"confirmResize": None}, expect=204)
            found = mh.wait_status(cloud, sid, "ACTIVE")
            assert mh.cell_of_host(mh.host_of(found)) == "cell2"
        mh.assert_audit_clean(cloud)
    finally:
        stop_cloud(proc)
