"""POST /v3/volumes/{volume_id}/action: grow, migrate, upload, flags, reset.

Each action checks its whole body before the service is called, so a bad
request changes nothing; the service then moves the volume's status only
from the status it expects, so a racing request gets Cinder's 400.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import common, legacy, microversion
from transcell.api.volume.volumes import load
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response

ACTIONS = {"os-extend", "os-migrate_volume", "os-volume_upload_image", "os-set_bootable",
           "os-reset_status", "os-update_readonly_flag", *legacy.HANDLERS}
DISK_FORMATS = ("raw", "qcow2")
VISIBILITIES = ("public", "private", "shared", "community")


def _object(value: Any, action: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise vexc.InvalidInput(reason=f"{action} takes an object.")
    return value


def _only(body: dict[str, Any], allowed: set[str], action: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise vexc.InvalidInput(reason=f"{action} does not take {', '.join(unknown)}")


def action(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    name, value = common.action_of(req, ACTIONS)
    return HANDLERS[name](service, req, volume_id, value)


def _extend(service: VolumeService, req: webob.Request, volume_id: str, value: Any
            ) -> webob.Response:
    body = _object(value, "os-extend")
    _only(body, {"new_size"}, "os-extend")
    if "new_size" not in body:
        raise vexc.InvalidInput(reason="os-extend needs new_size")
    new_size = common.size(body["new_size"], "new_size")
    volume = load(service, req, volume_id, "volume:extend")
    in_use_ok = microversion.of(req).at_least(microversion.EXTEND_IN_USE)
    if volume["status"] == "in-use":
        if not in_use_ok:
            raise vexc.InvalidVolume(reason="Volume status must be 'available' to extend "
                                            "(an attached volume needs microversion "
                                            f"{microversion.EXTEND_IN_USE}).")
        load(service, req, volume_id, "volume:extend_attached_volume")
    service.extend(context_of(req), volume["id"], new_size, allow_in_use=in_use_ok)
    return empty_response(202)


def _migrate(service: VolumeService, req: webob.Request, volume_id: str, value: Any
             ) -> webob.Response:
    body = _object(value, "os-migrate_volume")
    _only(body, {"host", "force_host_copy", "lock_volume", "cluster"}, "os-migrate_volume")
    load(service, req, volume_id, "volume_extension:volume_admin_actions:migrate_volume")
    if body.get("cluster") is not None:
        raise vexc.InvalidInput(reason="cluster is not supported; name a host")
    host = body.get("host")
    if not isinstance(host, str) or not host:
        raise vexc.InvalidInput(reason="os-migrate_volume needs a host "
                                       "(transcell@BACKEND#BACKEND)")
    force = common.boolean(body.get("force_host_copy", False), "force_host_copy")
    lock = common.boolean(body.get("lock_volume", False), "lock_volume")
    service.migrate(context_of(req), volume_id, host, force_host_copy=force,
                    lock_volume=lock)
    return empty_response(202)


def _upload(service: VolumeService, req: webob.Request, volume_id: str, value: Any
            ) -> webob.Response:
    body = _object(value, "os-volume_upload_image")
    _only(body, {"image_name", "force", "disk_format", "container_format", "visibility",
                 "protected"}, "os-volume_upload_image")
    image_name = common.text(body.get("image_name"), "image_name")
    if not image_name:
        raise vexc.InvalidInput(reason="No image_name was specified in request.")
    disk_format = body.get("disk_format", "raw")
    if disk_format not in DISK_FORMATS:
        raise vexc.InvalidInput(reason=f"Invalid disk-format '{disk_format}' is specified. "
                                       f"Allowed disk-formats are {', '.join(DISK_FORMATS)}.")
    container_format = body.get("container_format", "bare")
    if container_format != "bare":
        raise vexc.InvalidInput(reason="Invalid container-format; only bare is allowed.")
    visibility = body.get("visibility", "private")
    if visibility not in VISIBILITIES:
        raise vexc.InvalidInput(reason=f"visibility must be one of {', '.join(VISIBILITIES)}")
    protected = common.boolean(body.get("protected", False), "protected")
    force = common.boolean(body.get("force", False), "force")
    load(service, req, volume_id, "volume_extension:volume_actions:upload_image")
    result = service.upload_to_image(context_of(req), volume_id, image_name=image_name,
                                     disk_format=disk_format,
                                     container_format=container_format,
                                     visibility=visibility, protected=protected, force=force)
    return json_response({"os-volume_upload_image": result}, status=202)


def _set_bootable(service: VolumeService, req: webob.Request, volume_id: str, value: Any
                  ) -> webob.Response:
    body = _object(value, "os-set_bootable")
    _only(body, {"bootable"}, "os-set_bootable")
    if "bootable" not in body:
        raise vexc.InvalidInput(reason="Must specify bootable in request.")
    bootable = common.boolean(body["bootable"], "bootable")
    load(service, req, volume_id, "volume_extension:volume_actions:set_bootable")
    service.update(context_of(req), volume_id, {"bootable": bootable})
    return empty_response(200)


def _readonly(service: VolumeService, req: webob.Request, volume_id: str, value: Any
              ) -> webob.Response:
    body = _object(value, "os-update_readonly_flag")
    _only(body, {"readonly"}, "os-update_readonly_flag")
    if "readonly" not in body:
        raise vexc.InvalidInput(reason="Must specify readonly in request.")
    readonly = common.boolean(body["readonly"], "readonly")
    load(service, req, volume_id, "volume:update_readonly_flag")
    service.update(context_of(req), volume_id, {"readonly": readonly})
    return empty_response(202)


def _reset(service: VolumeService, req: webob.Request, volume_id: str, value: Any
           ) -> webob.Response:
    body = _object(value, "os-reset_status")
    _only(body, {"status", "attach_status", "migration_status"}, "os-reset_status")
    load(service, req, volume_id, "volume_extension:volume_admin_actions:reset_status")
    for key in ("status", "attach_status", "migration_status"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise vexc.InvalidInput(reason=f"{key} must be a string")
    service.reset_status(context_of(req), volume_id, status=body.get("status"),
                         attach_status=body.get("attach_status"),
                         migration_status=body.get("migration_status"))
    return empty_response(202)


HANDLERS = {
    "os-extend": _extend,
    "os-migrate_volume": _migrate,
    "os-volume_upload_image": _upload,
    "os-set_bootable": _set_bootable,
    "os-update_readonly_flag": _readonly,
    "os-reset_status": _reset,
    **legacy.HANDLERS,
}
