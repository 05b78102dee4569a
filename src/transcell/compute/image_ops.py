"""A compute host's side of snapshots, backups and rebuild of a guest on this host.

A snapshot is the move's upload, kept: the guest's root disk goes into the
global image store as chunks, and when the disk is an overlay on its image
only the chunks the guest wrote are read, and only chunks the store lacks are
sent (so a second snapshot of an unchanged disk sends nothing). A rebuild
replaces the root disk with one made from the new image, on this host, and
keeps the guest's volumes, ports and (when asked) its ephemeral disk.

The API records the task state before its 202; each method moves it on by a
conditional update and always ends it, so no task state outlives its work.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from transcell import exception
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.virt import power_state
from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.faults import hold_point
from transcell.registry import services

LOG = logging.getLogger(__name__)

SNAPSHOT_EVENT = "compute_snapshot_instance"
BACKUP_EVENT = "compute_backup_instance"
REBUILD_EVENT = "compute_rebuild_instance"
#: System metadata the API records a rebuild's ``preserve_ephemeral`` in, for a restart.
PRESERVE_KEY = "rebuild_preserve_ephemeral"
#: A backup's creation time to the microsecond, which orders backups made within a second.
BACKUP_ORDER_KEY = "transcell_backup_at"


class ImageOperations:
    """Mixed into ComputeManager, which provides host, cell, driver and _lock."""

    host: str
    cell: Any
    driver: Any
    _lock: Any
    tracker: Any

    # upload ------------------------------------------------------------------
    def upload_guest_disk(self, ctx: RequestContext, instance_uuid: str,
                          image_id: str) -> dict[str, Any]:
        """Upload this guest's root disk as the queued image ``image_id``; the store's tally.

        Returns ``bytes_total``, ``bytes_sent``, ``chunks_total``, ``chunks_sent``
        and ``os_hash_value``. An overlay on its image is described against that
        image (only what the guest wrote is read); anything else is uploaded
        whole; either way chunks the store holds are not sent again. An image
        already active (an earlier attempt finished) is not uploaded twice.
        """
        record = services.image.get(ctx, image_id)
        if record["status"] == "active":
            return {"bytes_total": record["size"], "bytes_sent": 0, "chunks_sent": 0,
                    "chunks_total": len(record.get("chunks") or []),
                    "os_hash_value": record["os_hash_value"]}
        stats: dict[str, Any] = {}
        return (self._upload_delta(ctx, instance_uuid, image_id,  # type: ignore[attr-defined]
                                   record["chunk_size"], stats)
                or self._upload_whole(ctx, instance_uuid, image_id,  # type: ignore[attr-defined]
                                      stats))

    # snapshot and backup -----------------------------------------------------
    def snapshot_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str,
                          image_type: str = "snapshot", backup_type: str | None = None,
                          rotation: int | None = None) -> None:
        """Upload the root disk into the image the API made; rotate backups after.

        On failure the half-made image is deleted and the server is left as it
        was, with a fault saying why, as Nova leaves it.
        """
        hold_point("accepted-snapshot", instance_uuid)
        first = vm.IMAGE_BACKUP if image_type == "backup" else vm.IMAGE_SNAPSHOT
        event = BACKUP_EVENT if image_type == "backup" else SNAPSHOT_EVENT
        actions.start_event(ctx, self.cell, instance_uuid, event, host=self.host)
        try:
            with self._lock(instance_uuid):
                inst.update(self.cell, instance_uuid, expected_task_state=first,
                            task_state=vm.IMAGE_PENDING_UPLOAD)
                inst.update(self.cell, instance_uuid,
                            expected_task_state=vm.IMAGE_PENDING_UPLOAD,
                            task_state=vm.IMAGE_UPLOADING)
                sent = self.upload_guest_disk(ctx, instance_uuid, image_id)
                inst.update(self.cell, instance_uuid, expected_task_state=vm.IMAGE_UPLOADING,
                            task_state=None, progress=None)
        except Exception as exc:
            LOG.warning("Snapshot of %s into %s failed on %s: %s", instance_uuid, image_id,
                        self.host, exc)
            with contextlib.suppress(exception.NotFound, exception.Conflict,
                                     exception.Forbidden):
                services.image.delete(ctx, image_id)
            with contextlib.suppress(exception.NotFound, exception.Conflict):
                inst.update(self.cell, instance_uuid, expected_task_state=vm.IMAGE_TASK_STATES,
                            task_state=None, progress=None)
                inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
            actions.finish_event(ctx, self.cell, instance_uuid, event, exc)
            return
        actions.finish_event(ctx, self.cell, instance_uuid, event,
                             details=f"uploaded {sent.get('chunks_sent', 0)} of "
                                     f"{sent.get('chunks_total', 0)} chunks "
                                     f"({sent.get('bytes_sent', 0)} bytes)")
        LOG.info("Snapshot of %s into %s: %s", instance_uuid, image_id, sent)
        if image_type == "backup" and rotation is not None:
            rotate_backups(ctx, instance_uuid, backup_type or "", int(rotation), image_id)

    # rebuild -----------------------------------------------------------------
    def rebuild_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str,
                         preserve_ephemeral: bool = False) -> None:
        """Replace the root disk with one made from ``image_id``; the server's state is kept.

        A server that was stopped is stopped again afterwards (as Nova leaves
        it); a failure leaves the server in ERROR with a fault, since its old
        disk may already be gone.
        """
        hold_point("accepted-rebuild", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      REBUILD_EVENT, self.host):
            server = inst.get(self.cell, instance_uuid)
            try:
                image = services.image.get(ctx, image_id)
                self.driver.power_off(instance_uuid)
                server = inst.update(self.cell, instance_uuid,
                                     expected_task_state=vm.REBUILDING,
                                     task_state=vm.REBUILD_SPAWNING)
                flavor = server["flavor"] or {}
                running = server["vm_state"] != vm.STOPPED
                self.driver.rebuild_root_disk(
                    {"uuid": instance_uuid, "display_name": server["display_name"],
                     "vcpus": flavor.get("vcpus"), "memory_mb": flavor.get("memory_mb"),
                     "ephemeral_gb": flavor.get("ephemeral_gb") or 0},
                    image,
                    lambda iid, dest: services.image.download_to_file(ctx, iid, dest),
                    int(flavor.get("root_gb") or 0), preserve_ephemeral=preserve_ephemeral,
                    power_on=running)
            except (inst.UnexpectedTaskState, exception.InstanceNotFound):
                raise  # a delete took the server: it owns what is left
            except Exception as exc:
                LOG.warning("Rebuild of %s failed on %s: %s", instance_uuid, self.host, exc)
                with contextlib.suppress(exception.NotFound, exception.Conflict):
                    inst.update(self.cell, instance_uuid,
                                expected_task_state=vm.REBUILD_TASK_STATES,
                                vm_state=vm.ERROR, task_state=None)
                    inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
                raise
            inst.update(self.cell, instance_uuid, expected_task_state=vm.REBUILD_SPAWNING,
                        task_state=None, vm_state=vm.ACTIVE if running else vm.STOPPED,
                        power_state=power_state.RUNNING if running else power_state.SHUTDOWN,
                        launched_at=utcnow())
        self.tracker.update_usage()

    # after a restart --------------------------------------------------------
    def resume_image_work(self, ctx: RequestContext, row: dict) -> None:
        """Finish what a restart interrupted: a rebuild runs again from the image the
        server now names (with the ephemeral choice the API recorded); a snapshot is
        given up as Nova gives it up, its half-made image deleted and the task cleared."""
        uuid, task = row["uuid"], row["task_state"]
        if task in vm.REBUILD_TASK_STATES:
            server = inst.update(self.cell, uuid, expected_task_state=vm.REBUILD_TASK_STATES,
                                 task_state=vm.REBUILDING)
            preserve = server["system_metadata"].get(PRESERVE_KEY) == "True"
            self.rebuild_instance(ctx, uuid, server["image_ref"], preserve_ephemeral=preserve)
            return
        for image in services.image.list(ctx, {"instance_uuid": uuid}):
            if image["status"] in ("queued", "saving") and \
                    image.get("image_type") in ("snapshot", "backup"):
                with contextlib.suppress(exception.NotFound, exception.Conflict):
                    services.image.delete(ctx, image["id"])
        with contextlib.suppress(exception.NotFound, exception.Conflict):
            inst.update(self.cell, uuid, expected_task_state=vm.IMAGE_TASK_STATES,
                        task_state=None, progress=None)


def rotate_backups(ctx: RequestContext, instance_uuid: str, backup_type: str, rotation: int,
                   newest: str | None = None) -> list[str]:
    """Delete the server's backups of ``backup_type`` beyond the ``rotation`` newest.

    The backup just made (``newest``) counts as the newest whatever the clock
    says; the others go oldest first (by creation time, then by the microsecond
    time recorded on each backup). Returns the ids deleted.
    """
    found = services.image.list(ctx, {"instance_uuid": instance_uuid, "image_type": "backup",
                                      "backup_type": backup_type},
                                sort_key="created_at", sort_dir="desc")
    found.sort(key=lambda image: (image["id"] == newest, image.get("created_at") or "",
                                  image.get(BACKUP_ORDER_KEY) or ""), reverse=True)
    deleted = []
    for image in reversed(found[rotation:]):
        try:
            services.image.delete(ctx, image["id"])
            deleted.append(image["id"])
        except exception.NotFound:
            continue
        except exception.TranscellError as exc:
            LOG.warning("Could not rotate out backup %s of %s: %s", image["id"],
                        instance_uuid, exc)
    return deleted
