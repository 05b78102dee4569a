"""Whether a list reads its cells in parallel threads.

Unset, ``[api] list_parallel_cells`` means: in parallel only when some cell's
database is across a network (the threads then overlap round trips), one
after the other when every cell is a SQLite file (the threads would only
contend for the interpreter). Set, it decides alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from transcell.cell import Cell
from transcell.compute import server_list
from transcell.conf import CONF


def _cell(n: int, url: str) -> Cell:
    return Cell(n, f"uuid-{n}", f"cell{n}", url, "fake://")


FILES = [_cell(1, "sqlite:////state/cell1.sqlite"), _cell(2, "sqlite:///cell2.sqlite")]
REMOTE = _cell(3, "postgresql+psycopg2://u:p@db.example/cell3")
MARIADB = _cell(4, "mysql+pymysql://u:p@db.example/cell4")


@pytest.fixture
def setting() -> Iterator:
    def choose(value: bool | None) -> None:
        if value is None:
            CONF.clear_override("list_parallel_cells", group="api")
        else:
            CONF.set_override("list_parallel_cells", value, group="api")
    yield choose
    CONF.clear_override("list_parallel_cells", group="api")


def test_unset_reads_sqlite_cells_one_after_the_other(setting):
    setting(None)
    assert CONF.api.list_parallel_cells is None
    assert server_list.parallel_cells(FILES) is False
    assert server_list.parallel_cells([]) is False


@pytest.mark.parametrize("remote", [REMOTE, MARIADB])
def test_unset_reads_in_parallel_when_any_cell_is_across_a_network(setting, remote):
    setting(None)
    assert server_list.parallel_cells([*FILES, remote]) is True
    assert server_list.parallel_cells([remote]) is True


@pytest.mark.parametrize("value", [True, False])
def test_a_setting_decides_alone(setting, value):
    setting(value)
    assert server_list.parallel_cells(FILES) is value
    assert server_list.parallel_cells([*FILES, REMOTE]) is value
