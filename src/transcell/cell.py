"""Finding cells and reading them all at once.

Cell mappings live in the API database; a server's cell is found only through
its instance mapping. Lists read every cell in parallel (a slow cell delays,
never blocks, the others) and callers de-duplicate by uuid.

A cell whose database cannot be reached is *down*. ``scatter`` fails for all
when one cell fails, which suits writes and checks that must see every cell;
``gather`` instead reports the down cells next to the others' results, so a
read can answer with what the API database still knows about them (Nova's
behaviour from microversion 2.69) or leave them out.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy import false, or_, select

from transcell import exception
from transcell.db import api_models as am
from transcell.db.session import api_session

LOG = logging.getLogger(__name__)

T = TypeVar("T")

CELL0_UUID = am.CellMapping.CELL0_UUID

#: Seconds a read of several cells waits for each before counting it as down: Nova's
#: CELL_TIMEOUT. A database that drops packets instead of refusing them would
#: otherwise hold the request for as long as the driver's connect timeout (forever
#: for some drivers).
CELL_TIMEOUT = 60.0

#: What a cell whose database cannot be reached raises: refused or dropped
#: connections, an exhausted pool, a database file that cannot be opened. Anything
#: else (a bug, a missing row) is not an outage and is never hidden as one.
UNREACHABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
    sa_exc.TimeoutError, OSError, TimeoutError)


class CellUnavailable(exception.TranscellError):
    """A read that needed a down cell and has nothing to answer with instead."""

    code = 500
    #: Nova words this 500 for the client, and it names nothing internal
    client_safe = True
    msg_fmt = ("Cell %(cell)s is not responding or returned an exception, hence instance "
               "info is not available.")


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


#: Cell and host mappings already read in this request or saga pass (``remembered``).
_seen: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cells_seen", default=None)


@contextlib.contextmanager
def remembered() -> Iterator[None]:
    """Read cell mappings and host mappings at most once within the block.

    A move asks for its two cells some twenty-five times and for a host's cell
    at every call to that host; all of it is the same answer for the length of
    one saga pass or one read-only request, since cells and hosts are mapped by
    an operator, not by a move. Instance mappings are never remembered: a move
    changes them. Per context variable, so each thread and request has its own,
    and a process that maps a new cell sees it in its next block. Nested blocks
    share the outer one's.
    """
    if _seen.get() is not None:
        yield
        return
    token = _seen.set({})
    try:
        yield
    finally:
        _seen.reset(token)


def _all_cells() -> list[Cell]:
    seen = _seen.get()
    if seen is not None and "cells" in seen:
        return seen["cells"]
    # Core rows, not ORM objects: every list request asks twice
    table = am.CellMapping.__table__
    with api_session() as s:
        cells = [Cell.of(r) for r in s.execute(select(table).order_by(table.c.id))]
    if seen is not None:
        seen["cells"] = cells
    return cells


def list_cells(include_cell0: bool = True) -> list[Cell]:
    return [c for c in _all_cells() if include_cell0 or not c.is_cell0]


def get_cell(uuid_or_name: str) -> Cell:
    for cell in list_cells():
        if uuid_or_name in (cell.uuid, cell.name):
            return cell
    raise exception.CellNotFound(cell=uuid_or_name)


def cell0() -> Cell:
    return get_cell(CELL0_UUID)


def cell_of_host(host: str) -> Cell:
    seen = _seen.get()
    if seen is not None and ("host", host) in seen:
        return seen[("host", host)]
    with api_session() as s:
        row = s.scalar(select(am.HostMapping).where(am.HostMapping.host == host))
        if row is None:
            raise exception.ComputeHostNotFound(host=host)
        cell = Cell.of(row.cell)
    if seen is not None:
        seen[("host", host)] = cell
    return cell


def instance_mapping(instance_uuid: str) -> dict | None:
    with api_session() as s:
        row = s.scalar(select(am.InstanceMapping)
                       .where(am.InstanceMapping.instance_uuid == instance_uuid))
        if row is None:
            return None
        return {"instance_uuid": row.instance_uuid, "project_id": row.project_id,
                "user_id": row.user_id, "queued_for_delete": row.queued_for_delete,
                "created_at": row.created_at,
                "cell": Cell.of(row.cell) if row.cell else None}


def cell_of_instance(instance_uuid: str) -> Cell:
    """The single authority on where a server lives: its instance mapping."""
    mapping = instance_mapping(instance_uuid)
    if mapping is None or mapping["cell"] is None:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    return mapping["cell"]


def read_where_mapped(instance_uuid: str, read: Callable[[Cell], T | None],
                      mapping: dict | None = None) -> tuple[dict | None, T | None]:
    """The mapping and ``read(cell)`` of the cell it names, or None for what is missing.

    A move's flip points the mapping at the new cell and then hides the old
    row; a read that saw the old mapping and then found nothing looks again
    when the mapping has changed, rather than calling a live server missing.
    ``mapping`` is the caller's fresh read of it, if it has one.
    """
    if mapping is None:
        mapping = instance_mapping(instance_uuid)
    for _ in range(3):
        if mapping is None or mapping["cell"] is None:
            return mapping, None
        found = read(mapping["cell"])
        if found is not None:
            return mapping, found
        again = instance_mapping(instance_uuid)
        if again is None or again["cell"] is None or again["cell"].uuid == mapping["cell"].uuid:
            return mapping, None
        mapping = again
    return mapping, None


_POOL_PREFIX = "scatter"
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=_POOL_PREFIX)


def scatter(cells: list[Cell], fn: Callable[[Cell], T]) -> dict[Cell, T]:
    """Run ``fn`` against every cell in parallel; a failing cell raises for all."""
    futures = {cell: _pool.submit(fn, cell) for cell in cells}
    return {cell: future.result() for cell, future in futures.items()}


@dataclass
class Gathered(Generic[T]):
    """What ``gather`` read: each answering cell's result, and the cells that are down."""

    results: dict[Cell, T] = field(default_factory=dict)
    down: list[Cell] = field(default_factory=list)


def gather(cells: list[Cell], fn: Callable[[Cell], T], timeout: float | None = None
           ) -> Gathered[T]:
    """Run ``fn`` against every cell in parallel, tolerating cells that are down.

    A cell whose read raises one of ``UNREACHABLE``, or has not answered after
    ``timeout`` seconds (``CELL_TIMEOUT`` by default), is listed in ``down``
    and logged; any other exception is raised, as ``scatter`` would.
    """
    futures = {cell: _pool.submit(fn, cell) for cell in cells}
    wait_for(futures.values(), timeout=CELL_TIMEOUT if timeout is None else timeout)
    gathered: Gathered[T] = Gathered()
    for cell, future in futures.items():
        if not future.done():
            LOG.warning("Cell %s (%s) did not answer in time; its results are left out",
                        cell.name, cell.uuid)
            gathered.down.append(cell)
            continue
        error = future.exception()
        if error is None:
            gathered.results[cell] = future.result()
        elif isinstance(error, UNREACHABLE):
            LOG.warning("Cell %s (%s) is not responding: %s", cell.name, cell.uuid, error)
            gathered.down.append(cell)
        else:
            raise error
    return gathered


def read_one(cell: Cell, fn: Callable[[Cell], T], timeout: float | None = None) -> T:
    """``fn`` against one cell, raising ``CellUnavailable`` if that cell is down.

    Called from a thread of the scatter pool itself, it reads in place (without
    the timeout) rather than wait on a pool that may have no free thread left.
    """
    if threading.current_thread().name.startswith(_POOL_PREFIX):
        try:
            return fn(cell)
        except UNREACHABLE as exc:
            raise CellUnavailable(cell=cell.uuid) from exc
    gathered = gather([cell], fn, timeout)
    if gathered.down:
        raise CellUnavailable(cell=cell.uuid)
    return gathered.results[cell]


def mappings_in_cell(cell: Cell, project_id: str | None = None, limit: int | None = None
                     ) -> list[dict]:
    """The servers the API database places in ``cell`` and that are not being deleted,
    oldest first; ``project_id`` None means every project.

    This is all that is known about the servers of a cell that is down.
    """
    query = (select(am.InstanceMapping)
             .where(am.InstanceMapping.cell_id == cell.id,
                    or_(am.InstanceMapping.queued_for_delete.is_(None),
                        am.InstanceMapping.queued_for_delete == false()))
             .order_by(am.InstanceMapping.id))
    if project_id is not None:
        query = query.where(am.InstanceMapping.project_id == project_id)
    if limit is not None:
        query = query.limit(limit)
    with api_session() as s:
        return [{"uuid": row.instance_uuid, "project_id": row.project_id,
                 "user_id": row.user_id, "created_at": row.created_at}
                for row in s.scalars(query)]


def hosts_in_cell(cell: Cell) -> list[str]:
    """The compute hosts the API database maps to ``cell``, in the order they were mapped."""
    with api_session() as s:
        return list(s.scalars(select(am.HostMapping.host)
                              .where(am.HostMapping.cell_id == cell.id)
                              .order_by(am.HostMapping.id)))
