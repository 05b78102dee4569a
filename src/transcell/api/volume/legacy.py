"""The attach actions of Cinder before 3.27, on POST /v3/volumes/{volume_id}/action.

os-reserve, os-unreserve, os-attach, os-begin_detaching, os-roll_detaching,
os-detach, os-initialize_connection and os-terminate_connection, and the
administrators' os-force_detach and os-force_delete, with Cinder's rule names;
wrong states are Cinder's 400.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import common
from transcell.api.volume.volumes import load
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response


def _object(value: Any, action: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise vexc.InvalidInput(reason=f"{action} takes an object.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise vexc.InvalidInput(reason=f"{action} does not take {', '.join(unknown)}")
    return value


def _simple(method: str, rule: str, action: str):
    def handler(service: VolumeService, req: webob.Request, volume_id: str, value: Any
                ) -> webob.Response:
        _object(value, action, set())
        volume = load(service, req, volume_id, rule)
        getattr(service, method)(context_of(req), volume["id"])
        return empty_response(202)
    return handler


def _attach(service: VolumeService, req: webob.Request, volume_id: str, value: Any
            ) -> webob.Response:
    body = _object(value, "os-attach", {"instance_uuid", "mountpoint", "mode", "host_name"})
    mountpoint = common.text(body.get("mountpoint"), "mountpoint")
    if not mountpoint:
        raise vexc.InvalidInput(reason="os-attach needs a mountpoint")
    instance = body.get("instance_uuid")
    if instance is not None:
        common.check_uuid(instance, "instance_uuid")
    mode = body.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise vexc.InvalidInput(reason="mode must be rw or ro")
    host = common.text(body.get("host_name"), "host_name")
    volume = load(service, req, volume_id, "volume:attach")
    service.attach(context_of(req), volume["id"], instance, mountpoint, mode=mode,
                   host_name=host)
    return empty_response(202)


def _detach(service: VolumeService, req: webob.Request, volume_id: str, value: Any
            ) -> webob.Response:
    body = _object(value, "os-detach", {"attachment_id"})
    attachment_id = body.get("attachment_id")
    if attachment_id is not None:
        common.check_uuid(attachment_id, "attachment_id")
    volume = load(service, req, volume_id, "volume:detach")
    service.detach(context_of(req), volume["id"], attachment_id)
    return empty_response(202)


def _force_detach(service: VolumeService, req: webob.Request, volume_id: str, value: Any
                  ) -> webob.Response:
    body = _object(value, "os-force_detach", {"attachment_id", "connector"})
    attachment_id = body.get("attachment_id")
    if attachment_id is not None:
        common.check_uuid(attachment_id, "attachment_id")
    volume = load(service, req, volume_id,
                  "volume_extension:volume_admin_actions:force_detach")
    service.detach(context_of(req), volume["id"], attachment_id, force=True)
    return empty_response(202)


def _force_delete(service: VolumeService, req: webob.Request, volume_id: str, value: Any
                  ) -> webob.Response:
    _object(value, "os-force_delete", set())
    volume = load(service, req, volume_id,
                  "volume_extension:volume_admin_actions:force_delete")
    service.delete(context_of(req), volume["id"], force=True)
    return empty_response(202)


def _initialize(service: VolumeService, req: webob.Request, volume_id: str, value: Any
                ) -> webob.Response:
    body = _object(value, "os-initialize_connection", {"connector"})
    connector = body.get("connector")
    if not isinstance(connector, dict):
        raise vexc.InvalidInput(reason="os-initialize_connection needs a connector")
    volume = load(service, req, volume_id, "volume_extension:volume_actions:"
                                           "initialize_connection")
    info = service.initialize_connection(context_of(req), volume["id"], connector)
    return json_response({"connection_info": info})


def _terminate(service: VolumeService, req: webob.Request, volume_id: str, value: Any
               ) -> webob.Response:
    _object(value, "os-terminate_connection", {"connector"})
    load(service, req, volume_id, "volume_extension:volume_actions:terminate_connection")
    return empty_response(202)


HANDLERS = {
    "os-reserve": _simple("reserve", "volume:reserve_volume", "os-reserve"),
    "os-unreserve": _simple("unreserve", "volume:unreserve_volume", "os-unreserve"),
    "os-begin_detaching": _simple("begin_detaching", "volume:begin_detaching",
                                  "os-begin_detaching"),
    "os-roll_detaching": _simple("roll_detaching", "volume:roll_detaching",
                                 "os-roll_detaching"),
    "os-attach": _attach,
    "os-detach": _detach,
    "os-force_detach": _force_detach,
    "os-force_delete": _force_delete,
    "os-initialize_connection": _initialize,
    "os-terminate_connection": _terminate,
}
