"""Reading every cell while some are down: which failures count as an outage."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from transcell import cell as cells
from transcell import exception

UP = cells.Cell(1, "u-1", "up", "sqlite://", "inproc://up")
REFUSING = cells.Cell(2, "u-2", "refusing", "sqlite://", "inproc://refusing")
HANGING = cells.Cell(3, "u-3", "hanging", "sqlite://", "inproc://hanging")


def test_unreachable_and_silent_cells_are_reported_down():
    release = threading.Event()

    def read(cell: cells.Cell) -> str:
        if cell is REFUSING:
            raise OperationalError("connect", {}, ConnectionRefusedError("refused"))
        if cell is HANGING:
            release.wait(5)
        return cell.name

    try:
        gathered = cells.gather([UP, REFUSING, HANGING], read, timeout=0.2)
    finally:
        release.set()
    assert gathered.results == {UP: "up"}
    assert gathered.down == [REFUSING, HANGING]


def test_other_failures_are_not_mistaken_for_an_outage():
    def read(cell: cells.Cell) -> str:
        if cell is REFUSING:
            raise IntegrityError("insert", {}, ValueError("duplicate"))
        return cell.name

    with pytest.raises(IntegrityError):
        cells.gather([UP, REFUSING], read)
    with pytest.raises(exception.InstanceNotFound):
        cells.read_one(UP, lambda c: (_ for _ in ()).throw(
            exception.InstanceNotFound(instance_id="x")))


def test_read_one_names_the_cell_that_is_down():
    def refuse(cell: cells.Cell) -> str:
        raise OSError("no route to host")

    with pytest.raises(cells.CellUnavailable) as raised:
        cells.read_one(REFUSING, refuse)
    assert raised.value.code == 500
    assert raised.value.message.startswith("Cell u-2 is not responding")
    assert cells.read_one(UP, lambda c: c.name) == "up"


def test_read_one_inside_the_pool_reads_in_place():
    def outer(cell: cells.Cell) -> str:
        # every pool thread busy with an outer read must not starve the inner one
        return cells.read_one(cell, lambda c: threading.current_thread().name)

    many = [cells.Cell(i, f"u-{i}", f"c{i}", "sqlite://", "inproc://x") for i in range(40)]
    gathered = cells.gather(many, outer, timeout=10)
    assert not gathered.down
    assert all(name.startswith("scatter") for name in gathered.results.values())
