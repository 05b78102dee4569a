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
        if path.endswith(".json") or os.path.basename(path).startswith("."):
            continue
        host = path.split(os.sep)[-4]
        stat = os.stat(path)
        found.append({"host": host, "path": path, "apparent_size": stat.st_size,
                      "allocated_bytes": stat.st_blocks * 512,
                      "guest": os.path.exists(os.path.join(os.path.dirname(path),
                                                           "guest.json"))})
    return found


def locate(uuid: str) -> dict:
    mapping = cells.instance_mapping(uuid)
    rows = []
    for cell in cells.list_cells():
        row = inst.find(cell, uuid)
        if row is not None:
            rows.append(_row(cell, row))
    return {
        "instance_uuid": uuid,
        "mapping": None if mapping is None else {
            "cell": mapping["cell"].name if mapping["cell"] else None,
            "cell_uuid": mapping["cell"].uuid if mapping["cell"] else None,
            "project_id": mapping["project_id"],
            "queued_for_delete": mapping["queued_for_delete"]},
        "rows": rows,
        "disks": host_disks(uuid),
    }
