"""How compute hosts and conductors reach the volume service over its REST API.

A compute host or conductor of the distributed layout never opens the volume
database: it calls the Block storage API with the service user's Keystone
token, as Nova's cinder client does. ``VolumeHTTPClient`` answers exactly like
the in-process ``VolumeClient``: the same methods, the same bodies and the
same transcell exceptions, rebuilt from the ``X-Transcell-Error-Type`` header
an error response carries beside Cinder's envelope.

The service user (roles admin and service) sees every project's volumes, so
what the service checks against the caller's context — another project's
volume is "not found" — is checked here against ``ctx`` before acting. A
volume created for a user (a server booted onto a new volume) names its owner
with ``transcell:project_id``, which only administrators and services may set.
The move steps travel through the ``os-transcell-moves`` extension.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from transcell import exception, service_auth
from transcell.context import RequestContext
from transcell.volume import exceptions as vexc

LOG = logging.getLogger(__name__)

#: the microversion every call asks for (attachments complete at 3.44)
VERSION = "volume 3.44"
MOVES = "/v3/os-transcell-moves/volumes"

_BY_STATUS: dict[int, type[exception.TranscellError]] = {
    400: exception.Invalid,
    401: exception.NotAuthenticated,
    403: exception.Forbidden,
    404: exception.NotFound,
    409: exception.Conflict,
}


class VolumeServiceUnavailable(exception.TranscellError):
    code = 503
    msg_fmt = "The volume service at %(endpoint)s cannot be reached: %(reason)s"


def error_from(status: int, error_type: str | None, body: Any, text: str = ""
               ) -> exception.TranscellError:
    """The exception an error response stands for, with the server's message."""
    message = text or f"HTTP {status}"
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict) and inner.get("message"):
            message = inner["message"]
    cls = vexc.by_name(error_type) or _BY_STATUS.get(status, exception.TranscellError)
    err = cls.__new__(cls)
    exception.TranscellError.__init__(err, message)
    if cls is exception.TranscellError:
        err.code = status  # type: ignore[misc]
    return err


def _id(value: Any, not_found: exception.NotFound) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise not_found
    return quote(value, safe="")


class VolumeHTTPClient:
    """``services.volume`` over the Block storage API with a keystoneauth session.

    ``session`` is a ``keystoneauth1.session.Session`` of a service user with
    the admin and service roles; ``endpoint`` the API's root, e.g.
    ``http://127.0.0.1:8774/volume``.
    """

    def __init__(self, session: Any, endpoint: str):
        self.session = session
        self.endpoint = endpoint.rstrip("/")

    # --- plumbing ------------------------------------------------------------
    def _call(self, ctx: RequestContext, method: str, path: str, body: Any = None,
              params: dict[str, str] | None = None) -> Any:
        status, data, resp = service_auth.send_json(
            self.session, "volume", self.endpoint, ctx, method, path, body=body,
            params=params, headers={"OpenStack-API-Version": VERSION},
            unavailable=VolumeServiceUnavailable)
        if status >= 400:
            raise error_from(status, resp.headers.get("X-Transcell-Error-Type"), data,
                             resp.text)
        return data

    @staticmethod
    def _check_visible(ctx: RequestContext, volume: dict[str, Any], volume_id: str) -> None:
        if not ctx.is_admin and volume.get("os-vol-tenant-attr:tenant_id") != ctx.project_id:
            raise vexc.VolumeNotFound(volume_id=volume_id)

    @staticmethod
    def _volume(body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        body.pop("links", None)
        body.setdefault("attach_status",
                        "attached" if body.get("attachments") else "detached")
        return body

    # --- volumes -------------------------------------------------------------
    def get(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        path = f"/v3/volumes/{_id(volume_id, vexc.VolumeNotFound(volume_id=volume_id))}"
        volume = self._volume(self._call(ctx, "GET", path)["volume"])
        self._check_visible(ctx, volume, volume_id)
        return volume

    def list(self, ctx: RequestContext, all_projects: bool = False,
             project_id: str | None = None) -> list[dict[str, Any]]:
        params = {"all_tenants": "1"}
        if ctx.is_admin and project_id:
            params["project_id"] = project_id
        elif not (ctx.is_admin and all_projects):
            params["project_id"] = ctx.project_id or ""
        found = self._call(ctx, "GET", "/v3/volumes/detail", params=params)["volumes"]
        return [self._volume(item) for item in found]

    def create(self, ctx: RequestContext, *, size: int | None, name: str | None = None,
               description: str | None = None, volume_type: str | None = None,
               image_id: str | None = None, source_volid: str | None = None,
               availability_zone: str | None = None, metadata: dict[str, str] | None = None,
               bootable: bool | None = None, multiattach: bool = False,
               project_id: str | None = None, user_id: str | None = None,
               snapshot_id: str | None = None) -> dict[str, Any]:
        if source_volid:
            self.get(ctx, source_volid)  # another project's volume is not found
        body: dict[str, Any] = {
            "size": size, "name": name, "description": description,
            "volume_type": volume_type, "imageRef": image_id, "source_volid": source_volid,
            "availability_zone": availability_zone, "metadata": metadata,
            "multiattach": multiattach, "snapshot_id": snapshot_id,
            "transcell:project_id": project_id or ctx.project_id,
            "transcell:user_id": user_id or ctx.user_id,
        }
        body = {key: value for key, value in body.items() if value is not None}
        made = self._call(ctx, "POST", "/v3/volumes", {"volume": body})["volume"]
        if bootable is not None and (made["bootable"] == "true") != bootable:
            self._action(ctx, made["id"], {"os-set_bootable": {"bootable": bootable}})
        # POST answers without the attributes show adds (owner, host, image metadata)
        return self.get(ctx, made["id"])

    # --- snapshots -----------------------------------------------------------
    @staticmethod
    def _snapshot_path(snapshot_id: str) -> str:
        safe = _id(snapshot_id, vexc.SnapshotNotFound(snapshot_id=snapshot_id))
        return f"/v3/snapshots/{safe}"

    def create_snapshot(self, ctx: RequestContext, volume_id: str, *,
                        name: str | None = None, description: str | None = None,
                        metadata: dict[str, str] | None = None, force: bool = False
                        ) -> dict[str, Any]:
        self.get(ctx, volume_id)  # another project's volume is not found
        body = {key: value for key, value in {
            "volume_id": volume_id, "name": name, "description": description,
            "metadata": metadata, "force": force}.items() if value is not None}
        made = self._call(ctx, "POST", "/v3/snapshots", {"snapshot": body})["snapshot"]
        return self.get_snapshot(ctx, made["id"])

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
        found = self._call(ctx, "GET", self._snapshot_path(snapshot_id))["snapshot"]
        found.pop("links", None)
        owner = found.get("os-extended-snapshot-attributes:project_id")
        if not ctx.is_admin and owner != ctx.project_id:
            raise vexc.SnapshotNotFound(snapshot_id=snapshot_id)
        return found

    def list_snapshots(self, ctx: RequestContext, all_projects: bool = False,
                       project_id: str | None = None, volume_id: str | None = None
                       ) -> list[dict[str, Any]]:
        params = {"all_tenants": "1"}
        if ctx.is_admin and project_id:
            params["project_id"] = project_id
        elif not (ctx.is_admin and all_projects):
            params["project_id"] = ctx.project_id or ""
        if volume_id:
            params["volume_id"] = volume_id
        found = self._call(ctx, "GET", "/v3/snapshots/detail", params=params)["snapshots"]
        for item in found:
            item.pop("links", None)
        return found

    def delete_snapshot(self, ctx: RequestContext, snapshot_id: str) -> None:
        self.get_snapshot(ctx, snapshot_id)
        self._call(ctx, "DELETE", self._snapshot_path(snapshot_id))

    def _action(self, ctx: RequestContext, volume_id: str, body: dict[str, Any]) -> Any:
        path = f"/v3/volumes/{_id(volume_id, vexc.VolumeNotFound(volume_id=volume_id))}"
        return self._call(ctx, "POST", f"{path}/action", body)

    def delete(self, ctx: RequestContext, volume_id: str) -> None:
        self.get(ctx, volume_id)
        self._call(ctx, "DELETE", f"/v3/volumes/{quote(volume_id, safe='')}")

    def extend(self, ctx: RequestContext, volume_id: str, new_size: int,
               allow_in_use: bool = True) -> dict[str, Any]:
        self.get(ctx, volume_id)
        self._action(ctx, volume_id, {"os-extend": {"new_size": new_size}})
        return self.get(ctx, volume_id)

    def update(self, ctx: RequestContext, volume_id: str, changes: dict[str, Any]
               ) -> dict[str, Any]:
        self.get(ctx, volume_id)
        changes = dict(changes)
        if "bootable" in changes:
            self._action(ctx, volume_id, {"os-set_bootable": {
                "bootable": changes.pop("bootable")}})
        if "readonly" in changes:
            self._action(ctx, volume_id, {"os-update_readonly_flag": {
                "readonly": changes.pop("readonly")}})
        if changes:
            self._call(ctx, "PUT", f"/v3/volumes/{quote(volume_id, safe='')}",
                       {"volume": changes})
        return self.get(ctx, volume_id)

    def migrate(self, ctx: RequestContext, volume_id: str, host: str,
                force_host_copy: bool = False, lock_volume: bool = False) -> None:
        self.get(ctx, volume_id)
        self._action(ctx, volume_id, {"os-migrate_volume": {
            "host": host, "force_host_copy": force_host_copy, "lock_volume": lock_volume}})

    def reset_status(self, ctx: RequestContext, volume_id: str, status: str | None = None,
                     attach_status: str | None = None,
                     migration_status: str | None = None) -> dict[str, Any]:
        body = {key: value for key, value in (("status", status),
                                              ("attach_status", attach_status),
                                              ("migration_status", migration_status))
                if value is not None}
        self._action(ctx, volume_id, {"os-reset_status": body})
        return self.get(ctx, volume_id)

    # --- attachments ---------------------------------------------------------
    def _attachment_path(self, attachment_id: str) -> str:
        return "/v3/attachments/" + _id(
            attachment_id, vexc.VolumeAttachmentNotFound(attachment_id=attachment_id))

    def attachment_get(self, ctx: RequestContext, attachment_id: str) -> dict[str, Any]:
        found = self._call(ctx, "GET", self._attachment_path(attachment_id))["attachment"]
        try:
            self.get(ctx, found["volume_id"])
        except vexc.VolumeNotFound:
            raise vexc.VolumeAttachmentNotFound(attachment_id=attachment_id) from None
        return found

    def attachment_create(self, ctx: RequestContext, volume_id: str, instance_uuid: str,
                          connector: dict[str, Any] | None = None, mode: str = "rw"
                          ) -> dict[str, Any]:
        self.get(ctx, volume_id)
        body: dict[str, Any] = {"volume_uuid": volume_id, "instance_uuid": instance_uuid,
                                "mode": mode}
        if connector is not None:
            body["connector"] = connector
        return self._call(ctx, "POST", "/v3/attachments", {"attachment": body})["attachment"]

    def attachment_update(self, ctx: RequestContext, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        self.attachment_get(ctx, attachment_id)
        return self._call(ctx, "PUT", self._attachment_path(attachment_id),
                          {"attachment": {"connector": connector}})["attachment"]

    def attachment_complete(self, ctx: RequestContext, attachment_id: str) -> None:
        self.attachment_get(ctx, attachment_id)
        self._call(ctx, "POST", self._attachment_path(attachment_id) + "/action",
                   {"os-complete": None})

    def attachment_delete(self, ctx: RequestContext, attachment_id: str) -> list[dict]:
        self.attachment_get(ctx, attachment_id)
        return self._call(ctx, "DELETE", self._attachment_path(attachment_id)
                          )["attachments"]

    def attachment_list(self, ctx: RequestContext, volume_id: str | None = None,
                        instance_id: str | None = None, all_projects: bool = False
                        ) -> list[dict[str, Any]]:
        params = {key: value for key, value in (("volume_id", volume_id),
                                                ("instance_id", instance_id)) if value}
        if all_projects and ctx.is_admin:
            params["all_tenants"] = "1"
        found = self._call(ctx, "GET", "/v3/attachments/detail", params=params)
        if not ctx.is_admin:
            return [item for item in found["attachments"]
                    if self._visible_attachment(ctx, item)]
        return found["attachments"]

    def _visible_attachment(self, ctx: RequestContext, item: dict[str, Any]) -> bool:
        try:
            self.get(ctx, item["volume_id"])
        except vexc.VolumeNotFound:
            return False
        return True

    # --- moves (os-transcell-moves) -----------------------------------------
    def _moves(self, volume_id: str) -> str:
        return f"{MOVES}/{_id(volume_id, vexc.VolumeNotFound(volume_id=volume_id))}"

    def backend_info(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        return self._call(ctx, "GET", f"{self._moves(volume_id)}/backend")["backend"]

    def plan_move(self, ctx: RequestContext, volume_id: str, target_cell_name: str
                  ) -> dict[str, Any]:
        return self._call(ctx, "GET", f"{self._moves(volume_id)}/plan",
                          params={"target_cell": target_cell_name})["plan"]

    def move_copy(self, ctx: RequestContext, volume_id: str, move_id: str,
                  to_backend: str) -> dict[str, Any]:
        return self._call(ctx, "POST", f"{self._moves(volume_id)}/copy", {"move": {
            "move_id": move_id, "to_backend": to_backend}})["copy"]

    def move_switch(self, ctx: RequestContext, volume_id: str, move_id: str
                    ) -> dict[str, Any]:
        return self._call(ctx, "POST", f"{self._moves(volume_id)}/switch",
                          {"move": {"move_id": move_id}})["volume"]

    def move_confirm(self, ctx: RequestContext, volume_id: str, move_id: str) -> None:
        self._call(ctx, "POST", f"{self._moves(volume_id)}/confirm",
                   {"move": {"move_id": move_id}})

    def move_revert(self, ctx: RequestContext, volume_id: str, move_id: str) -> None:
        self._call(ctx, "POST", f"{self._moves(volume_id)}/revert",
                   {"move": {"move_id": move_id}})

    def move_copies(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return self._call(ctx, "GET", "/v3/os-transcell-moves/copies")["copies"]
