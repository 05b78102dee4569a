"""/v3/snapshots: create, list (summary and detail), show, update, delete.

Cinder's bodies and rules: ``force`` lets a snapshot be taken of an in-use
volume (without it such a volume is a 400), the project and progress are
extended attributes policy may hide, and every check runs before the
service changes anything.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import common, microversion
from transcell.api.volume.access import allowed, authorize
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response

FILTERS = {"name", "status", "volume_id", "metadata", "display_name"}
CREATE_KEYS = {"volume_id", "force", "name", "description", "display_name",
               "display_description", "metadata"}
UPDATE_KEYS = {"name", "description", "display_name", "display_description"}
EXTENDED = ("os-extended-snapshot-attributes:project_id",
            "os-extended-snapshot-attributes:progress")
EXTENDED_RULE = "volume_extension:extended_snapshot_attributes"


def _target(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot in the shape ``access.target`` reads a volume's owner from."""
    return {"os-vol-tenant-attr:tenant_id":
            snapshot["os-extended-snapshot-attributes:project_id"],
            "user_id": snapshot.get("user_id")}


def _view(req: webob.Request, snapshot: dict[str, Any], extended: bool) -> dict[str, Any]:
    """Cinder's body (no links); the owner from 3.41, the extended attributes in
    show and detail when policy lets the caller see them."""
    body = {key: value for key, value in snapshot.items() if key not in EXTENDED}
    if not microversion.of(req).at_least(microversion.SNAPSHOT_USER_ID):
        body.pop("user_id", None)
    if extended:
        if allowed(context_of(req), EXTENDED_RULE, _target(snapshot)):
            body.update({key: snapshot[key] for key in EXTENDED})
    return body


def load(service: VolumeService, req: webob.Request, snapshot_id: str, action: str
         ) -> dict[str, Any]:
    """The snapshot, 404 if the caller cannot see it, 403 if it may not ``action`` it."""
    ctx = context_of(req)
    common.url_project(req)
    common.check_uuid(snapshot_id, "snapshot id",
                      vexc.SnapshotNotFound(snapshot_id=snapshot_id))
    snapshot = service.get_snapshot(ctx, snapshot_id)
    authorize(ctx, action, _target(snapshot))
    return snapshot


def _listing(service: VolumeService, req: webob.Request, detailed: bool) -> webob.Response:
    ctx = context_of(req)
    common.url_project(req)
    authorize(ctx, "volume:get_all_snapshots")
    all_projects = common.boolean(req.GET.get("all_tenants", "false"), "all_tenants")
    if all_projects or req.GET.get("project_id"):
        authorize(ctx, "volume:get_all_tenants")
    items = service.list_snapshots(ctx, all_projects=all_projects,
                                   project_id=req.GET.get("project_id"))
    page, links = common.listed(req, "snapshots", items, FILTERS)
    body: dict[str, Any] = {"snapshots": [_view(req, item, extended=detailed)
                                          for item in page]}
    if links:
        body["snapshots_links"] = links
    return json_response(body)


def index(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=False)


def detail(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=True)


def show(service: VolumeService, req: webob.Request, snapshot_id: str) -> webob.Response:
    snapshot = load(service, req, snapshot_id, "volume:get_snapshot")
    return json_response({"snapshot": _view(req, snapshot, extended=True)})


def _unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise vexc.InvalidInput(reason=f"Additional properties are not allowed "
                                       f"({', '.join(repr(k) for k in unknown)} "
                                       f"{'was' if len(unknown) == 1 else 'were'} "
                                       f"unexpected)")


def _texts(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, field in (("display_name", "name"), ("name", "name"),
                       ("display_description", "description"),
                       ("description", "description")):
        if key in body:
            found[field] = common.text(body[key], key)
    return found


def _create_args(body: dict[str, Any]) -> dict[str, Any]:
    _unknown(body, CREATE_KEYS)
    if "volume_id" not in body:
        raise vexc.InvalidInput(reason="'volume_id' is a required property")
    if body["volume_id"] is None:  # Cinder looks for it, and finds no such volume
        raise vexc.VolumeNotFound(volume_id=None)
    args = {"volume_id": common.check_uuid(body["volume_id"], "volume_id"),
            "force": common.boolean(body.get("force", False), "force"), **_texts(body)}
    if body.get("metadata") is not None:
        args["metadata"] = common.metadata(body["metadata"])
    return args


def create(service: VolumeService, req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    common.url_project(req)
    body = common.body_of(req, "snapshot")
    args = _create_args(body)
    volume = service.get(ctx, args["volume_id"])  # Cinder: a 404 for a volume not seen
    authorize(ctx, "volume:create_snapshot", volume)
    volume_id = args.pop("volume_id")
    snapshot = service.create_snapshot(ctx, volume_id, **args)
    return json_response({"snapshot": _view(req, snapshot, extended=False)}, status=202)


def update(service: VolumeService, req: webob.Request, snapshot_id: str) -> webob.Response:
    snapshot = load(service, req, snapshot_id, "volume:update_snapshot")
    body = common.body_of(req, "snapshot")
    _unknown(body, UPDATE_KEYS)
    if not body:
        raise vexc.InvalidInput(reason="Nothing to update: give name or description.")
    updated = service.update_snapshot(context_of(req), snapshot["id"], _texts(body))
    return json_response({"snapshot": _view(req, updated, extended=False)})


def delete(service: VolumeService, req: webob.Request, snapshot_id: str) -> webob.Response:
    snapshot = load(service, req, snapshot_id, "volume:delete_snapshot")
    service.delete_snapshot(context_of(req), snapshot["id"])
    return empty_response(202)
