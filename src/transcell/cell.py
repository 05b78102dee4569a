"""Finding cells and reading them all at once.

Cell mappings live in the API database; a server's cell is found only through
its instance mapping. Lists read every cell in parallel (a slow cell delays,
never blocks, the others) and callers de-duplicate by uuid.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select

from transcell import exception
from transcell.db import api_models as am
from transcell.db.session import api_session

T = TypeVar("T")

CELL0_UUID = am.CellMapping.CELL0_UUID


@dataclass(frozen=True)
class Cell:
    """A detached, hashable view of a cell mapping, safe to pass between threads."""

    id: int
    uuid: str
    name: str
    database_connection: str
    transport_url: str
    disabled: bool = False

    @property
    def is_cell0(self) -> bool:
        return self.uuid == CELL0_UUID

    @classmethod
    def of(cls, row: am.CellMapping) -> Cell:
        return cls(row.id, row.uuid, row.name, row.database_connection, row.transport_url,
                   row.disabled)

    def to_dict(self) -> dict:
        return {"uuid": self.uuid, "name": self.name}


def list_cells(include_cell0: bool = True) -> list[Cell]:
    with api_session() as s:
        rows = s.scalars(select(am.CellMapping).order_by(am.CellMapping.id)).all()
        cells = [Cell.of(r) for r in rows]
    return [c for c in cells if include_cell0 or not c.is_cell0]


def get_cell(uuid_or_name: str) -> Cell:
    for cell in list_cells():
        if uuid_or_name in (cell.uuid, cell.name):
            return cell
    raise exception.CellNotFound(cell=uuid_or_name)


def cell0() -> Cell:
    return get_cell(CELL0_UUID)


def cell_of_host(host: str) -> Cell:
    with api_session() as s:
        row = s.scalar(select(am.HostMapping).where(am.HostMapping.host == host))
        if row is None:
            raise exception.ComputeHostNotFound(host=host)
        return Cell.of(row.cell)


def instance_mapping(instance_uuid: str) -> dict | None:
    with api_session() as s:
        row = s.scalar(select(am.InstanceMapping)
                       .where(am.InstanceMapping.instance_uuid == instance_uuid))
        if row is None:
            return None
        return {"instance_uuid": row.instance_uuid, "project_id": row.project_id,
                "user_id": row.user_id, "queued_for_delete": row.queued_for_delete,
                "cell": Cell.of(row.cell) if row.cell else None}


def cell_of_instance(instance_uuid: str) -> Cell:
    """The single authority on where a server lives: its instance mapping."""
    mapping = instance_mapping(instance_uuid)
    if mapping is None or mapping["cell"] is None:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    return mapping["cell"]


_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="scatter")


def scatter(cells: list[Cell], fn: Callable[[Cell], T]) -> dict[Cell, T]:
    """Run ``fn`` against every cell in parallel; a failing cell raises for all."""
    futures = {cell: _pool.submit(fn, cell) for cell in cells}
    return {cell: future.result() for cell, future in futures.items()}
