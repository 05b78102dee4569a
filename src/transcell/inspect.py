"""``transcell instance locate``: everything the databases and hosts hold for one server.

It reads the databases and the hosts' disk directories directly, so it works
whether or not the cloud is running, and shows hidden and deleted rows that
the API never shows.
"""

from __future__ import annotations

import glob
import os

from transcell import cell as cells
from transcell import conf
from transcell.compute import instance as inst
from transcell.db.types import isotime


def _row(cell: cells.Cell, row: dict) -> dict:
    return {
        "cell": cell.name, "cell_uuid": cell.uuid, "hidden": bool(row["hidden"]),
        "deleted": bool(row["deleted"]), "vm_state": row["vm_state"],
        "task_state": row["task_state"], "power_state": row["power_state"],
        "host": row["host"], "node": row["node"],
        "availability_zone": row["availability_zone"],
        "flavor": (row["flavor"] or {}).get("name"),
        "updated_at": isotime(row["updated_at"]),
    }


def host_disks(uuid: str) -> list[dict]:
    """Disk files of ``uuid`` on every host of the embedded layout."""
    found = []
    pattern = os.path.join(conf.state_path("hosts"), "*", "instances", uuid, "*")
    for path in sorted(glob.glob(pattern)):
        # the guest's records (json) and its console log sit beside its disks
        if path.endswith((".json", ".log")) or os.path.basename(path).startswith("."):
            continue
        host = path.split(os.sep)[-4]
        stat = os.stat(path)
        found.append({"host": host, "path": path, "apparent_size": stat.st_size,
                      "allocated_bytes": stat.st_blocks * 512,
                      "guest": os.path.exists(os.path.join(os.path.dirname(path),
                                                           "guest.json"))})
    return found


def _volume_service():
    """The running cloud's volume client, else the service opened from the state dir
    (like ``transcell audit``, this works with the cloud stopped)."""
    from transcell.registry import services
    if services.volume is not None:
        return services.volume
    from transcell.volume.service import VolumeService
    return VolumeService(conf.volume_database_url())


def volumes(found: list[tuple[cells.Cell, dict]]) -> list[dict]:
    """Each volume mapped to the server in any cell: where its data is and who holds it.

    A volume appears once per cell row that maps it (a moving server has two),
    with the backend and file the volume service reports and the attachments
    it counts for this server, next to the attachment the row records.
    """
    from transcell.context import RequestContext
    ctx = RequestContext.admin()
    service = None
    listed = []
    for cell, row in found:
        for bdm in row.get("bdms") or []:
            if bdm.get("destination_type") != "volume":
                continue
            entry = {"cell": cell.name, "hidden": bool(row["hidden"]),
                     "volume_id": bdm.get("volume_id"), "device": bdm.get("device_name"),
                     "boot_index": bdm.get("boot_index"), "bdm_uuid": bdm.get("uuid"),
                     "attachment_id": bdm.get("attachment_id"),
                     "delete_on_termination": bool(bdm.get("delete_on_termination")),
                     "device_path": ((bdm.get("connection_info") or {}).get("data") or {})
                     .get("device_path")}
            if bdm.get("volume_id"):
                service = service or _volume_service()
                try:
                    info = service.backend_info(ctx, bdm["volume_id"])
                    entry.update(backend=info.get("backend"), path=info.get("path"),
                                 backend_cells=info.get("cells"),
                                 size_bytes=info.get("size_bytes"),
                                 allocated_bytes=info.get("allocated_bytes"))
                    volume = service.get(ctx, bdm["volume_id"])
                    entry["status"] = volume.get("status")
                    entry["attachment_ids"] = sorted(
                        a.get("attachment_id") or a.get("id") for a in
                        volume.get("attachments") or [] if a.get("server_id") == row["uuid"])
                except Exception as exc:  # a deleted volume, or the service unreachable
                    entry["error"] = str(exc) or type(exc).__name__
            listed.append(entry)
    return listed


def locate(uuid: str) -> dict:
    mapping = cells.instance_mapping(uuid)
    rows = []
    found = []
    for cell in cells.list_cells():
        row = inst.find(cell, uuid)
        if row is not None:
            rows.append(_row(cell, row))
            if not row["deleted"]:
                found.append((cell, row))
    return {
        "instance_uuid": uuid,
        "mapping": None if mapping is None else {
            "cell": mapping["cell"].name if mapping["cell"] else None,
            "cell_uuid": mapping["cell"].uuid if mapping["cell"] else None,
            "project_id": mapping["project_id"],
            "queued_for_delete": mapping["queued_for_delete"]},
        "rows": rows,
        "disks": host_disks(uuid),
        "volumes": volumes(found),
    }
