"""Volumes against servers: attachments, the servers' mappings, copies, files.

- every attachment the volume service holds for a server is one the
  server's mapping of that volume names, unless a move in flight holds a
  second one (for its target host, or its source kept until confirm);
- every mapping of a settled server names an attachment that exists;
- every copy of a volume recorded for a move belongs to a move in flight,
  or to an administrator's migration still running;
- every file on a backend is a volume's, a recorded copy or a snapshot's;
- every available snapshot has its file.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import conf
from transcell.audit import Problem
from transcell.audit.state import Snapshot
from transcell.compute import vm_states as vm
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.move import saga as sagas

#: Attachments in these states are still being made by a request (attach in progress).
UNFINISHED = ("reserved", "attaching")


def _mappings() -> dict[str, tuple[str, str]]:
    """attachment id -> (server uuid, volume id), from every cell's live mappings."""
    found: dict[str, tuple[str, str]] = {}
    for cell in cells.list_cells(include_cell0=False):
        with cell_session(cell) as s:
            for row in s.scalars(select(cm.BlockDeviceMapping).where(
                    cm.BlockDeviceMapping.deleted == 0,
                    cm.BlockDeviceMapping.destination_type == "volume",
                    cm.BlockDeviceMapping.volume_id.is_not(None))):
                if row.attachment_id:
                    found[row.attachment_id] = (row.instance_uuid, row.volume_id)
    return found


def check(snap: Snapshot, volumes: Any) -> list[Problem]:
    if volumes is None:
        return []
    ctx = RequestContext.admin()
    problems: list[Problem] = []
    mapped = _mappings()
    attachments = volumes.attachment_list(ctx, all_projects=True)
    known = {a["id"] for a in attachments}
    for attachment in attachments:
        uuid = attachment["instance"]
        if attachment["id"] in mapped or snap.moving(uuid):
            continue
        settled = snap.mapped_row(uuid)
        if attachment["status"] in UNFINISHED and settled is not None:
            continue  # an attach on its way: the host records it once done
        problems.append(Problem(
            "attachment-without-server",
            f"volume {attachment['volume_id']} has attachment {attachment['id']} for "
            f"{uuid}, which no live server's volume mapping names", attachment["id"]))
    for attachment_id, (uuid, volume_id) in mapped.items():
        found = snap.mapped_row(uuid)
        if attachment_id in known or found is None or snap.moving(uuid):
            continue
        if found[1].task_state == vm.DELETING:
            continue
        problems.append(Problem(
            "volume-mapping-without-attachment",
            f"{uuid} maps volume {volume_id} through attachment {attachment_id}, which the "
            "volume service does not have", uuid))
    copies = volumes.move_copies(ctx)
    problems += _copies(snap, volumes, ctx, copies)
    snapshots = _snapshots(volumes, ctx)
    problems += _files(volumes, ctx, copies, snapshots)
    return problems


def _snapshots(volumes: Any, ctx: RequestContext) -> list[dict]:
    try:
        return volumes.list_snapshots(ctx, all_projects=True)
    except AttributeError:  # a volume service without snapshots
        return []


def _snapshot_files(root: str) -> dict[str, str]:
    """snapshot id -> its file, for every ``snapshot-<id>`` file on any backend."""
    found = {}
    for backend in sorted(os.listdir(root)):
        directory = os.path.join(root, backend)
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                if name.startswith("snapshot-"):
                    found[name[len("snapshot-"):]] = os.path.join(directory, name)
    return found


def _copies(snap: Snapshot, volumes: Any, ctx: RequestContext,
            copies: list[dict]) -> list[Problem]:
    problems = []
    for copy in copies:
        saga = snap.saga_by_uuid.get(copy["move_id"])
        if saga is not None:
            if saga.status in (*sagas.IN_FLIGHT, sagas.FAILED):
                continue
            why = f"its move {copy['move_id']} is {saga.status}"
        else:
            volume = _volume(volumes, ctx, copy["volume_id"])
            if volume is not None and volume.get("migration_status") in (
                    "migrating", "starting"):
                continue
            why = "no move or migration in flight made it"
        problems.append(Problem(
            "stray-volume-copy",
            f"volume {copy['volume_id']} keeps a {copy.get('role') or ''} copy on backend "
            f"{copy['backend']} ({copy['path']}); {why}", copy["volume_id"]))
    return problems


def _volume(volumes: Any, ctx: RequestContext, volume_id: str) -> dict | None:
    try:
        return volumes.get(ctx, volume_id)
    except Exception:
        return None


def _files(volumes: Any, ctx: RequestContext, copies: list[dict],
           snapshots: list[dict]) -> list[Problem]:
    root = conf.volume_data_dir()
    if not os.path.isdir(root):
        return []
    wanted = {copy["path"] for copy in copies}
    problems = []
    files = _snapshot_files(root)
    for snap in snapshots:
        path = files.get(snap["id"])
        if path is not None:
            wanted.add(path)
        elif snap["status"] in ("available", "deleting", "error_deleting"):
            problems.append(Problem(
                "snapshot-file-missing", f"snapshot {snap['id']} of volume "
                f"{snap['volume_id']} is {snap['status']} but no backend holds its file",
                snap["id"]))
    for volume in volumes.list(ctx, all_projects=True):
        try:
            wanted.add(volumes.backend_info(ctx, volume["id"])["path"])
        except Exception:
            continue
    for backend in sorted(os.listdir(root)):
        directory = os.path.join(root, backend)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name.startswith(".") or path in wanted:
                continue
            problems.append(Problem(
                "stray-volume-file", f"backend {backend} keeps {path}, which is no volume's "
                "file and no recorded copy", path))
    return problems
