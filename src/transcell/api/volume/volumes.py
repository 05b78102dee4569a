"""/v3/volumes: create, list (summary and detail), show, update, delete."""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume import access, common, microversion
from transcell.api.volume.access import authorize
from transcell.context import RequestContext
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response

FILTERS = {"name", "status", "metadata", "bootable", "migration_status",
           "availability_zone", "size", "volume_type", "display_name"}
CREATE_KEYS = {"size", "name", "description", "display_name", "display_description",
               "volume_type", "imageRef", "image_id", "source_volid", "availability_zone",
               "metadata", "multiattach", "snapshot_id", "backup_id", "consistencygroup_id",
               "group_id", "source_replica", "transcell:project_id", "transcell:user_id"}
UPDATE_KEYS = {"name", "description", "display_name", "display_description", "metadata"}


def load(service: VolumeService, req: webob.Request, volume_id: str, action: str
         ) -> dict[str, Any]:
    """The volume, 404 if the caller cannot see it, 403 if it may not ``action`` it."""
    ctx = context_of(req)
    common.url_project(req)
    common.check_uuid(volume_id, "volume id", vexc.VolumeNotFound(volume_id=volume_id))
    volume = service.get(ctx, volume_id)
    authorize(ctx, action, volume)
    return volume


def detail_view(req: webob.Request, volume: dict[str, Any]) -> dict[str, Any]:
    body = access.shown(context_of(req), volume)
    body["links"] = common.self_links(req, "volumes", volume["id"])
    return body


def written_view(req: webob.Request, volume: dict[str, Any]) -> dict[str, Any]:
    """What POST and PUT answer: Cinder's body without its extensions' attributes
    (``os-vol-*``, the image metadata), which only show and detail add."""
    return {key: value for key, value in detail_view(req, volume).items()
            if not key.startswith("os-vol-") and key != "volume_image_metadata"}


def _summary(req: webob.Request, volume: dict[str, Any]) -> dict[str, Any]:
    return {"id": volume["id"], "name": volume["name"],
            "links": common.self_links(req, "volumes", volume["id"])}


def _listing(service: VolumeService, req: webob.Request, detailed: bool) -> webob.Response:
    ctx = context_of(req)
    common.url_project(req)
    authorize(ctx, "volume:get_all")
    all_projects = common.boolean(req.GET.get("all_tenants", "false"), "all_tenants")
    if all_projects or req.GET.get("project_id"):
        authorize(ctx, "volume:get_all_tenants")
    items = service.list(ctx, all_projects=all_projects,
                         project_id=req.GET.get("project_id"))
    page, links = common.listed(req, "volumes", items, FILTERS)
    view = detail_view if detailed else _summary
    body: dict[str, Any] = {"volumes": [view(req, item) for item in page]}
    if links:
        body["volumes_links"] = links
    return json_response(body)


def index(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=False)


def detail(service: VolumeService, req: webob.Request) -> webob.Response:
    return _listing(service, req, detailed=True)


def summary(service: VolumeService, req: webob.Request) -> webob.Response:
    """GET /v3/volumes/summary (3.12): how many volumes, how many GiB, which metadata."""
    microversion.require(req, microversion.SUMMARY)
    ctx = context_of(req)
    common.url_project(req)
    authorize(ctx, "volume:get_all")
    all_projects = common.boolean(req.GET.get("all_tenants", "false"), "all_tenants")
    if all_projects:
        authorize(ctx, "volume:get_all_tenants")
    items = service.list(ctx, all_projects=all_projects)
    metadata: dict[str, list[str]] = {}
    for item in items:
        for key, value in item["metadata"].items():
            if value not in metadata.setdefault(key, []):
                metadata[key].append(value)
    return json_response({"volume-summary": {
        "total_size": sum(item["size"] for item in items), "total_count": len(items),
        "metadata": metadata}})


def show(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    volume = load(service, req, volume_id, "volume:get")
    return json_response({"volume": detail_view(req, volume)})


def _create_args(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    # no backups exist here: naming one names nothing (Cinder's 404)
    if body.get("backup_id") is not None:
        raise vexc.BackupNotFound(backup_id=body["backup_id"])
    for unsupported in ("consistencygroup_id", "group_id", "source_replica"):
        if body.get(unsupported) is not None:
            raise vexc.InvalidInput(reason=f"{unsupported} is not supported by this cloud.")
    args: dict[str, Any] = {
        "name": common.text(body.get("name", body.get("display_name")), "name"),
        "description": common.text(body.get("description",
                                             body.get("display_description")),
                                    "description"),
        "availability_zone": common.text(body.get("availability_zone"),
                                         "availability_zone"),
    }
    if args["availability_zone"] not in (None, "nova"):
        raise vexc.InvalidInput(reason=f"Availability zone '{args['availability_zone']}' "
                                       "is invalid.")
    if body.get("size") is not None:
        args["size"] = common.size(body["size"])
    if body.get("volume_type") is not None:
        args["volume_type"] = common.text(body["volume_type"], "volume_type")
    image = body.get("imageRef", body.get("image_id"))
    if image is not None:
        args["image_id"] = common.check_uuid(image, "imageRef")
    if body.get("source_volid") is not None:
        args["source_volid"] = common.check_uuid(body["source_volid"], "source_volid")
    if body.get("snapshot_id") is not None:
        args["snapshot_id"] = common.check_uuid(body["snapshot_id"], "snapshot_id")
    if "size" not in args and "source_volid" not in args and "snapshot_id" not in args:
        raise vexc.InvalidInput(reason="Invalid input for field/attribute size. Value: "
                                       "None. size is required.")
    if body.get("metadata") is not None:
        args["metadata"] = common.metadata(body["metadata"])
    if body.get("multiattach") is not None:
        args["multiattach"] = common.boolean(body["multiattach"], "multiattach")
    for field in ("project_id", "user_id"):
        value = body.get(f"transcell:{field}")
        if value is not None:
            authorize(ctx, "volume:create:project_id")
            args[field] = common.text(value, f"transcell:{field}")
    return args


def create(service: VolumeService, req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    common.url_project(req)
    body = common.body_of(req, "volume")
    authorize(ctx, "volume:create")
    args = _create_args(ctx, body)
    if "image_id" in args:
        authorize(ctx, "volume:create_from_image")
    volume = service.create(ctx, size=args.pop("size", None), **args)
    return json_response({"volume": written_view(req, volume)}, status=202)


def update(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    volume = load(service, req, volume_id, "volume:update")
    body = common.body_of(req, "volume")
    unknown = sorted(set(body) - UPDATE_KEYS)
    if unknown:
        raise vexc.InvalidInput(reason=f"Additional properties are not allowed "
                                       f"({', '.join(repr(k) for k in unknown)} "
                                       f"{'was' if len(unknown) == 1 else 'were'} "
                                       f"unexpected)")
    if not body:
        raise vexc.InvalidInput(reason="Nothing to update: give name, description or "
                                       "metadata.")
    changes: dict[str, Any] = {}
    for key in ("name", "display_name"):
        if key in body:
            changes["name"] = common.text(body[key], key)
    for key in ("description", "display_description"):
        if key in body:
            changes["description"] = common.text(body[key], key)
    if "metadata" in body:
        changes["metadata"] = common.metadata(body["metadata"])
    updated = service.update(context_of(req), volume["id"], changes)
    return json_response({"volume": written_view(req, updated)})


def delete(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    volume = load(service, req, volume_id, "volume:delete")
    cascade = common.boolean(req.GET.get("cascade", "false"), "cascade")
    service.delete(context_of(req), volume["id"], cascade=cascade)
    return empty_response(202)
