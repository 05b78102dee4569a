"""A server's rows, copied whole from one cell database to another.

The copy is driven by the models, not by a list of fields: every column of
the instance and of every table in ``INSTANCE_OWNED`` is carried over, so a
column added later travels without anyone remembering to add it here. Only
cell-local integer ids are left behind (each cell numbers its own rows), and
action events, which point at their action by such an id, are re-pointed.

Both directions run in one transaction of the cell written to, so a crash
leaves either a complete copy or none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from transcell import exception
from transcell.cell import Cell
from transcell.db import cell_models as cm
from transcell.db.session import cell_session

#: Columns a cell assigns itself and that never travel.
LOCAL_COLUMNS = frozenset({"id"})


def owner_column(model: type) -> Any:
    """The column that ties rows of ``model`` to their server's uuid."""
    if model is cm.Instance:
        return cm.Instance.uuid
    if model is cm.Tag:
        return cm.Tag.resource_id
    return model.instance_uuid


def copied_columns(model: type) -> list[str]:
    return [c.key for c in model.__table__.columns if c.key not in LOCAL_COLUMNS]


def _values(row: Any, model: type) -> dict[str, Any]:
    return {key: getattr(row, key) for key in copied_columns(model)}


def read_rows(session: Session, instance_uuid: str) -> dict[str, list[dict[str, Any]]]:
    """Everything the server owns in one cell, by table, deleted rows included."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for model in (cm.Instance, *cm.INSTANCE_OWNED):
        found = session.scalars(select(model).where(owner_column(model) == instance_uuid)
                                .order_by(*model.__table__.primary_key.columns)).all()
        rows[model.__tablename__] = [_values(r, model) | (
            {"_id": r.id} if model is cm.InstanceAction else {}) for r in found]
    action_ids = [a["_id"] for a in rows[cm.InstanceAction.__tablename__]]
    events = session.scalars(select(cm.InstanceActionEvent)
                             .where(cm.InstanceActionEvent.action_id.in_(action_ids))
                             .order_by(cm.InstanceActionEvent.id)).all() if action_ids else []
    rows[cm.InstanceActionEvent.__tablename__] = [_values(e, cm.InstanceActionEvent)
                                                  for e in events]
    return rows


def _delete_all(session: Session, instance_uuid: str) -> None:
    action_ids = list(session.scalars(select(cm.InstanceAction.id).where(
        cm.InstanceAction.instance_uuid == instance_uuid)))
    if action_ids:
        session.execute(delete(cm.InstanceActionEvent)
                        .where(cm.InstanceActionEvent.action_id.in_(action_ids)))
    for model in (*cm.INSTANCE_OWNED, cm.Instance):
        session.execute(delete(model).where(owner_column(model) == instance_uuid))


def _insert(session: Session, rows: dict[str, list[dict[str, Any]]], hidden: bool) -> None:
    for values in rows[cm.Instance.__tablename__]:
        session.add(cm.Instance(**(values | {"hidden": hidden})))
    session.flush()
    actions: list[tuple[int, Any]] = []
    for model in cm.INSTANCE_OWNED:
        for values in rows[model.__tablename__]:
            values = dict(values)
            old_id = values.pop("_id", None)
            row = model(**values)
            session.add(row)
            if model is cm.InstanceAction:
                actions.append((old_id, row))
    # one flush numbers every action (batched inserts), not one round trip per action:
    # a server that has moved often carries a long history
    session.flush()
    new_action_ids = {old_id: row.id for old_id, row in actions}
    for values in rows[cm.InstanceActionEvent.__tablename__]:
        values = dict(values)
        values["action_id"] = new_action_ids[values["action_id"]]
        session.add(cm.InstanceActionEvent(**values))


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
        t.flush()
        _insert(t, rows, hidden)


def _refuse_visible(session: Session, instance_uuid: str, cell: Cell) -> None:
    live = session.scalar(select(cm.Instance).where(cm.Instance.uuid == instance_uuid,
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
        action = s.scalar(select(cm.InstanceAction).where(
            cm.InstanceAction.instance_uuid == instance_uuid,
            cm.InstanceAction.request_id == request_id).order_by(cm.InstanceAction.id.desc()))
        if action is None:
            return
        values = _values(action, cm.InstanceAction)
        events = [_values(e, cm.InstanceActionEvent) for e in s.scalars(
            select(cm.InstanceActionEvent).where(cm.InstanceActionEvent.action_id == action.id)
            .order_by(cm.InstanceActionEvent.id))]
    with cell_session(target) as t:
        old_ids = list(t.scalars(select(cm.InstanceAction.id).where(
            cm.InstanceAction.instance_uuid == instance_uuid,
            cm.InstanceAction.request_id == request_id)))
        if old_ids:
            t.execute(delete(cm.InstanceActionEvent)
                      .where(cm.InstanceActionEvent.action_id.in_(old_ids)))
            t.execute(delete(cm.InstanceAction).where(cm.InstanceAction.id.in_(old_ids)))
        row = cm.InstanceAction(**values)
        t.add(row)
        t.flush()
        for event in events:
            t.add(cm.InstanceActionEvent(**(event | {"action_id": row.id})))
