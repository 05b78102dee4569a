"""Two super-conductors, one move each: the conductor running a move is killed after
each step, or frozen past its lease, and the other one finishes or undoes the move,
never both, and the frozen one, once thawed, changes nothing."""

from __future__ import annotations

import configparser
import os
import signal
import time

import movehelpers as mh
import pytest
import sqlalchemy as sa
from disthelpers import (
    LEASE,
    assert_bytes,
    finished_or_undone,
    hold,
    queues_empty,
    wait_reached,
    write_guest,
)

from transcell.move.plan import STEP_NAMES

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _api_engine(cloud) -> sa.Engine:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(os.path.join(cloud.state_dir, "transcell.conf"))
    return sa.create_engine(parser.get("api_database", "connection"),
                            poolclass=sa.pool.NullPool)


def saga_of(cloud, server_id: str) -> dict:
    engine = _api_engine(cloud)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT uuid, owner, generation, status FROM move_sagas "
                "WHERE instance_uuid = :u ORDER BY created_at DESC"), {"u": server_id}).first()
    finally:
        engine.dispose()
    assert row is not None, f"no saga for {server_id}"
    return dict(row._mapping)


def owner_pid(cloud, server_id: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owner = saga_of(cloud, server_id)["owner"]
        if owner:
            return int(owner.split(":")[1])
        time.sleep(0.2)
    raise AssertionError("the move has no owner")


def conductor_pids(cloud) -> set[int]:
    pids = set()
    for name in ("conductor-1", "conductor-2"):
        with open(os.path.join(cloud.state_dir, "run", f"{name}.pid")) as fh:
            pids.add(int(fh.read()))
    return pids


@pytest.mark.parametrize("step", STEP_NAMES)
def test_conductor_killed_after_each_step(ncloud, step):
    srv = mh.boot(ncloud, f"orphan-{step}")
    sid, src = srv["id"], mh.host_of(srv)
    written = write_guest(ncloud, srv)
    held, reached = hold(ncloud, step, sid)
    try:
        mh.action(ncloud, sid, {"resize": {"flavorRef": "21"}})
        wait_reached(reached)
        pid = owner_pid(ncloud, sid)
        assert pid in conductor_pids(ncloud)
        os.kill(pid, signal.SIGKILL)
    finally:
        os.unlink(held)
    outcome = finished_or_undone(ncloud, sid, src)
    assert_bytes(ncloud, sid, written)
    # past the flip the move can only be finished; before it either ending is right
    if step == "flip":
        assert outcome == "finished"
    saga = saga_of(ncloud, sid)
    assert saga["owner"] is None or int(saga["owner"].split(":")[1]) != pid
    mh.assert_audit_clean(ncloud)
    queues_empty(ncloud)
    ncloud.request("DELETE", f"{mh.COMPUTE}/servers/{sid}")
    ncloud.wait_gone(sid)


def test_conductor_frozen_past_its_lease_changes_nothing_once_thawed(ncloud):
    srv = mh.boot(ncloud, "frozen")
    sid, src = srv["id"], mh.host_of(srv)
    held, reached = hold(ncloud, "prep_dest", sid)
    mh.action(ncloud, sid, {"resize": {"flavorRef": "21"}})
    wait_reached(reached)
    pid = owner_pid(ncloud, sid)
    first = saga_of(ncloud, sid)
    os.kill(pid, signal.SIGSTOP)
    try:
        os.unlink(held)
        # the other conductor takes the move over once the lease runs out, and ends it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = mh.server(ncloud, sid)
            if found["OS-EXT-STS:task_state"] is None:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the move was not taken over while its conductor froze")
        taken = saga_of(ncloud, sid)
        assert taken["generation"] > first["generation"]
        assert taken["owner"] is None or int(taken["owner"].split(":")[1]) != pid
    finally:
        os.kill(pid, signal.SIGCONT)
    # thawed, the old owner can no longer write: the server stays as the new owner left it
    settled = mh.server(ncloud, sid)
    time.sleep(LEASE + 4)
    later = mh.server(ncloud, sid)
    for key in ("status", "OS-EXT-STS:task_state", "OS-EXT-SRV-ATTR:host",
                "OS-EXT-STS:power_state"):
        assert later[key] == settled[key], (key, settled[key], later[key])
    assert saga_of(ncloud, sid)["generation"] == taken["generation"]
    outcome = finished_or_undone(ncloud, sid, src)
    assert outcome in ("finished", "undone")
    mh.assert_audit_clean(ncloud)
    queues_empty(ncloud)
