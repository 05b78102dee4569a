"""Host aggregates on SQLite, PostgreSQL and MariaDB: names unique in the database
itself, members and metadata removed with their aggregate, zones checked against
host mappings, and the scheduler's per-host view of the metadata."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from transcell import aggregates
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db.session import session_for


@pytest.fixture
def api(api_db: str) -> Iterator[str]:
    """The migrated API database as the one ``api_session`` uses, with two cells and
    one host mapped in each."""
    CONF.set_override("connection", api_db, group="api_database")
    with session_for(api_db) as s:
        for n in (1, 2):
            cell = am.CellMapping(uuid=str(uuid.uuid4()), name=f"cell{n}",
                                  database_connection="sqlite://", transport_url="inproc://")
            s.add(cell)
            s.flush()
            s.add(am.HostMapping(host=f"cell{n}-host1", cell_id=cell.id))
    yield api_db
    CONF.clear_override("connection", group="api_database")


def count(url: str, model) -> int:
    with session_for(url) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)))


def test_a_round_trip_and_delete_removes_everything(api):
    made = aggregates.create("rack-ünï 🚀", "cell1")
    aggregates.add_host(made.id, "cell1-host1")
    aggregates.set_metadata(made.id, {"cross_cell_move_weight_multiplier": "0", "k": "v"})
    again = aggregates.get(made.id)
    assert (again.name, again.hosts, again.availability_zone) == (
        "rack-ünï 🚀", ["cell1-host1"], "cell1")
    assert again.metadata == {"availability_zone": "cell1", "k": "v",
                              "cross_cell_move_weight_multiplier": "0"}
    assert aggregates.metadata_by_host() == {"cell1-host1": [again.metadata]}
    assert aggregates.metadata_by_host(["cell2-host1"]) == {}

    with pytest.raises(aggregates.InvalidAggregateAction):
        aggregates.delete(made.id)
    aggregates.remove_host(made.id, "cell1-host1")
    aggregates.delete(made.id)
    assert [count(api, m) for m in (am.Aggregate, am.AggregateHost, am.AggregateMetadata)] \
        == [0, 0, 0]


def test_the_database_keeps_names_unique(api):
    aggregates.create("taken")
    with pytest.raises(sa.exc.IntegrityError), session_for(api) as s:
        s.add(am.Aggregate(uuid=str(uuid.uuid4()), name="taken"))
    with pytest.raises(sa.exc.IntegrityError), session_for(api) as s:
        row = s.scalar(sa.select(am.Aggregate))
        s.add(am.AggregateHost(host="cell1-host1", aggregate_id=row.id))
        s.add(am.AggregateHost(host="cell1-host1", aggregate_id=row.id))


def test_concurrent_creates_of_one_name_leave_one_aggregate(api):
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def make() -> None:
        barrier.wait()
        try:
            aggregates.create("racy")
            outcomes.append("created")
        except aggregates.AggregateNameExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["exists"] * 5
    assert [a.name for a in aggregates.list_all()] == ["racy"]


def test_a_refused_zone_writes_nothing(api):
    made = aggregates.create("zoned")
    aggregates.add_host(made.id, "cell2-host1")
    with pytest.raises(aggregates.InvalidAggregateAction, match="cell2-host1 in cell2"):
        aggregates.set_metadata(made.id, {"availability_zone": "cell1", "other": "x"})
    with pytest.raises(aggregates.InvalidAggregateAction):
        aggregates.update(made.id, name="renamed", availability_zone="cell1")
    after = aggregates.get(made.id)
    assert (after.name, after.metadata, after.updated_at) == ("zoned", {}, None)
