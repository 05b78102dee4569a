"""A server's rows, copied whole from one cell database to another.

The copy is driven by the models, not by a list of fields: every column of
the instance and of every table in ``INSTANCE_OWNED`` is carried over, so a
column added later travels without anyone remembering to add it here. Only
cell-local integer ids are left behind (each cell numbers its own rows), and
action events, which point at their action by such an id, are re-pointed.

Both directions run in one transaction of the cell written to, so a crash
leaves either a complete copy or none.

Rows travel as plain values through Core, not as ORM objects: a server that
has moved often carries a long action history, copied whole on every move.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, insert, select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.cell import Cell
from transcell.db import cell_models as cm
from transcell.db.session import cell_session

#: Columns a cell assigns itself and that never travel.
LOCAL_COLUMNS = frozenset({"id"})

_ACTIONS: Table = cm.InstanceAction.__table__
_EVENTS: Table = cm.InstanceActionEvent.__table__


def owner_column(model: type) -> Any:
    """The column that ties rows of ``model`` to their server's uuid."""
    if model is cm.Instance:
        return cm.Instance.uuid
    if model is cm.Tag:
        return cm.Tag.resource_id
    return model.instance_uuid


def _owner(model: type) -> Column:
    """``owner_column`` as its table's column, for Core statements."""
    return model.__table__.c[owner_column(model).key]


@cache
def copied_columns(model: type) -> tuple[str, ...]:
    return tuple(c.key for c in model.__table__.columns if c.key not in LOCAL_COLUMNS)


def _read(conn: Connection, model: type, where: Any, with_id: bool = False,
          ) -> list[dict[str, Any]]:
    """Rows as plain dicts read through Core: a long action history costs no ORM objects.

    Every column is named explicitly, so each one goes through its own type (JSON
    decoded, datetimes parsed) exactly as the ORM read it, and is bound back the
    same way on insert.
    """
    table: Table = model.__table__
    keys = copied_columns(model)
    columns = [table.c[k] for k in keys] + ([table.c.id] if with_id else [])
    if with_id:
        keys = [*keys, "_id"]
    found = conn.execute(select(*columns).where(where).order_by(*table.primary_key.columns))
    return [dict(zip(keys, row, strict=True)) for row in found]


def read_rows(session: Session, instance_uuid: str) -> dict[str, list[dict[str, Any]]]:
    """Everything the server owns in one cell, by table, deleted rows included."""
    conn = session.connection()
    rows: dict[str, list[dict[str, Any]]] = {}
    for model in (cm.Instance, *cm.INSTANCE_OWNED):
        table: Table = model.__table__
        rows[table.name] = _read(conn, model, _owner(model) == instance_uuid,
                                 with_id=model is cm.InstanceAction)
    # one read of every event through its action, not an IN list as long as the history
    rows[_EVENTS.name] = _read(conn, cm.InstanceActionEvent, _EVENTS.c.action_id.in_(
        select(_ACTIONS.c.id).where(_ACTIONS.c.instance_uuid == instance_uuid)
        .scalar_subquery())) if rows[_ACTIONS.name] else []
    return rows


def _delete_all(session: Session, instance_uuid: str) -> None:
    conn = session.connection()
    action_ids = list(conn.scalars(select(_ACTIONS.c.id).where(
        _ACTIONS.c.instance_uuid == instance_uuid)))
    if action_ids:
        conn.execute(delete(_EVENTS).where(_EVENTS.c.action_id.in_(action_ids)))
    for model in (*cm.INSTANCE_OWNED, cm.Instance):
        conn.execute(delete(model.__table__).where(_owner(model) == instance_uuid))


def _insert_action(conn: Connection, values: dict[str, Any]) -> int:
    """One action, for the id its cell gives it: portable to every engine, unlike
    reading ids back from a batch, and a history has far fewer actions than events."""
    return conn.execute(insert(_ACTIONS), values).inserted_primary_key[0]


def _insert(session: Session, rows: dict[str, list[dict[str, Any]]], hidden: bool) -> None:
    """Each table in one executemany of every column given explicitly, so the target
    holds the source's values and no Python-side default of a model fills one in."""
    conn = session.connection()
    conn.execute(insert(cm.Instance.__table__),
                 [values | {"hidden": hidden} for values in rows[cm.Instance.__tablename__]])
    new_action_ids: dict[int, int] = {}
    for model in cm.INSTANCE_OWNED:
        table: Table = model.__table__
        if model is cm.InstanceAction:
            for values in rows[table.name]:
                values = dict(values)
                old_id = values.pop("_id")
                new_action_ids[old_id] = _insert_action(conn, values)
        elif rows[table.name]:
            conn.execute(insert(table), rows[table.name])
    events = [values | {"action_id": new_action_ids[values["action_id"]]}
              for values in rows[_EVENTS.name]]
    if events:
        conn.execute(insert(_EVENTS), events)


def copy_instance(source: Cell, target: Cell, instance_uuid: str, hidden: bool = True) -> None:
    """Copy the server into ``target`` as a hidden row with everything it owns.

    Re-running replaces an earlier hidden copy, so a retried step converges;
    a visible row in the target is never overwritten, since that would be
    the live server.
    """
    with cell_session(source) as s:
        rows = read_rows(s, instance_uuid)
    if not rows[cm.Instance.__tablename__]:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    with cell_session(target) as t:
        _refuse_visible(t, instance_uuid, target)
        _delete_all(t, instance_uuid)
        _insert(t, rows, hidden)


def _refuse_visible(session: Session, instance_uuid: str, cell: Cell) -> None:
    live = session.scalar(select(cm.Instance.id).where(cm.Instance.uuid == instance_uuid,
                                                       cm.Instance.deleted == 0,
                                                       cm.Instance.hidden.is_(False)))
    if live is not None:
        raise exception.Conflict(f"Instance {instance_uuid} is already live in cell "
                                 f"{cell.name}; refusing to overwrite it with a copy.")


def hard_delete(cell: Cell, instance_uuid: str, only_hidden: bool = True) -> bool:
    """Remove every row the server has in ``cell``; False when there was nothing.

    With ``only_hidden`` a visible live row is left alone and Conflict is
    raised, so a mistaken cleanup can never erase the copy users see.
    """
    with cell_session(cell) as s:
        present = s.scalar(select(cm.Instance.id).where(cm.Instance.uuid == instance_uuid))
        if present is None:
            return False
        if only_hidden:
            _refuse_visible(s, instance_uuid, cell)
        _delete_all(s, instance_uuid)
        return True


def copy_action(source: Cell, target: Cell, instance_uuid: str, request_id: str) -> None:
    """Copy one action and its events, replacing the target's copy of it.

    A revert moves the server back to a cell that lacks the ``revertResize``
    action recorded after the first copy; this carries just that history.
    """
    with cell_session(source) as s:
        conn = s.connection()
        found = _read(conn, cm.InstanceAction, (_ACTIONS.c.instance_uuid == instance_uuid)
                      & (_ACTIONS.c.request_id == request_id), with_id=True)
        if not found:
            return
        values = dict(found[-1])  # the latest, as ids grow
        events = _read(conn, cm.InstanceActionEvent, _EVENTS.c.action_id == values.pop("_id"))
    with cell_session(target) as t:
        conn = t.connection()
        old_ids = list(conn.scalars(select(_ACTIONS.c.id).where(
            _ACTIONS.c.instance_uuid == instance_uuid, _ACTIONS.c.request_id == request_id)))
        if old_ids:
            conn.execute(delete(_EVENTS).where(_EVENTS.c.action_id.in_(old_ids)))
            conn.execute(delete(_ACTIONS).where(_ACTIONS.c.id.in_(old_ids)))
        new_id = _insert_action(conn, values)
        if events:
            conn.execute(insert(_EVENTS), [e | {"action_id": new_id} for e in events])
