"""/v3/types: the volume types of ``[volume] volume_types`` (read only).

A type's extra spec ``volume_backend_name`` names its backend; only
administrators see extra specs, as in Cinder.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.api.volume.access import allowed, authorize
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.wsgi.app import context_of, json_response


def view(req: webob.Request, vtype: vb.VolumeType) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": vtype.id, "name": vtype.name,
        "description": f"Volumes on backend {vtype.backend}",
        "is_public": True, "os-volume-type-access:is_public": True, "qos_specs_id": None,
    }
    if allowed(context_of(req), "volume_extension:access_types_extra_specs"):
        body["extra_specs"] = {"volume_backend_name": vtype.backend}
    return body


def index(req: webob.Request) -> webob.Response:
    authorize(context_of(req), "volume_extension:type_get_all")
    return json_response({"volume_types": [view(req, vtype)
                                           for vtype in vb.volume_types().values()]})


def show(req: webob.Request, type_id: str) -> webob.Response:
    authorize(context_of(req), "volume_extension:type_get")
    if type_id == "default":
        vtype = vb.default_type()
    else:
        found = [vtype for vtype in vb.volume_types().values()
                 if type_id in (vtype.id, vtype.name)]
        if not found:
            raise vexc.VolumeTypeNotFound(volume_type_id=type_id)
        vtype = found[0]
    return json_response({"volume_type": view(req, vtype)})
