"""The cross-cell weigher and the weighing it joins: a move prefers its source cell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from transcell import exception
from transcell.cell import Cell
from transcell.conf import CONF
from transcell.scheduler import filters, request, weighers
from transcell.scheduler.host_state import HostState

CELL1 = Cell(1, "11111111-1111-1111-1111-111111111111", "cell1", "sqlite://", "inproc://cell1")
CELL2 = Cell(2, "22222222-2222-2222-2222-222222222222", "cell2", "sqlite://", "inproc://cell2")
KEY = "cross_cell_move_weight_multiplier"


@pytest.fixture(autouse=True)
def _default_multiplier() -> Iterator[None]:
    yield
    CONF.clear_override(KEY, group="scheduler")


def host(name: str, cell: Cell, free_ram_mb: float, free_disk_gb: float = 100,
         aggregates: list[dict[str, str]] | None = None) -> HostState:
    return HostState(host=name, nodename=name, uuid=f"rp-{name}", cell=cell, service_up=True,
                     service_disabled=False, free_ram_mb=free_ram_mb,
                     free_disk_gb=free_disk_gb, aggregates=aggregates or [])


def move_spec(source: Cell = CELL1, allow: bool = True) -> dict:
    return {"move": {"source_cell_uuid": source.uuid, "allow_cross_cell": allow}}


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


def test_stays_in_the_source_cell_when_a_source_host_fits():
    # The other cell's hosts are far emptier; RAM and disk alone would pick them.
    hosts = [host("c2-big", CELL2, 30000, 500), host("c1-small", CELL1, 1000, 10),
             host("c2-mid", CELL2, 20000, 400)]
    assert names(weighers.weigh(hosts, {})) == ["c2-big", "c2-mid", "c1-small"]
    ranked = weighers.weigh(hosts, move_spec())
    assert names(ranked) == ["c1-small", "c2-big", "c2-mid"]
    assert ranked[0].weight == pytest.approx(1_000_000.0)


def test_the_preference_survives_normalisation_of_extreme_scores():
    """Other weighers are normalised to at most their multiplier, so no difference in
    free RAM, however large, can outweigh the default cross-cell multiplier."""
    hosts = [host("c2-huge", CELL2, 10**12, 10**9), host("c1-tiny", CELL1, 1, 1)]
    assert names(weighers.weigh(hosts, move_spec())) == ["c1-tiny", "c2-huge"]


def test_a_small_multiplier_is_only_a_tie_breaker():
    CONF.set_override(KEY, 0.1, group="scheduler")
    hosts = [host("c2-big", CELL2, 30000), host("c1-small", CELL1, 1000)]
    assert names(weighers.weigh(hosts, move_spec())) == ["c2-big", "c1-small"]
    level = [host("c2-a", CELL2, 1000), host("c1-a", CELL1, 1000)]
    assert names(weighers.weigh(level, move_spec())) == ["c1-a", "c2-a"]


def test_crosses_when_no_source_host_is_a_candidate():
    hosts = [host("c2-small", CELL2, 1000), host("c2-big", CELL2, 30000)]
    ranked = weighers.weigh(hosts, move_spec())
    assert names(ranked) == ["c2-big", "c2-small"]
    # Every candidate in one cell: the weigher adds nothing to anyone.
    assert [h.weight for h in ranked] == [h.weight for h in weighers.weigh(hosts, {})]


def test_neutral_when_every_candidate_is_in_the_source_cell():
    hosts = [host("c1-small", CELL1, 1000), host("c1-big", CELL1, 30000, 50)]
    plain = [(h.host, h.weight) for h in weighers.weigh(hosts, {})]
    moved = [(h.host, h.weight) for h in weighers.weigh(hosts, move_spec())]
    assert moved == plain
    assert plain[0] == ("c1-big", pytest.approx(1.0))


def test_negative_multiplier_drains_the_source_cell():
    CONF.set_override(KEY, -1_000_000.0, group="scheduler")
    hosts = [host("c1-big", CELL1, 30000, 500), host("c2-small", CELL2, 1000, 10)]
    ranked = weighers.weigh(hosts, move_spec())
    assert names(ranked) == ["c2-small", "c1-big"]
    assert ranked[1].weight < -999_000


def test_negative_multiplier_still_lets_a_move_stay_when_it_must():
    CONF.set_override(KEY, -1_000_000.0, group="scheduler")
    hosts = [host("c1-a", CELL1, 1000), host("c1-b", CELL1, 2000)]
    assert names(weighers.weigh(hosts, move_spec())) == ["c1-b", "c1-a"]


def test_aggregate_override_wins_over_the_option():
    # The source host's aggregate turns the preference off: RAM decides again.
    hosts = [host("c1-small", CELL1, 1000, aggregates=[{KEY: "0"}]),
             host("c2-big", CELL2, 30000)]
    assert names(weighers.weigh(hosts, move_spec())) == ["c2-big", "c1-small"]


def test_aggregate_override_takes_the_smallest_value():
    hosts = [host("c1-small", CELL1, 1000,
                  aggregates=[{KEY: "5000000"}, {KEY: "-2000000", "other": "x"}, {}]),
             host("c2-big", CELL2, 30000)]
    ranked = weighers.weigh(hosts, move_spec())
    assert names(ranked) == ["c2-big", "c1-small"]
    assert ranked[1].weight == pytest.approx(-2_000_000.0)
    assert weighers.aggregate_multiplier(hosts[0], KEY, 1.0) == -2_000_000.0


def test_aggregate_override_is_per_host():
    # Only c1-a is in the aggregate that disables the preference; c1-b keeps it.
    hosts = [host("c1-a", CELL1, 30000, aggregates=[{KEY: "0"}]),
             host("c1-b", CELL1, 1000), host("c2-x", CELL2, 20000)]
    assert names(weighers.weigh(hosts, move_spec())) == ["c1-b", "c1-a", "c2-x"]


def test_unreadable_aggregate_value_falls_back_to_the_option():
    hosts = [host("c1-small", CELL1, 1000, aggregates=[{KEY: "lots"}, {KEY: "0"}]),
             host("c2-big", CELL2, 30000)]
    assert weighers.aggregate_multiplier(hosts[0], KEY, 7.0) == 7.0
    assert names(weighers.weigh(hosts, move_spec())) == ["c1-small", "c2-big"]
    assert weighers.aggregate_multiplier(host("h", CELL1, 1, aggregates=[{KEY: "nan"}]),
                                         KEY, 3.0) == 3.0


def test_neutral_without_a_move():
    hosts = [host("c1-small", CELL1, 1000), host("c2-big", CELL2, 30000)]
    assert [weighers.cross_cell(h, {}) for h in hosts] == [0.0, 0.0]
    ranked = weighers.weigh(hosts, {"ignore_hosts": []})
    assert names(ranked) == ["c2-big", "c1-small"]
    assert ranked[0].weight == pytest.approx(1.0)  # RAM only; disk is level


def test_a_move_that_may_not_cross_is_confined_by_the_filter():
    hosts = [host("c1-a", CELL1, 1000), host("c2-a", CELL2, 1000)]
    assert names(filters.filter_hosts(hosts, move_spec(allow=False))) == ["c1-a"]
    assert names(filters.filter_hosts(hosts, move_spec(allow=True))) == ["c1-a", "c2-a"]
    assert names(filters.filter_hosts(hosts, {})) == ["c1-a", "c2-a"]


@pytest.mark.parametrize("move, message", [
    ("cell1", "must be an object"),
    ({"source_cell_uuid": CELL1.uuid}, "allow_cross_cell, a boolean"),
    ({"source_cell_uuid": CELL1.uuid, "allow_cross_cell": "yes"}, "a boolean"),
    ({"allow_cross_cell": True}, "needs source_cell_uuid"),
    ({"source_cell_uuid": CELL1.uuid, "allow_cross_cell_move": True}, "unknown keys"),
])
def test_a_malformed_move_is_refused(move, message):
    with pytest.raises(exception.Invalid, match=message):
        request.move({"move": move})


def test_move_is_read_from_the_spec():
    assert request.move({}) is None
    assert request.move({"move": None}) is None
    assert request.move(move_spec(CELL2, False)) == request.Move(CELL2.uuid, False)
