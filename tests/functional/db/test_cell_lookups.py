"""Cell and host mappings are read once within a request or a saga pass
(``cells.remembered``), and afresh outside it, so a cell mapped meanwhile shows."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from transcell import cell as cells
from transcell import exception
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db.session import session_for


@pytest.fixture
def api(api_db: str) -> Iterator[str]:
    CONF.set_override("connection", api_db, group="api_database")
    _map(api_db, "cell1")
    yield api_db
    CONF.clear_override("connection", group="api_database")


def _map(url: str, name: str) -> None:
    with session_for(url) as s:
        cell = am.CellMapping(uuid=str(uuid.uuid4()), name=name,
                              database_connection="sqlite://", transport_url="inproc://")
        s.add(cell)
        s.flush()
        s.add(am.HostMapping(host=f"{name}-host1", cell_id=cell.id))


def _statements(url: str) -> tuple[list[str], object]:
    """SQL statements sent to the API database from now on, and the engine to unhook."""
    from transcell.db.session import get_engine
    seen: list[str] = []
    engine = get_engine(url)

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, (engine, record)


def test_mappings_are_read_once_within_a_block_and_afresh_outside(api):
    seen, hook = _statements(api)
    try:
        with cells.remembered():
            first = cells.get_cell("cell1")
            for _ in range(5):
                assert cells.get_cell(first.uuid) == first
                assert cells.cell_of_host("cell1-host1") == first
                assert [c.name for c in cells.list_cells(include_cell0=False)] == ["cell1"]
            with cells.remembered():  # nested: the outer block's answers
                cells.get_cell("cell1")
            inside = len(seen)
            _map(api, "cell2")  # mapped meanwhile: this block does not see it
            with pytest.raises(exception.CellNotFound):
                cells.get_cell("cell2")
        assert inside == 2, seen  # one read of the cells, one of the host
        assert cells.get_cell("cell2").name == "cell2"  # outside: afresh
        before = len(seen)
        cells.get_cell("cell1")
        cells.get_cell("cell1")
        assert len(seen) - before == 2
    finally:
        sa.event.remove(hook[0], "before_cursor_execute", hook[1])


def test_another_thread_does_not_share_a_block(api):
    reads: list[int] = []
    seen, hook = _statements(api)
    try:
        with cells.remembered():
            cells.get_cell("cell1")

            def other() -> None:
                before = len(seen)
                cells.get_cell("cell1")
                reads.append(len(seen) - before)
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
    finally:
        sa.event.remove(hook[0], "before_cursor_execute", hook[1])
    assert reads == [1]
