"""/v3/attachments (3.27+): the attach flow Nova uses, and os-complete (3.44).

The connector's ``host`` decides whether connection info is handed out: only
to a host whose cell reaches the volume's backend (else a 400 naming the
backend and the cell, and nothing is written).
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import common, microversion
from transcell.api.volume.access import authorize
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response

CREATE_KEYS = {"volume_uuid", "instance_uuid", "connector", "mode"}
SUMMARY_KEYS = ("id", "status", "instance", "volume_id")


def _visible_volume(service: VolumeService, req: webob.Request, volume_id: str,
                    action: str) -> dict[str, Any]:
    ctx = context_of(req)
    volume = service.get(ctx, volume_id)
    authorize(ctx, action, volume)
    return volume


def _load(service: VolumeService, req: webob.Request, attachment_id: str, action: str
          ) -> dict[str, Any]:
    microversion.require(req, microversion.ATTACHMENTS)
    common.url_project(req)
    common.check_uuid(attachment_id, "attachment id",
                      vexc.VolumeAttachmentNotFound(attachment_id=attachment_id))
    attachment = service.attachment_get(context_of(req), attachment_id)
    _visible_volume(service, req, attachment["volume_id"], action)
    return attachment


def _connector(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise vexc.InvalidInput(reason="connector must be an object")
    if not isinstance(value.get("host"), str) or not value["host"]:
        raise vexc.InvalidInput(reason="connector must name its host")
    return value


def view(attachment: dict[str, Any]) -> dict[str, Any]:
    return {key: attachment[key] for key in ("id", "status", "instance", "volume_id",
                                             "attached_at", "detached_at", "attach_mode",
                                             "connection_info")}


def create(service: VolumeService, req: webob.Request) -> webob.Response:
    microversion.require(req, microversion.ATTACHMENTS)
    common.url_project(req)
    body = common.body_of(req, "attachment")
    unknown = sorted(set(body) - CREATE_KEYS)
    if unknown:
        raise vexc.InvalidInput(reason=f"Additional properties are not allowed "
                                       f"({', '.join(unknown)})")
    volume_id = common.check_uuid(body.get("volume_uuid"), "volume_uuid")
    instance = common.check_uuid(body.get("instance_uuid"), "instance_uuid")
    connector = _connector(body.get("connector"))
    mode = body.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise vexc.InvalidInput(reason="mode must be rw or ro")
    _visible_volume(service, req, volume_id, "volume:attachment_create")
    made = service.attachment_create(context_of(req), volume_id, instance,
                                     connector=connector, mode=mode)
    return json_response({"attachment": view(made)})


def update(service: VolumeService, req: webob.Request, attachment_id: str
           ) -> webob.Response:
    attachment = _load(service, req, attachment_id, "volume:attachment_update")
    body = common.body_of(req, "attachment")
    unknown = sorted(set(body) - {"connector"})
    if unknown or "connector" not in body:
        raise vexc.InvalidInput(reason="An attachment update takes only a connector.")
    connector = _connector(body["connector"])
    if connector is None:
        raise vexc.InvalidInput(reason="connector must be an object naming its host")
    made = service.attachment_update(context_of(req), attachment["id"], connector)
    return json_response({"attachment": view(made)})


def action(service: VolumeService, req: webob.Request, attachment_id: str
           ) -> webob.Response:
    attachment = _load(service, req, attachment_id, "volume:attachment_complete")
    name, _value = common.action_of(req, {"os-complete"})
    microversion.require(req, microversion.ATTACHMENT_COMPLETE)
    if name == "os-complete":
        service.attachment_complete(context_of(req), attachment["id"])
    return empty_response(204)


def delete(service: VolumeService, req: webob.Request, attachment_id: str
           ) -> webob.Response:
    attachment = _load(service, req, attachment_id, "volume:attachment_delete")
    left = service.attachment_delete(context_of(req), attachment["id"])
    return json_response({"attachments": [view(item) for item in left]})


def show(service: VolumeService, req: webob.Request, attachment_id: str) -> webob.Response:
    attachment = _load(service, req, attachment_id, "volume:attachment_get")
    return json_response({"attachment": view(attachment)})


def _listing(service: VolumeService, req: webob.Request, detailed: bool) -> webob.Response:
    microversion.require(req, microversion.ATTACHMENTS)
    common.url_project(req)
    ctx = context_of(req)
    authorize(ctx, "volume:attachment_get")
    all_projects = common.boolean(req.GET.get("all_tenants", "false"), "all_tenants")
    if all_projects:
        authorize(ctx, "volume:get_all_tenants")
    items = service.attachment_list(ctx, volume_id=req.GET.get("volume_id"),
                                    instance_id=req.GET.get("instance_id"),
                                    all_projects=all_projects)
    page, links = common.listed(req, "attachments", items, {"status"},
                                handled={"volume_id", "instance_id"})
    shown = [view(item) if detailed else {k: item[k] for k in SUMMARY_KEYS}
             for item in page]
    body: dict[str, Any] = {"attachments": shown}
    if links:
        body["attachments_links"] = links
    return json_response(body)


def index(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=False)


def detail(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=True)
