"""A server's state changes by one ``UPDATE ... WHERE`` on what the writer expected, on
every engine: of many writers racing for one server exactly one wins, and a write that
leaves every value as it was still counts as a match (MariaDB reports changed rows unless
told otherwise)."""

from __future__ import annotations

import threading
import uuid

import pytest

from transcell.cell import Cell
from transcell.compute import instance as inst
from transcell.db import cell_models as cm
from transcell.db.session import session_for


def _server(cell_db: str, **fields) -> str:
    server = str(uuid.uuid4())
    with session_for(cell_db) as s:
        s.add(cm.Instance(uuid=server, user_id="u", project_id="p", display_name="vm",
                          vm_state="active", **fields))
    return server


def _cell(cell_db: str) -> Cell:
    return Cell(id=1, uuid=str(uuid.uuid4()), name="cell1", database_connection=cell_db,
                transport_url="inproc://cell1")


def test_racing_writers_one_wins(cell_db: str) -> None:
    cell, server = _cell(cell_db), _server(cell_db)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def take(n: int) -> None:
        barrier.wait()
        try:
            inst.update(cell, server, expected_task_state=None, expected_vm_state="active",
                        task_state=f"resize_prep-{n}")
            outcomes.append("won")
        except inst.UnexpectedTaskState:
            outcomes.append("lost")

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_a_write_that_changes_nothing_still_matches(cell_db: str) -> None:
    cell, server = _cell(cell_db), _server(cell_db, task_state="powering-off")
    for _ in range(2):  # the second leaves every column (but updated_at) as it was
        found = inst.update(cell, server, expected_task_state="powering-off",
                            task_state="powering-off")
        assert found["task_state"] == "powering-off"
    with pytest.raises(inst.UnexpectedVMState):
        inst.update(cell, server, expected_vm_state="stopped", task_state=None)
