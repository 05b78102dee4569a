"""A server's rows in its cell, read and written as one plain dict.

Services pass instance uuids over RPC and reload here, so no caller works on
a stale copy; ``update`` can insist on the task state it expects, which is how
two racing actions on one server are told apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, false, or_, select
from sqlalchemy import update as sa_update

from transcell import exception
from transcell.cell import Cell
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow

_NOT_SET = object()


class UnexpectedTaskState(exception.Conflict):
    msg_fmt = ("Instance %(instance_uuid)s changed before this request could act on it: "
               "it is in task_state %(actual)s, and this request needs %(expected)s. "
               "Retry once the current task has ended.")


class UnexpectedVMState(exception.Conflict):
    msg_fmt = ("Instance %(instance_uuid)s changed before this request could act on it: "
               "it is in vm_state %(actual)s, and this request needs %(expected)s.")


def _columns(row) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def to_dict(session, row: cm.Instance) -> dict[str, Any]:
    data = _columns(row)
    uuid = row.uuid
    extra = session.scalar(select(cm.InstanceExtra).where(cm.InstanceExtra.instance_uuid == uuid))
    data["flavor"] = (extra.flavor or {}).get("cur") if extra else None
    data["old_flavor"] = (extra.flavor or {}).get("old") if extra else None
    data["new_flavor"] = (extra.flavor or {}).get("new") if extra else None
    data["keypairs"] = extra.keypairs if extra else None
    data["request_networks"] = extra.request_networks if extra else None
    data["tags"] = sorted(session.scalars(select(cm.Tag.tag).where(cm.Tag.resource_id == uuid)))
    data["metadata"] = {m.key: m.value for m in session.scalars(
        select(cm.InstanceMetadata).where(cm.InstanceMetadata.instance_uuid == uuid,
                                          cm.InstanceMetadata.deleted == 0))}
    data["system_metadata"] = {m.key: m.value for m in session.scalars(
        select(cm.InstanceSystemMetadata).where(
            cm.InstanceSystemMetadata.instance_uuid == uuid,
            cm.InstanceSystemMetadata.deleted == 0))}
    data["vifs"] = [_columns(v) for v in session.scalars(
        select(cm.VirtualInterface).where(cm.VirtualInterface.instance_uuid == uuid,
                                          cm.VirtualInterface.deleted == 0)
        .order_by(cm.VirtualInterface.id))]
    data["bdms"] = [_columns(b) for b in session.scalars(
        select(cm.BlockDeviceMapping).where(cm.BlockDeviceMapping.instance_uuid == uuid,
                                            cm.BlockDeviceMapping.deleted == 0)
        .order_by(cm.BlockDeviceMapping.id))]
    fault = session.scalar(select(cm.InstanceFault)
                           .where(cm.InstanceFault.instance_uuid == uuid)
                           .order_by(cm.InstanceFault.id.desc()).limit(1))
    data["fault"] = _columns(fault) if fault else None
    return data


def get(cell: Cell, uuid: str, read_deleted: bool = False, include_hidden: bool = False
        ) -> dict[str, Any]:
    if not read_deleted:  # what the API and a move read most
        from transcell.compute import server_list
        with cell_session(cell) as s:
            found = server_list.load_one(s, uuid, include_hidden)
        if found is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        return found
    with cell_session(cell) as s:
        query = select(cm.Instance).where(cm.Instance.uuid == uuid)
        if not read_deleted:
            query = query.where(cm.Instance.deleted == 0)
        if not include_hidden:
            query = query.where(cm.Instance.hidden.is_(False))
        row = s.scalar(query)
        if row is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        return to_dict(s, row)


def find(cell: Cell, uuid: str) -> dict[str, Any] | None:
    """Any row for ``uuid`` in ``cell``, hidden or deleted, or None."""
    try:
        return get(cell, uuid, read_deleted=True, include_hidden=True)
    except exception.InstanceNotFound:
        return None


def _states(allowed: Any) -> tuple:
    """An expected state as callers pass it (one value or several) as a tuple."""
    return tuple(allowed) if isinstance(allowed, (tuple, list, set, frozenset)) else (allowed,)


def _state_in(column, allowed: Any):
    """``column IN allowed``, where None in ``allowed`` means SQL NULL."""
    values = _states(allowed)
    named = [v for v in values if v is not None]
    clauses = []
    if named:
        clauses.append(column.in_(named))
    if None in values:
        clauses.append(column.is_(None))
    return or_(*clauses) if clauses else false()


def update(cell: Cell, uuid: str, expected_task_state: Any = _NOT_SET,
           expected_vm_state: Any = _NOT_SET, expect_unlocked: bool = False,
           full: bool = True, **values: Any) -> dict[str, Any]:
    """Change a server's columns in one ``UPDATE ... WHERE`` on the states the caller expects.

    This is the one place a server's vm and task state change. With
    ``expected_task_state`` and/or ``expected_vm_state`` (a value or a tuple;
    None stands for "no task"), the guard is part of the statement itself, so
    of two requests racing for the same server exactly one matches the row and
    the other gets 409, whatever the database engine and its isolation level.
    ``expect_unlocked`` adds "not locked" to the guard (a non-administrator's action
    racing a lock: InstanceIsLocked).

    Returns the server as ``get`` reads it; with ``full`` False only its own
    columns (no flavor, metadata, tags, interfaces, devices or fault), one
    query instead of nine, for a caller that wants no more than that.
    """
    with cell_session(cell) as s:
        stmt = sa_update(cm.Instance).where(cm.Instance.uuid == uuid, cm.Instance.deleted == 0)
        if expected_task_state is not _NOT_SET:
            stmt = stmt.where(_state_in(cm.Instance.task_state, expected_task_state))
        if expected_vm_state is not _NOT_SET:
            stmt = stmt.where(_state_in(cm.Instance.vm_state, expected_vm_state))
        if expect_unlocked:
            stmt = stmt.where(or_(cm.Instance.locked.is_(False), cm.Instance.locked.is_(None)))
        result = s.execute(stmt.values(**values, updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid,
                                                 cm.Instance.deleted == 0)
                       .execution_options(populate_existing=True))
        if result.rowcount == 0:
            if row is None:
                raise exception.InstanceNotFound(instance_id=uuid)
            if expect_unlocked and row.locked:
                raise exception.InstanceIsLocked(instance_uuid=uuid)
            if expected_task_state is not _NOT_SET and \
                    row.task_state not in _states(expected_task_state):
                raise UnexpectedTaskState(instance_uuid=uuid, actual=row.task_state or "none",
                                          expected=_words(expected_task_state))
            raise UnexpectedVMState(instance_uuid=uuid, expected=_words(expected_vm_state),
                                    actual=row.vm_state)
        return to_dict(s, row) if full else _columns(row)


def _words(allowed: Any) -> str:
    """``(None, 'powering-off')`` as a person reads it: ``none or powering-off``."""
    return " or ".join("none" if v is None else str(v) for v in _states(allowed))


def set_flavors(cell: Cell, uuid: str, **flavors: dict | None) -> None:
    """Set any of cur/old/new flavor copies kept in instance_extra."""
    with cell_session(cell) as s:
        extra = s.scalar(select(cm.InstanceExtra).where(cm.InstanceExtra.instance_uuid == uuid))
        current = dict(extra.flavor or {})
        current.update(flavors)
        extra.flavor = current


def set_system_metadata(cell: Cell, uuid: str, key: str, value: str | None) -> None:
    with cell_session(cell) as s:
        s.execute(delete(cm.InstanceSystemMetadata).where(
            cm.InstanceSystemMetadata.instance_uuid == uuid,
            cm.InstanceSystemMetadata.key == key))
        if value is not None:
            s.add(cm.InstanceSystemMetadata(instance_uuid=uuid, key=key, value=value))


def soft_delete(cell: Cell, uuid: str) -> None:
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid,
                                                 cm.Instance.deleted == 0))
        if row is None:
            return
        now = utcnow()
        row.deleted = row.id
        row.deleted_at = now
        row.terminated_at = now
        row.vm_state = "deleted"
        row.task_state = None
        row.power_state = 0
        for model in (cm.VirtualInterface, cm.BlockDeviceMapping, cm.InstanceMetadata,
                      cm.InstanceSystemMetadata, cm.InstanceExtra):
            for owned in s.scalars(select(model).where(model.instance_uuid == uuid,
                                                       model.deleted == 0)):
                owned.deleted = owned.id
                owned.deleted_at = now


def add_fault(cell: Cell, uuid: str, error: BaseException | str, host: str | None = None,
              code: int | None = None, details: str | None = None) -> None:
    message = error if isinstance(error, str) else (
        getattr(error, "message", None) or str(error) or type(error).__name__)
    if code is None:
        code = getattr(error, "code", 500) if not isinstance(error, str) else 500
    with cell_session(cell) as s:
        s.add(cm.InstanceFault(instance_uuid=uuid, code=code, message=message[:255],
                               details=details, host=host))


def set_vifs(cell: Cell, uuid: str, vifs: list[dict]) -> None:
    with cell_session(cell) as s:
        s.execute(delete(cm.VirtualInterface).where(cm.VirtualInterface.instance_uuid == uuid))
        for vif in vifs:
            s.add(cm.VirtualInterface(
                uuid=vif["id"], address=vif.get("address"), network_id=vif.get("network_id"),
                instance_uuid=uuid, tag=vif.get("tag"),
                info={"network_name": vif.get("network_name"),
                      "fixed_ips": vif.get("fixed_ips", []),
                      "preexisting": vif.get("preexisting", False),
                      **({"security_groups": vif["security_groups"]}
                         if vif.get("security_groups") else {})}))


def on_host(cell: Cell, host: str) -> list[dict[str, Any]]:
    """Live, visible and hidden rows whose host is ``host`` (for resource tracking)."""
    with cell_session(cell) as s:
        rows = s.scalars(select(cm.Instance).where(cm.Instance.host == host,
                                                   cm.Instance.deleted == 0)).all()
        return [_columns(r) for r in rows]
