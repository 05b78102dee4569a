"""Instance actions and their events: the history an operator reads with
``openstack server event list``.

An action is recorded in the cell that holds the server when the request
arrives; events are appended by whichever service does the work.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from transcell.cell import Cell
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.exception import TranscellError

CREATE = "create"
DELETE = "delete"
STOP = "stop"
START = "start"
RESIZE = "resize"
MIGRATE = "migrate"
CONFIRM_RESIZE = "confirmResize"
REVERT_RESIZE = "revertResize"


def record_action(ctx: RequestContext, cell: Cell, instance_uuid: str, action: str) -> None:
    """Start an action; its ``updated_at`` then follows its events (the 2.58 window)."""
    now = utcnow()
    with cell_session(cell) as s:
        s.add(cm.InstanceAction(action=action, instance_uuid=instance_uuid,
                                request_id=ctx.request_id, user_id=ctx.user_id,
                                project_id=ctx.project_id, start_time=now, updated_at=now))


def event_details(error: BaseException) -> str:
    """What an event's ``details`` says of a failure (shown from 2.84).

    transcell's own errors carry a message written for users; anything else is
    named by its class only, since its text may describe the host.
    """
    if isinstance(error, TranscellError):
        message = error.message
    else:
        message = type(error).__name__
    return message[:255]


def _action(s, instance_uuid: str, request_id: str) -> cm.InstanceAction | None:
    return s.scalar(select(cm.InstanceAction).where(
        cm.InstanceAction.instance_uuid == instance_uuid,
        cm.InstanceAction.request_id == request_id).order_by(cm.InstanceAction.id.desc()))


def start_event(ctx: RequestContext, cell: Cell, instance_uuid: str, event: str,
                host: str | None = None) -> None:
    with cell_session(cell) as s:
        action = _action(s, instance_uuid, ctx.request_id)
        if action is None:
            return
        now = utcnow()
        s.add(cm.InstanceActionEvent(action_id=action.id, event=event, start_time=now,
                                     host=host))
        action.updated_at = now


def finish_event(ctx: RequestContext, cell: Cell, instance_uuid: str, event: str,
                 error: BaseException | None = None, details: str | None = None) -> None:
    """End the newest ``event`` of the request's action; ``details`` says what it did
    (shown from 2.84 like an error's), for events whose outcome users need to read."""
    with cell_session(cell) as s:
        action = _action(s, instance_uuid, ctx.request_id)
        if action is None:
            return
        row = s.scalar(select(cm.InstanceActionEvent).where(
            cm.InstanceActionEvent.action_id == action.id,
            cm.InstanceActionEvent.event == event).order_by(cm.InstanceActionEvent.id.desc()))
        if row is None:
            return
        row.finish_time = utcnow()
        row.result = "Success" if error is None else "Error"
        if details is not None:
            row.details = details
        if error is not None:
            row.traceback = "".join(tb.format_exception(error))
            row.details = event_details(error)
            action.message = "Error"
        action.updated_at = utcnow()


@contextmanager
def event(ctx: RequestContext, cell: Cell, instance_uuid: str, name: str,
          host: str | None = None) -> Iterator[dict[str, str]]:
    """Wrap a unit of work in an action event that ends in Success or Error; what the
    work puts under ``"details"`` in the dict it is given becomes the event's details."""
    start_event(ctx, cell, instance_uuid, name, host)
    said: dict[str, str] = {}
    try:
        yield said
    except BaseException as exc:
        finish_event(ctx, cell, instance_uuid, name, exc)
        raise
    finish_event(ctx, cell, instance_uuid, name, details=said.get("details"))
