"""The Block storage API (Cinder v3 subset) of transcell: every URL it serves, in one table.

Cinder serves each resource both under ``/v3/{project_id}/`` and, with 3.x
clients, under ``/v3/``; the project id is taken off the path before routing
(and must then be the token's), so one table serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import webob

from transcell import exception
from transcell.api.volume import (
    actions,
    attachments,
    limits,
    metadata,
    microversion,
    moves,
    pools,
    snapshots,
    types,
    versions,
    volumes,
)
from transcell.api.volume.faults import cinder_fault, cinder_faults
from transcell.volume.service import VolumeService
from transcell.wsgi.app import Authenticator, JSONApp

Handler = Callable[..., webob.Response]

#: first path segments under /v3 that are resources, not a project id
RESOURCES = frozenset({"volumes", "snapshots", "types", "attachments", "limits", "extensions",
                       "os-availability-zone", "scheduler-stats", "os-transcell-moves"})
_UNVERSIONED = ("/", "/v3", "/v3/")
URL_PROJECT_KEY = "transcell.volume_url_project"


class VolumeAPI(JSONApp):
    """Discovery is open; everything else needs a token."""

    public_templates = frozenset({"/", "/v3"})

    def prepare(self, req: webob.Request) -> None:
        parts = (req.path_info or "/").split("/")
        # ["", "v3", "<project or resource>", ...]
        if len(parts) > 3 and parts[1] == "v3" and parts[2] not in RESOURCES:
            req.environ[URL_PROJECT_KEY] = parts[2]
            req.path_info = "/" + "/".join([parts[1], *parts[3:]])
        if req.path_info in _UNVERSIONED:
            return
        if req.path_info.endswith("/"):
            # "volumes/" is an empty id to Cinder, not the list: its router says 404
            raise exception.NotFound("The resource could not be found.")
        req.environ[microversion.ENVIRON_KEY] = microversion.MIN
        req.environ[microversion.ENVIRON_KEY] = microversion.negotiate(req.headers)

    def finish(self, req: webob.Request, resp: webob.Response) -> None:
        version = req.environ.get(microversion.ENVIRON_KEY)
        if version is None:
            return
        resp.headers["OpenStack-API-Version"] = f"{microversion.SERVICE_TYPE} {version}"
        resp.headers["Vary"] = "OpenStack-API-Version"


def route_table(service: VolumeService) -> dict[str, dict[str, Handler]]:
    def bind(handler: Callable[..., webob.Response], *args: Any) -> Handler:
        return cinder_faults(partial(handler, *args))

    moved = "/v3/os-transcell-moves/volumes/{volume_id}"
    return {
        "/": {"GET": bind(versions.root)},
        "/v3": {"GET": bind(versions.v3)},
        "/v3/volumes": {"GET": bind(volumes.index, service),
                        "POST": bind(volumes.create, service)},
        "/v3/volumes/detail": {"GET": bind(volumes.detail, service)},
        "/v3/volumes/summary": {"GET": bind(volumes.summary, service)},
        "/v3/extensions": {"GET": bind(versions.extensions)},
        "/v3/volumes/{volume_id}": {"GET": bind(volumes.show, service),
                                    "PUT": bind(volumes.update, service),
                                    "DELETE": bind(volumes.delete, service)},
        "/v3/volumes/{volume_id}/action": {"POST": bind(actions.action, service)},
        "/v3/volumes/{volume_id}/metadata": {"GET": bind(metadata.index, service),
                                             "POST": bind(metadata.create, service),
                                             "PUT": bind(metadata.replace, service)},
        "/v3/volumes/{volume_id}/metadata/{key}": {
            "GET": bind(metadata.show, service), "PUT": bind(metadata.update, service),
            "DELETE": bind(metadata.delete, service)},
        "/v3/snapshots": {"GET": bind(snapshots.index, service),
                          "POST": bind(snapshots.create, service)},
        "/v3/snapshots/detail": {"GET": bind(snapshots.detail, service)},
        "/v3/snapshots/{snapshot_id}": {"GET": bind(snapshots.show, service),
                                        "PUT": bind(snapshots.update, service),
                                        "DELETE": bind(snapshots.delete, service)},
        "/v3/os-availability-zone": {"GET": bind(limits.zones)},
        "/v3/scheduler-stats/get_pools": {"GET": bind(pools.index)},
        "/v3/types": {"GET": bind(types.index)},
        "/v3/types/{type_id}": {"GET": bind(types.show)},
        "/v3/attachments": {"GET": bind(attachments.index, service),
                            "POST": bind(attachments.create, service)},
        "/v3/attachments/detail": {"GET": bind(attachments.detail, service)},
        "/v3/attachments/{attachment_id}": {"GET": bind(attachments.show, service),
                                            "PUT": bind(attachments.update, service),
                                            "DELETE": bind(attachments.delete, service)},
        "/v3/attachments/{attachment_id}/action": {
            "POST": bind(attachments.action, service)},
        "/v3/limits": {"GET": bind(limits.show, service)},
        "/v3/os-transcell-moves/copies": {"GET": bind(moves.copies, service)},
        f"{moved}/backend": {"GET": bind(moves.backend, service)},
        f"{moved}/plan": {"GET": bind(moves.plan, service)},
        f"{moved}/copy": {"POST": bind(moves.copy, service)},
        f"{moved}/switch": {"POST": bind(moves.switch, service)},
        f"{moved}/confirm": {"POST": bind(moves.confirm, service)},
        f"{moved}/revert": {"POST": bind(moves.revert, service)},
    }


def make_app(service: VolumeService, authenticate: Authenticator | None) -> VolumeAPI:
    """The WSGI app; ``authenticate(req) -> RequestContext`` is the deployment's identity."""
    return VolumeAPI(route_table(service), authenticate, cinder_fault)
