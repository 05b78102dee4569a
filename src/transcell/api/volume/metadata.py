"""/v3/volumes/{volume_id}/metadata: a volume's key/value metadata, whole or one key."""

from __future__ import annotations

import webob

from transcell.api.volume import common
from transcell.api.volume.volumes import load
from transcell.volume import exceptions as vexc
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, empty_response, json_response


def _body(req: webob.Request, member: str) -> dict[str, str]:
    """``{"metadata": {...}}`` or ``{"meta": {...}}``, checked as Cinder checks it."""
    return common.metadata(common.body_of(req, member))


def index(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    volume = load(service, req, volume_id, "volume:get_volume_metadata")
    return json_response({"metadata": volume["metadata"]})


def create(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    changes = _body(req, "metadata")
    load(service, req, volume_id, "volume:create_volume_metadata")
    merged = service.update_metadata(context_of(req), volume_id, changes)
    return json_response({"metadata": merged})


def replace(service: VolumeService, req: webob.Request, volume_id: str) -> webob.Response:
    changes = _body(req, "metadata")
    load(service, req, volume_id, "volume:update_volume_metadata")
    return json_response({"metadata": service.update_metadata(
        context_of(req), volume_id, changes, replace=True)})


def show(service: VolumeService, req: webob.Request, volume_id: str, key: str
         ) -> webob.Response:
    volume = load(service, req, volume_id, "volume:get_volume_metadata")
    if key not in volume["metadata"]:
        raise vexc.MetadataNotFound(volume_id=volume_id, key=key)
    return json_response({"meta": {key: volume["metadata"][key]}})


def update(service: VolumeService, req: webob.Request, volume_id: str, key: str
           ) -> webob.Response:
    meta = _body(req, "meta")
    if list(meta) != [key]:
        raise vexc.InvalidInput(reason="The request body must hold exactly the key the "
                                       "URL names.")
    load(service, req, volume_id, "volume:update_volume_metadata")
    service.update_metadata(context_of(req), volume_id, meta)
    return json_response({"meta": meta})


def delete(service: VolumeService, req: webob.Request, volume_id: str, key: str
           ) -> webob.Response:
    load(service, req, volume_id, "volume:delete_volume_metadata")
    service.update_metadata(context_of(req), volume_id, remove=(key,))
    return empty_response(200)
