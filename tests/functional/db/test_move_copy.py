"""Copying a server between cell databases carries every column of every table it
owns, on every engine. The columns come from the models, so a column or a table
added later is checked without anyone editing this test."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

import dbfixtures
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from transcell import exception
from transcell.cell import Cell
from transcell.db import cell_models as cm
from transcell.db import migration
from transcell.db.session import cell_session
from transcell.db.types import JSONText
from transcell.move import copy

WHEN = dt.datetime(2026, 5, 4, 3, 2, 1)


def _cell(url: str, name: str) -> Cell:
    return Cell(id=1, uuid=str(uuidlib.uuid4()), name=name, database_connection=url,
                transport_url="inproc://test")


@pytest.fixture
def two_cells(db_factory: dbfixtures.DatabaseFactory) -> tuple[Cell, Cell]:
    cells = []
    for name in ("cellA", "cellB"):
        url = db_factory.create()
        migration.sync(url, "cell")
        cells.append(_cell(url, name))
    return cells[0], cells[1]


def _value(column: sa.Column, salt: int):
    """A value unlike the column's default, so a column left behind shows."""
    kind = column.type
    if isinstance(kind, JSONText):
        return {"column": column.key, "salt": salt}
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.DateTime):
        return WHEN + dt.timedelta(seconds=salt)
    if isinstance(kind, sa.Float):
        return 1.5 + salt
    if isinstance(kind, sa.Integer):
        return 40 + salt
    length = getattr(kind, "length", None) or 64
    return f"{column.key[:20]}-{salt}"[:length]


def _row(model: type, owner: str, salt: int, **fixed):
    values = {}
    for column in model.__table__.columns:
        if column.key == "id":
            continue
        values[column.key] = _value(column, salt)
    if model is cm.Instance:
        values.update(uuid=owner, deleted=0, hidden=False)
    elif model is cm.Tag:
        values.update(resource_id=owner)
    elif "instance_uuid" in values:
        values.update(instance_uuid=owner)
    if "deleted" in values:
        values["deleted"] = 0
    values.update(fixed)
    return model(**values)


def _populate(cell: Cell, uuid: str) -> None:
    with cell_session(cell) as s:
        s.add(_row(cm.Instance, uuid, 1))
        s.flush()
        for salt, model in enumerate(cm.INSTANCE_OWNED, start=2):
            for copy_no in range(2 if model is not cm.InstanceExtra else 1):
                extra = {"uuid": str(uuidlib.uuid4())} if "uuid" in \
                    model.__table__.columns.keys() else {}
                row = _row(model, uuid, salt * 10 + copy_no, **extra)
                s.add(row)
                s.flush()
                if model is cm.InstanceAction:
                    s.add(_row(cm.InstanceActionEvent, uuid, salt * 100 + copy_no,
                               action_id=row.id))


def _without_local(rows: dict[str, list[dict]]) -> dict[str, list[dict]]:
    out = {}
    for table, found in rows.items():
        out[table] = sorted(({k: v for k, v in r.items() if k not in ("_id", "action_id",
                                                                        "hidden")}
                             for r in found), key=repr)
    return out


def test_every_column_of_every_owned_table_is_copied(two_cells):
    source, target = two_cells
    uuid = str(uuidlib.uuid4())
    _populate(source, uuid)
    copy.copy_instance(source, target, uuid, hidden=True)
    with cell_session(source) as s:
        before = copy.read_rows(s, uuid)
    with cell_session(target) as s:
        after = copy.read_rows(s, uuid)
        hidden = s.scalar(select(cm.Instance.hidden).where(cm.Instance.uuid == uuid))
    assert hidden is True
    assert _without_local(after) == _without_local(before)
    for table, rows in before.items():
        assert rows, f"{table} was not populated: the test would prove nothing for it"
    # events point at the target's own copy of their action
    with cell_session(target) as s:
        action_ids = set(s.scalars(select(cm.InstanceAction.id)
                                   .where(cm.InstanceAction.instance_uuid == uuid)))
        event_actions = set(s.scalars(select(cm.InstanceActionEvent.action_id)))
    assert event_actions and event_actions <= action_ids


def test_copying_again_replaces_the_hidden_copy(two_cells):
    source, target = two_cells
    uuid = str(uuidlib.uuid4())
    _populate(source, uuid)
    copy.copy_instance(source, target, uuid)
    copy.copy_instance(source, target, uuid)
    with cell_session(target) as s:
        assert s.scalar(select(sa.func.count()).select_from(cm.Instance)) == 1
        assert s.scalar(select(sa.func.count()).select_from(cm.InstanceAction)) == 2


def test_a_visible_row_is_never_overwritten_or_hard_deleted(two_cells):
    source, target = two_cells
    uuid = str(uuidlib.uuid4())
    _populate(source, uuid)
    _populate(target, uuid)
    with pytest.raises(exception.Conflict):
        copy.copy_instance(source, target, uuid)
    with pytest.raises(exception.Conflict):
        copy.hard_delete(target, uuid)
    assert copy.hard_delete(target, uuid, only_hidden=False) is True
    with cell_session(target) as s:
        for model in (cm.Instance, *cm.INSTANCE_OWNED, cm.InstanceActionEvent):
            assert s.scalar(select(sa.func.count()).select_from(model)) == 0, model


def test_every_table_keyed_by_a_server_travels_with_it():
    """A new table holding per-server rows must join INSTANCE_OWNED, or moves lose it."""
    travelling = {m.__table__.name for m in (cm.Instance, *cm.INSTANCE_OWNED)}
    travelling.add(cm.InstanceActionEvent.__table__.name)  # follows its action
    for table in cm.CellBase.metadata.sorted_tables:
        keyed = {"instance_uuid", "resource_id"} & set(table.columns.keys())
        if keyed:
            assert table.name in travelling, f"{table.name} is keyed by a server but not copied"


def test_a_server_read_as_a_page_of_one_equals_the_orm_read(two_cells):
    """``instance.get`` of a live server reads it as the server list does; every key
    and value matches the ORM read it replaced, on every engine."""
    from transcell.compute import instance as inst

    cell, _ = two_cells
    uuid = str(uuidlib.uuid4())
    _populate(cell, uuid)
    with cell_session(cell) as s:  # a deleted row of each kind that has one stays out
        s.add(_row(cm.InstanceMetadata, uuid, 7, deleted=1, key="gone"))
        s.add(_row(cm.VirtualInterface, uuid, 8, deleted=1, uuid=str(uuidlib.uuid4())))
    fast = inst.get(cell, uuid)
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid))
        orm = inst.to_dict(s, row)
    assert fast == orm
    assert fast["vifs"] and fast["bdms"] and fast["fault"] and fast["metadata"]
    assert "gone" not in fast["metadata"] and len(fast["vifs"]) == 2
    with cell_session(cell) as s:
        s.execute(sa.update(cm.Instance).where(cm.Instance.uuid == uuid).values(hidden=True))
    with pytest.raises(exception.InstanceNotFound):
        inst.get(cell, uuid)
    hidden = inst.get(cell, uuid, include_hidden=True)
    assert hidden == dict(orm, hidden=True, updated_at=hidden["updated_at"])
    # a deleted row is read (by the ORM) only when asked for
    with cell_session(cell) as s:
        s.execute(sa.update(cm.Instance).where(cm.Instance.uuid == uuid).values(deleted=1))
    with pytest.raises(exception.InstanceNotFound):
        inst.get(cell, uuid, include_hidden=True)
    assert inst.get(cell, uuid, read_deleted=True, include_hidden=True)["deleted"] == 1


def _orm_rows(cell: Cell, uuid: str) -> dict[str, list[tuple]]:
    """Every row the server owns as the ORM reads it, ids left out and events keyed by
    their action's request id: the reference the Core copy must match, type for type."""
    out: dict[str, list[tuple]] = {}
    with cell_session(cell) as s:
        for model in (cm.Instance, *cm.INSTANCE_OWNED):
            found = s.scalars(select(model).where(copy.owner_column(model) == uuid)).all()
            out[model.__tablename__] = sorted(
                (tuple((k, type(getattr(r, k)).__name__, getattr(r, k))
                       for k in copy.copied_columns(model) if k != "hidden")
                 for r in found), key=repr)
        requests = dict(s.execute(select(cm.InstanceAction.id, cm.InstanceAction.request_id)
                                  .where(cm.InstanceAction.instance_uuid == uuid)).all())
        events = s.scalars(select(cm.InstanceActionEvent).where(
            cm.InstanceActionEvent.action_id.in_(list(requests)))).all()
        out["instance_actions_events"] = sorted(
            ((requests[e.action_id],) + tuple(
                (k, type(getattr(e, k)).__name__, getattr(e, k))
                for k in copy.copied_columns(cm.InstanceActionEvent) if k != "action_id")
             for e in events), key=repr)
    return out


def _populate_history(cell: Cell, uuid: str, actions: int, events: int) -> None:
    """A server that has moved often: a long action history next to one of everything."""
    _populate(cell, uuid)
    with cell_session(cell) as s:
        gone = _row(cm.InstanceMetadata, uuid, 5, key="gone")
        s.add(gone)
        s.flush()
        gone.deleted = gone.id  # a soft-deleted row travels as it is
        s.add(_row(cm.InstanceSystemMetadata, uuid, 6, value="ünïcode ✓"))
        s.add(_row(cm.Tag, uuid, 7, tag="trusted"))
        s.add(_row(cm.InstanceFault, uuid, 8, details=None, host=None))
        s.add(_row(cm.BlockDeviceMapping, uuid, 9, uuid=str(uuidlib.uuid4()),
                   device_name="/dev/vdz", connection_info={"data": {"nested": [1, "ü", None]},
                                                           "driver_volume_type": "file"}))
        for n in range(actions):
            action = _row(cm.InstanceAction, uuid, 1000 + n, request_id=f"req-{n}",
                          finish_time=None if n % 7 == 0 else WHEN)
            s.add(action)
            s.flush()
            for e in range(events):
                s.add(_row(cm.InstanceActionEvent, uuid, 10_000 + n * 10 + e,
                           action_id=action.id, event=f"ev-{n}-{e}",
                           traceback=None if e % 2 else "Traceback\n  line"))


def test_a_long_history_is_copied_column_for_column(two_cells):
    source, target = two_cells
    uuid = str(uuidlib.uuid4())
    _populate_history(source, uuid, actions=30, events=5)
    before = _orm_rows(source, uuid)
    assert len(before["instance_actions"]) == 32
    assert len(before["instance_actions_events"]) == 30 * 5 + 2
    copy.copy_instance(source, target, uuid)
    copy.copy_instance(source, target, uuid)  # a retried step replaces its own copy
    after = _orm_rows(target, uuid)
    for table, rows in before.items():
        assert after[table] == rows, table
    with cell_session(target) as s:
        assert s.scalar(select(cm.Instance.hidden).where(cm.Instance.uuid == uuid)) is True
        # each event sits under the target's copy of its own action
        pairs = s.execute(select(cm.InstanceActionEvent.event, cm.InstanceAction.request_id)
                          .join(cm.InstanceAction,
                                cm.InstanceAction.id == cm.InstanceActionEvent.action_id)
                          .where(cm.InstanceActionEvent.event.like("ev-%"))).all()
    assert len(pairs) == 150
    assert all(event.split("-")[1] == request.split("-")[1] for event, request in pairs)


def test_copy_action_replaces_the_targets_copy_of_one_action(two_cells):
    source, target = two_cells
    uuid = str(uuidlib.uuid4())
    _populate_history(source, uuid, actions=3, events=4)
    copy.copy_instance(source, target, uuid)
    with cell_session(source) as s:
        s.add(_row(cm.InstanceActionEvent, uuid, 99, event="ev-1-late", traceback=None,
                   action_id=s.scalar(select(cm.InstanceAction.id)
                                      .where(cm.InstanceAction.request_id == "req-1"))))
    copy.copy_action(source, target, uuid, "req-1")
    copy.copy_action(source, target, uuid, "no-such-request")
    assert _orm_rows(target, uuid) == _orm_rows(source, uuid)
