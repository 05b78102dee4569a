"""Service liveness: heartbeat age, forced down, and what the API reports."""

from __future__ import annotations

import datetime as dt

from transcell.compute import service_state
from transcell.conf import CONF

NOW = dt.datetime(2030, 1, 1, 12, 0, 0)


def svc(**values):
    row = {"forced_down": False, "last_seen_up": None, "updated_at": None,
           "created_at": NOW - dt.timedelta(days=1)}
    row.update(values)
    return row


def test_up_while_the_heartbeat_is_fresh():
    limit = CONF.compute.service_down_time
    assert service_state.is_up(svc(last_seen_up=NOW - dt.timedelta(seconds=limit)), now=NOW)
    assert not service_state.is_up(svc(last_seen_up=NOW - dt.timedelta(seconds=limit + 1)),
                                   now=NOW)


def test_row_timestamps_stand_in_for_a_missing_heartbeat():
    assert service_state.is_up(svc(updated_at=NOW - dt.timedelta(seconds=5)), now=NOW)
    assert not service_state.is_up(svc(), now=NOW)
    assert not service_state.is_up({"forced_down": False}, now=NOW)


def test_forced_down_wins_over_a_fresh_heartbeat():
    assert not service_state.is_up(svc(last_seen_up=NOW, forced_down=True), now=NOW)


def test_updated_time_is_the_later_stamp():
    beat = NOW - dt.timedelta(seconds=3)
    assert service_state.updated_time(svc(updated_at=NOW - dt.timedelta(hours=1),
                                          last_seen_up=beat)) == beat
    assert service_state.updated_time(svc()) is None


def test_zone_is_the_cell_for_computes_and_internal_otherwise():
    class Cell:
        name = "cell2"

    assert service_state.zone_of("nova-compute", Cell) == "cell2"
    assert service_state.zone_of("nova-conductor", Cell) == service_state.INTERNAL_ZONE
