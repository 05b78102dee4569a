"""A wave of a large drain: how many writes it costs and what a lost race leaves."""

from __future__ import annotations

import time
import uuid as uuidlib

import pytest

from transcell.drain import model, runner
from transcell.drain.model import Drain
from transcell.move.saga import Saga

GIB = 1024 ** 3


class FakeCompute:
    """``migrate`` records a saga as the compute API does; ``on_call`` runs before it."""

    def __init__(self, on_call=None) -> None:
        self.calls: list[str] = []
        self.on_call = on_call

    def migrate(self, ctx, server_id, host, allow_cross_cell, ignore_hosts, drain):
        if self.on_call:
            self.on_call(len(self.calls))
        self.calls.append(server_id)
        saga_uuid = str(uuidlib.uuid4())
        Saga.create(saga_uuid, server_id, "migrate", ["a"], {"started_at": time.time()},
                    {"request_id": "req"})
        return saga_uuid


def _drain(count: int, cell: str = "cell-1", **settings) -> Drain:
    servers = {f"server-{n:04d}": model.new_server_entry(
        {"display_name": f"s{n}", "host": f"h{n % 4}", "root_gb": 1}) for n in range(count)}
    return Drain.create(cell, None, {**model.DEFAULTS, **settings}, servers,
                        {"request_id": "req", "roles": ["admin"]})


@pytest.fixture
def wired(api_db, monkeypatch):
    compute = FakeCompute()
    monkeypatch.setattr(runner, "_compute_api", lambda: compute)
    monkeypatch.setattr(runner, "ignored_hosts", lambda drain: ["h0", "h1", "h2", "h3"])
    saves: list[int] = []
    real = Drain.save

    def counting(self, **kwargs):
        saves.append(self.version)
        return real(self, **kwargs)
    monkeypatch.setattr(Drain, "save", counting)
    return compute, saves


def test_a_wave_of_many_moves_writes_the_row_twice(wired):
    compute, saves = wired
    drain = _drain(300, concurrency=64, per_source_host=64, per_target_host=64)
    drain = Drain.claim(drain.uuid, "me")
    after = runner.DrainRunner(owner="me")._start_wave(None, drain)
    assert len(compute.calls) == 64 and len(saves) == 2
    stored = Drain.load(drain.uuid)
    states = [e["state"] for e in stored.servers.values()]
    assert states.count(model.MOVING) == 64 and states.count(model.PENDING) == 236
    assert after.version == stored.version
    assert list(stored.servers)[:64] == compute.calls  # the waves keep the mapped order


def test_the_bandwidth_cap_limits_one_wave(wired):
    compute, _ = wired
    drain = Drain.claim(_drain(50, concurrency=64, per_source_host=64,
                               bandwidth_mib_s=3 * 1024).uuid, "me")
    runner.DrainRunner(owner="me")._start_wave(None, drain)
    assert len(compute.calls) == 3


def test_a_race_lost_after_the_moves_were_asked_is_resolved_from_their_sagas(wired):
    compute, _ = wired
    drain = Drain.claim(_drain(20, concurrency=8, per_source_host=8).uuid, "me")

    def pause_midway(n: int) -> None:
        if n == 4:
            Drain.set_paused(drain.uuid, True)
    compute.on_call = pause_midway
    with pytest.raises(model.DrainChanged):
        runner.DrainRunner(owner="me")._start_wave(None, drain)
    stored = Drain.load(drain.uuid)
    assert stored.status == model.PAUSED
    assert sum(e["state"] == model.STARTING for e in stored.servers.values()) == 8
    for server_id, entry in stored.servers.items():
        if entry["state"] == model.STARTING:
            runner.DrainRunner._resolve_starting(server_id, entry, stored)
    moving = [sid for sid, e in stored.servers.items() if e["state"] == model.MOVING]
    assert moving == compute.calls and len(moving) == 8
    assert all(stored.servers[sid]["migration"] == Saga.latest_for(sid).uuid for sid in moving)


def test_a_save_returns_the_row_as_written_and_current_reads_only_when_it_moved(api_db):
    drain = Drain.claim(_drain(5).uuid, "me")
    drain.servers["server-0001"]["state"] = model.MOVING
    saved = drain.save(owner="me", status=model.PAUSED)
    stored = Drain.load(drain.uuid)
    assert (saved.version, saved.status, saved.owner, saved.servers) == \
        (stored.version, stored.status, stored.owner, stored.servers)
    assert Drain.current(saved) is saved
    Drain.set_paused(drain.uuid, False)
    fresh = Drain.current(saved)
    assert fresh is not saved and fresh.status == model.RUNNING
    assert fresh.version == saved.version + 1
    with pytest.raises(model.DrainChanged):
        saved.save(owner="me")


def test_holders_names_the_unfinished_drains_and_their_owners(api_db):
    first = Drain.claim(_drain(3).uuid, "me")
    second = _drain(2, cell="cell-2")
    Drain.create("cell-3", None, dict(model.DEFAULTS), {}, {}).save(status=model.DONE)
    assert Drain.holders(*model.UNFINISHED) == [(first.uuid, "me"), (second.uuid, None)]
    Drain.set_paused(second.uuid, True)
    assert Drain.holders(model.PAUSED) == [(second.uuid, None)]
