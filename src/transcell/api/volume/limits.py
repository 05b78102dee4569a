"""/v3/limits (the project's volume usage; no volume quotas here) and the one
availability zone, /v3/os-availability-zone."""

from __future__ import annotations

import webob

from transcell.api.volume.access import authorize
from transcell.volume.service import VolumeService
from transcell.wsgi.app import context_of, json_response

UNLIMITED = -1


def show(service: VolumeService, req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    authorize(ctx, "limits_extension:used_limits")
    volumes = service.list(ctx)
    return json_response({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": UNLIMITED, "maxTotalSnapshots": 0, "maxTotalBackups": 0,
        "maxTotalVolumeGigabytes": UNLIMITED, "maxTotalBackupGigabytes": 0,
        "totalVolumesUsed": len(volumes),
        "totalGigabytesUsed": sum(v["size"] for v in volumes),
        "totalSnapshotsUsed": 0, "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0,
    }}})


def zones(req: webob.Request) -> webob.Response:
    authorize(context_of(req), "volume_extension:availability_zone_list")
    return json_response({"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": True}}]})
