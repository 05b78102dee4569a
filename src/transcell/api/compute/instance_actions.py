"""/servers/{id}/os-instance-actions: what was done to a server, and how it went.

Actions and their events live with the server in its cell and travel with it
when it moves, so they are read from the cell the instance mapping names.
From 2.21 the history of a deleted server stays readable.
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, json_response

_RULE = "os_compute_api:os-instance-actions:"


def _server(req: webob.Request, server_id: str) -> common.ServerRef:
    read_deleted = api_version(req).matches("2.21")
    return common.get_instance_or_404(context_of(req), server_id, read_deleted=read_deleted)


def _action_view(row: cm.InstanceAction) -> dict[str, Any]:
    return {"action": row.action, "instance_uuid": row.instance_uuid,
            "request_id": row.request_id, "user_id": row.user_id,
            "project_id": row.project_id, "start_time": isotime(row.start_time),
            "message": row.message}


def _event_view(row: cm.InstanceActionEvent, with_traceback: bool) -> dict[str, Any]:
    body = {"event": row.event, "start_time": isotime(row.start_time),
            "finish_time": isotime(row.finish_time), "result": row.result}
    if with_traceback:
        body["traceback"] = row.traceback
    return body


def index(req: webob.Request, server_id: str) -> webob.Response:
    server = _server(req, server_id)
    policy.authorize(context_of(req), _RULE + "list", {"project_id": server.project_id})
    with cell_session(server.cell) as s:
        rows = s.scalars(select(cm.InstanceAction).where(
            cm.InstanceAction.instance_uuid == server.uuid, cm.InstanceAction.deleted == 0)
            .order_by(cm.InstanceAction.created_at.desc(), cm.InstanceAction.id.desc())).all()
        actions = [_action_view(r) for r in rows]
    return json_response({"instanceActions": actions})


def show(req: webob.Request, server_id: str, request_id: str) -> webob.Response:
    ctx = context_of(req)
    server = _server(req, server_id)
    target = {"project_id": server.project_id}
    policy.authorize(ctx, _RULE + "show", target)
    # Below 2.51 events are shown only to whom the events rule admits (admins by
    # default); from 2.51 to anyone who may see the action, the traceback still
    # only to the former.
    show_traceback = policy.check(ctx, _RULE + "events", target)
    show_events = show_traceback or api_version(req).matches("2.51")
    with cell_session(server.cell) as s:
        row = s.scalar(select(cm.InstanceAction).where(
            cm.InstanceAction.instance_uuid == server.uuid,
            cm.InstanceAction.request_id == request_id, cm.InstanceAction.deleted == 0)
            .order_by(cm.InstanceAction.created_at.desc(), cm.InstanceAction.id.desc())
            .limit(1))
        if row is None:
            raise exception.NotFound(f"Action {request_id} not found")
        action = _action_view(row)
        if show_events:
            events = s.scalars(select(cm.InstanceActionEvent).where(
                cm.InstanceActionEvent.action_id == row.id,
                cm.InstanceActionEvent.deleted == 0)
                .order_by(cm.InstanceActionEvent.created_at.desc(),
                          cm.InstanceActionEvent.id.desc())).all()
            action["events"] = [_event_view(e, show_traceback) for e in events]
    return json_response({"instanceAction": action})
