"""/v3/os-transcell-moves: a volume's migration steps for a server's move (transcell extension).

What the conductor and compute hosts call through ``VolumeHTTPClient`` when
the volume service runs elsewhere: plan, copy, switch, confirm, revert, the
volume's backend, and the copies moves keep. Administrators and the service
role only (``volume:transcell:moves``); every step is safe to repeat.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import common
from transcell.api.volume.access import authorize
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response

RULE = "volume:transcell:moves"


def _checked(req: webob.Request, volume_id: str | None = None) -> None:
    authorize(context_of(req), RULE)
    if volume_id is not None:
        common.check_uuid(volume_id, "volume id", vexc.VolumeNotFound(volume_id=volume_id))


def _move_id(body: dict[str, Any]) -> str:
    move_id = body.get("move_id")
    if not isinstance(move_id, str) or not 0 < len(move_id) <= 36:
        raise vexc.InvalidInput(reason="move_id must be a string of 1 to 36 characters")
    return move_id


def _body(req: webob.Request) -> dict[str, Any]:
    return common.body_of(req, "move")


def backend(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    return json_response({"backend": service.backend_info(context_of(req), volume_id)})


def plan(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    cell = req.GET.get("target_cell")
    if not cell:
        raise vexc.InvalidInput(reason="target_cell is required")
    return json_response({"plan": service.plan_move(context_of(req), volume_id, cell)})


def copy(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    body = _body(req)
    to_backend = body.get("to_backend")
    if not isinstance(to_backend, str) or not to_backend:
        raise vexc.InvalidInput(reason="to_backend is required")
    result = service.move_copy(context_of(req), volume_id, _move_id(body), to_backend)
    return json_response({"copy": result})


def switch(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    volume = service.move_switch(context_of(req), volume_id, _move_id(_body(req)))
    return json_response({"volume": volume})


def confirm(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    service.move_confirm(context_of(req), volume_id, _move_id(_body(req)))
    return empty_response(204)


def revert(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    _checked(req, volume_id)
    service.move_revert(context_of(req), volume_id, _move_id(_body(req)))
    return empty_response(204)


def copies(service: VolumeService, req: webob.Request) -> webob.Response:
    _checked(req)
    return json_response({"copies": service.move_copies(context_of(req))})
