"""/servers/{id}/os-instance-actions: what was done to a server, and how it went.

Actions and their events live with the server in its cell and travel with it
when it moves, so they are read from the cell the instance mapping names.
From 2.21 the history of a deleted server stays readable; from 2.58 the list
pages by request id, newest first, and can be windowed by ``updated_at``.
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.api.compute.microversion import APIVersion
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, json_response

_RULE = "os_compute_api:os-instance-actions:"

#: Query parameters Nova's schema accepts from 2.58 (and what 2.66 adds).
_QUERY_258 = ("limit", "marker", "changes-since")
_QUERY_266 = _QUERY_258 + ("changes-before",)


def _server(req: webob.Request, server_id: str) -> common.ServerRef:
    read_deleted = api_version(req).matches("2.21")
    return common.get_instance_or_404(context_of(req), server_id, read_deleted=read_deleted)


def _action_view(row: cm.InstanceAction, version: APIVersion) -> dict[str, Any]:
    body = {"action": row.action, "instance_uuid": row.instance_uuid,
            "request_id": row.request_id, "user_id": row.user_id,
            "project_id": row.project_id, "start_time": isotime(row.start_time),
            "message": row.message}
    if version.matches("2.58"):
        body["updated_at"] = isotime(row.updated_at)
    return body


#: The server view's obfuscated host, the same hash for the same project and host.
host_id = common.host_id


def _sort_key(row: cm.InstanceAction) -> tuple:
    return (row.created_at, row.id)


def _all_actions(server: common.ServerRef) -> list[cm.InstanceAction]:
    """Every live action of the server, newest first (created_at, then id)."""
    with cell_session(server.cell) as s:
        return list(s.scalars(select(cm.InstanceAction).where(
            cm.InstanceAction.instance_uuid == server.uuid, cm.InstanceAction.deleted == 0)
            .order_by(cm.InstanceAction.created_at.desc(), cm.InstanceAction.id.desc())))


def _page(req: webob.Request, rows: list[cm.InstanceAction]) -> list[cm.InstanceAction]:
    """2.58 paging: the window filters, the marker (a request id) need not pass it."""
    version = api_version(req)
    common.reject_unknown_query(req, _QUERY_266 if version.matches("2.66") else _QUERY_258)
    since, before = common.changes_window(req, with_before=version.matches("2.66"))
    common.single_query(req, "limit")
    common.single_query(req, "marker")
    limit, marker = common.limit_and_marker(req)
    found = [r for r in rows if common.in_window(r.updated_at, since, before)]
    if marker is not None:
        # rows are newest first, so the first match is the action Nova would pick
        anchor = next((r for r in rows if r.request_id == marker), None)
        if anchor is None:
            raise exception.Invalid(f"Marker {marker} could not be found.")
        found = [r for r in found if _sort_key(r) < _sort_key(anchor)]
    return found[:limit]


def index(req: webob.Request, server_id: str) -> webob.Response:
    version = api_version(req)
    server = _server(req, server_id)
    policy.authorize(context_of(req), _RULE + "list", {"project_id": server.project_id})
    rows = _all_actions(server)
    if not version.matches("2.58"):
        return json_response({"instanceActions": [_action_view(r, version) for r in rows]})
    actions = [_action_view(r, version) for r in _page(req, rows)]
    body: dict[str, Any] = {"instanceActions": actions}
    links = common.collection_links(req, actions, f"servers/{server.uuid}/os-instance-actions",
                                    "request_id")
    if links:
        body["links"] = links
    return json_response(body)


def _event_view(row: cm.InstanceActionEvent, version: APIVersion, project_id: str, *,
                privileged: bool, details: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"event": row.event, "start_time": isotime(row.start_time),
                            "finish_time": isotime(row.finish_time), "result": row.result}
    if privileged:
        body["traceback"] = row.traceback
    if version.matches("2.62"):
        if privileged:
            body["host"] = row.host
        body["hostId"] = host_id(project_id, row.host)
    if details:
        body["details"] = row.details
    return body


def show(req: webob.Request, server_id: str, request_id: str) -> webob.Response:
    ctx = context_of(req)
    version = api_version(req)
    server = _server(req, server_id)
    target = {"project_id": server.project_id}
    policy.authorize(ctx, _RULE + "show", target)
    # Below 2.51 events are shown only to whom the events rule admits (admins by
    # default); from 2.51 to anyone who may see the action. The traceback, and from
    # 2.62 the host, still only to the former; from 2.84 an event's ``details`` to
    # whom the events:details rule admits.
    privileged = policy.check(ctx, _RULE + "events", target)
    show_events = privileged or version.matches("2.51")
    details = show_events and version.matches("2.84") and policy.check(
        ctx, _RULE + "events:details", target)
    with cell_session(server.cell) as s:
        row = s.scalar(select(cm.InstanceAction).where(
            cm.InstanceAction.instance_uuid == server.uuid,
            cm.InstanceAction.request_id == request_id, cm.InstanceAction.deleted == 0)
            .order_by(cm.InstanceAction.created_at.desc(), cm.InstanceAction.id.desc())
            .limit(1))
        if row is None:
            raise exception.NotFound(f"Action {request_id} not found")
        action = _action_view(row, version)
        if show_events:
            # Events recorded by periodic work carry no project: hash with the server's.
            project_id = row.project_id or server.project_id
            events = s.scalars(select(cm.InstanceActionEvent).where(
                cm.InstanceActionEvent.action_id == row.id,
                cm.InstanceActionEvent.deleted == 0)
                .order_by(cm.InstanceActionEvent.created_at.desc(),
                          cm.InstanceActionEvent.id.desc())).all()
            action["events"] = [_event_view(e, version, project_id, privileged=privileged,
                                            details=details) for e in events]
    return json_response({"instanceAction": action})
