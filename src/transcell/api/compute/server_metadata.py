"""/servers/{id}/metadata[/{key}]: the user's key/value pairs on a server, in its cell.

Metadata rows are keyed by the instance uuid, so they move with the server
between cells and are read wherever its mapping points. Every change is made
in one transaction of the server's cell that first takes the server by a
conditional update on the states Nova allows (active, paused, suspended or
stopped, no task running, not locked for the caller): a change racing a
resize, a delete or a lock either lands before it or gets 409, never after.
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import delete as sql_delete
from sqlalchemy import or_, select
from sqlalchemy import update as sql_update

from transcell import exception, quota
from transcell.api.compute import common
from transcell.api.compute.schemas import server_metadata as schema
from transcell.compute import power_api, server_groups
from transcell.compute import vm_states as vm
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.policy import authorize
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

_RULE = "os_compute_api:server-metadata:"

#: The states in which Nova lets a server's metadata change.
CHANGEABLE = (vm.ACTIVE, "paused", "suspended", vm.STOPPED)


class MetadataLimitExceeded(exception.OverQuota):
    msg_fmt = "Maximum number of metadata items exceeds %(allowed)d"


def metadata_limit(project_id: str) -> int:
    """The project's ``metadata_items`` limit (-1 = unlimited), from the quota module
    when it knows it, else the configured default."""
    return server_groups.limit_of("metadata_items", project_id)


def check_metadata_count(project_id: str, count: int) -> None:
    """Nova's 403 for more metadata items on one server than the quota allows."""
    allowed = metadata_limit(project_id)
    if allowed != quota.UNLIMITED and count > allowed:
        raise MetadataLimitExceeded(allowed=allowed)


def _server(req: webob.Request, server_id: str, action: str) -> common.ServerRef:
    ctx = context_of(req)
    server = common.get_instance_or_404(ctx, server_id)
    authorize(ctx, _RULE + action, {"project_id": server.project_id})
    return server


def _items(server: common.ServerRef) -> dict[str, str | None]:
    with cell_session(server.cell) as s:
        return _read(s, server.uuid)


def _read(session, uuid: str) -> dict[str, str | None]:
    return {m.key: m.value for m in session.scalars(
        select(cm.InstanceMetadata).where(cm.InstanceMetadata.instance_uuid == uuid,
                                          cm.InstanceMetadata.deleted == 0)
        .order_by(cm.InstanceMetadata.id))}


def _take(session, ctx: RequestContext, server: common.ServerRef, action: str) -> None:
    """Hold the server in a changeable state for this transaction, or 409."""
    stmt = (sql_update(cm.Instance)
            .where(cm.Instance.uuid == server.uuid, cm.Instance.deleted == 0,
                   cm.Instance.vm_state.in_(CHANGEABLE), cm.Instance.task_state.is_(None))
            .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    if not ctx.is_admin:
        stmt = stmt.where(or_(cm.Instance.locked.is_(False), cm.Instance.locked.is_(None)))
    if session.execute(stmt).rowcount:
        return
    row = session.scalar(select(cm.Instance).where(cm.Instance.uuid == server.uuid,
                                                   cm.Instance.deleted == 0))
    if row is None:
        raise exception.InstanceNotFound(instance_id=server.uuid)
    power_api.check_not_locked(ctx, {"uuid": server.uuid, "locked": row.locked})
    attr, state = (("task_state", row.task_state) if row.task_state
                   else ("vm_state", row.vm_state))
    raise exception.InstanceInvalidState(action=action, instance_uuid=server.uuid,
                                         attr=attr, state=state)


def _change(req: webob.Request, server: common.ServerRef, action: str,
            changes: dict[str, str | None], replace: bool) -> dict[str, str | None]:
    """Apply ``changes`` (a None value deletes the key) and return all metadata after.

    With ``replace`` every key not in ``changes`` goes. The count is checked
    inside the same transaction, against what it would leave, so two merges
    racing for the last items cannot both stay over the limit on SQLite and
    are at worst both refused on engines that run them truly in parallel.
    """
    ctx = context_of(req)
    with cell_session(server.cell) as s:
        _take(s, ctx, server, action)
        current = _read(s, server.uuid)
        after = {} if replace else dict(current)
        for key, value in changes.items():
            if value is None:
                after.pop(key, None)
            else:
                after[key] = value
        check_metadata_count(server.project_id, len(after))
        gone = [k for k in current if k not in after or current[k] != after[k]]
        if gone:
            s.execute(sql_delete(cm.InstanceMetadata).where(
                cm.InstanceMetadata.instance_uuid == server.uuid,
                cm.InstanceMetadata.key.in_(gone)))
        for key, value in after.items():
            if key not in current or current[key] != value:
                s.add(cm.InstanceMetadata(instance_uuid=server.uuid, key=key, value=value))
        return after


def index(req: webob.Request, server_id: str) -> webob.Response:
    server = _server(req, server_id, "index")
    return json_response({"metadata": _items(server)})


def show(req: webob.Request, server_id: str, key: str) -> webob.Response:
    server = _server(req, server_id, "show")
    items = _items(server)
    if key not in items:
        raise exception.NotFound("Metadata item was not found")
    return json_response({"meta": {key: items[key]}})


def _body(req: webob.Request, body_schema: dict[str, Any]) -> dict[str, Any]:
    body = read_json(req)
    common.validate(body_schema, body)
    return body


def create(req: webob.Request, server_id: str) -> webob.Response:
    """POST: merge the given items into the server's metadata."""
    body = _body(req, schema.METADATA_BODY)
    server = _server(req, server_id, "create")
    after = _change(req, server, "update metadata", body["metadata"], replace=False)
    return json_response({"metadata": after})


def update_all(req: webob.Request, server_id: str) -> webob.Response:
    """PUT: the given items become all of the server's metadata."""
    body = _body(req, schema.METADATA_BODY)
    server = _server(req, server_id, "update_all")
    after = _change(req, server, "update metadata", body["metadata"], replace=True)
    return json_response({"metadata": after})


def update(req: webob.Request, server_id: str, key: str) -> webob.Response:
    body = read_json(req)
    meta = body.get("meta") if isinstance(body, dict) else None
    if isinstance(meta, dict) and len(meta) > 1:
        raise exception.Invalid("Request body contains too many items")
    common.validate(schema.META_ITEM_BODY, body)
    if key not in body["meta"]:
        raise exception.Invalid("Request body and URI mismatch")
    server = _server(req, server_id, "update")
    _change(req, server, "update metadata", {key: body["meta"][key]}, replace=False)
    return json_response({"meta": {key: body["meta"][key]}})


def delete(req: webob.Request, server_id: str, key: str) -> webob.Response:
    server = _server(req, server_id, "delete")
    if key not in _items(server):
        raise exception.NotFound("Metadata item was not found")
    _change(req, server, "delete metadata", {key: None}, replace=False)
    return empty_response(204)
