"""Discovery: the version documents at the API root and at /v3 (no token needed).

keystoneauth and openstacksdk read them to learn the microversion range and
follow the absolute ``self`` link, which names the public endpoint.
"""

from __future__ import annotations

import webob

from transcell.api.volume import microversion
from transcell.wsgi.app import application_url, json_response

UPDATED = "2025-01-01T00:00:00Z"


def _v3(req: webob.Request) -> dict:
    return {
        "id": "v3.0", "status": "CURRENT", "version": microversion.MAX_VERSION,
        "min_version": microversion.MIN_VERSION, "updated": UPDATED,
        "links": [{"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": f"{application_url(req)}/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    }


#: alias -> (name, description) of what this API serves beyond Cinder's core
EXTENSIONS = {
    "os-volume-actions": ("VolumeActions", "Volume actions: extend, upload to image, "
                                           "bootable, read-only, attach and detach."),
    "os-admin-actions": ("AdminActions", "Administrators' actions: reset status, "
                                         "migrate a volume."),
    "os-vol-host-attr": ("VolumeHostAttribute", "The backend a volume lives on."),
    "os-vol-mig-status-attr": ("VolumeMigStatusAttribute", "A volume's migration status."),
    "os-vol-tenant-attr": ("VolumeTenantAttribute", "The project owning a volume."),
    "os-vol-image-meta": ("VolumeImageMetadata", "The image a volume was made from."),
    "os-availability-zone": ("AvailabilityZones", "The availability zone list."),
    "os-transcell-moves": ("TranscellMoves", "A volume's migration steps for a server's "
                                             "move between cells (administrators and "
                                             "services)."),
}


def extensions(req: webob.Request) -> webob.Response:
    return json_response({"extensions": [
        {"alias": alias, "name": name, "description": description, "updated": UPDATED,
         "namespace": f"https://docs.openstack.org/volume/ext/{alias}/api/v1",
         "links": []}
        for alias, (name, description) in EXTENSIONS.items()]})


def root(req: webob.Request) -> webob.Response:
    """Cinder answers the bare root with 300 Multiple Choices."""
    return json_response({"versions": [_v3(req)]}, status=300)


def v3(req: webob.Request) -> webob.Response:
    body = _v3(req)
    body["links"][-1]["href"] = f"{application_url(req)}/v3/"
    return json_response({"versions": [body]})
