"""With ``resize_confirm_window`` set, the conductor confirms moves nobody confirmed."""

from __future__ import annotations

import os

import movehelpers as mh
from cloudclients import CloudProcess, start_cloud, stop_cloud


def test_moves_left_in_verify_resize_are_confirmed_centrally(tmp_path):
    state = str(tmp_path / "cloud")
    os.makedirs(state)
    with open(os.path.join(state, "transcell.conf"), "w") as fh:
        fh.write("[conductor]\nresize_confirm_window = 2\nmove_check_interval = 1\n")
    proc = start_cloud(state)
    cloud = CloudProcess(state, proc.port)
    try:
        # the cloud records its address there and keeps the operator's options
        with open(os.path.join(state, "transcell.conf")) as fh:
            written = fh.read()
        assert "resize_confirm_window = 2" in written and f"bind_port = {proc.port}" in written
        srv = mh.boot(cloud, "auto-confirm")
        sid, src = srv["id"], mh.host_of(srv)
        mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
        mig = mh.wait_migration(cloud, sid, "confirmed", timeout=60)
        found = mh.wait_status(cloud, sid, "ACTIVE")
        assert mh.cell_of_host(mh.host_of(found)) == "cell2"
        assert mh.consumer_allocations(cloud, mig["uuid"]) == {}
        assert sid not in mh.provider_allocations(cloud, src)
        history = mh.actions(cloud, sid)
        assert {e["event"] for e in history["confirmResize"]} == {
            "conductor_confirm_snapshot_based_resize",
            "compute_confirm_snapshot_based_resize_at_source"}
        assert [r["cell"] for r in mh.locate(cloud, sid)["rows"]] == ["cell2"]
        mh.assert_audit_clean(cloud)
    finally:
        stop_cloud(proc)
