"""Any one service process killed while a server crosses cells: the launcher starts
it again, as a service manager would, and the move finishes or is undone with the
bytes intact, the audit clean and nothing left waiting in any queue."""

from __future__ import annotations

import os
import subprocess

import movehelpers as mh
import pytest
from disthelpers import (
    assert_bytes,
    finished_or_undone,
    hold,
    kill,
    queues_empty,
    wait_reached,
    wait_restarted,
    write_guest,
)

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


#: (service killed, where the move is held when it dies)
CASES = [
    ("api", "prep_dest"),
    ("scheduler", "accepted-move"),
    ("conductor-cell2", "prep_dest"),
    ("compute-cell1-host1", "compute-upload"),
    ("compute-cell2-host1", "compute-rebuild"),
]


@pytest.mark.parametrize("service,point", CASES, ids=[c[0] for c in CASES])
def test_service_killed_mid_move(ncloud, service, point):
    srv = mh.boot(ncloud, f"kill-{service}")
    sid, src = srv["id"], mh.host_of(srv)
    written = write_guest(ncloud, srv)
    held, reached = hold(ncloud, point, sid)
    try:
        mh.action(ncloud, sid, {"resize": {"flavorRef": "21"}})
        wait_reached(reached)
        old = kill(ncloud, service)
    finally:
        os.unlink(held)
    wait_restarted(ncloud, service, old)
    outcome = finished_or_undone(ncloud, sid, src)
    assert_bytes(ncloud, sid, written)
    if service in ("api", "scheduler", "conductor-cell2"):
        # none of these holds any part of the move: it simply carries on
        assert outcome == "finished"
    mh.assert_audit_clean(ncloud)
    queues_empty(ncloud)
    ncloud.request("DELETE", f"{mh.COMPUTE}/servers/{sid}")
    ncloud.wait_gone(sid)


def test_broker_restarted_while_idle(ncloud):
    """Every service reconnects on its own, and the next move works."""
    for command in (["rabbitmqctl", "stop_app"], ["rabbitmqctl", "start_app"]):
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True,
                   timeout=120)
    srv = mh.boot(ncloud, "after-broker-restart")
    mh.action(ncloud, srv["id"], {"resize": {"flavorRef": "21"}})
    found = mh.wait_status(ncloud, srv["id"], "VERIFY_RESIZE", timeout=300)
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"
    mh.action(ncloud, srv["id"], {"confirmResize": None}, expect=204)
    mh.wait_status(ncloud, srv["id"], "ACTIVE")
    mh.assert_audit_clean(ncloud)
    queues_empty(ncloud)
