"""A compute host's side of shelve, shelve-offload and unshelve on this host.

Shelving stops the guest and uploads its root disk into the global image store
(only the chunks the store lacks), so the server can later be rebuilt in any
cell. Offloading frees this host: guest and disks go, the Placement allocation
is released, ports lose their binding here and each volume keeps a reserved
attachment without a connection, as Nova keeps it. Unshelving an offloaded
server on this host rebuilds the disk from the snapshot, every chunk verified,
and starts the guest; the conductor writes the rows, since the server may be
arriving from another cell.

Every method can run again after a crash: the API records the task state
before its 202, and ``resume_shelving`` finishes whatever a restart finds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from typing import Any

from transcell import exception
from transcell.compute import actions, shelving, volumes
from transcell.compute import bdm as bdms
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.virt import power_state
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.faults import hold_point
from transcell.move import binding
from transcell.registry import services

LOG = logging.getLogger(__name__)


class ShelveOperations:
    """Mixed into ComputeManager, which provides host, cell, driver and _lock."""

    host: str
    cell: Any
    driver: Any
    _lock: Any
    tracker: Any

    # shelve -----------------------------------------------------------------
    def shelve_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str | None,
                        offload: bool) -> None:
        """Stop the guest and upload its root disk as ``image_id`` (None: volume-backed).

        A failed upload leaves the server as it was (running again if it ran),
        with a fault, and the half-made image deleted.
        """
        hold_point("accepted-shelve", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      shelving.SHELVE_EVENT, self.host):
            was_running = self.driver.instance_exists(instance_uuid) and \
                self.driver.get_power_state(instance_uuid) == power_state.RUNNING
            try:
                if self.driver.instance_exists(instance_uuid):
                    self.driver.power_off(instance_uuid)
                inst.update(self.cell, instance_uuid,
                            expected_task_state=(shelving.SHELVING,
                                                 shelving.SHELVING_IMAGE_UPLOADING),
                            task_state=shelving.SHELVING_IMAGE_UPLOADING,
                            power_state=power_state.SHUTDOWN)
                if image_id:
                    self._upload_shelved(ctx, instance_uuid, image_id)
            except (inst.UnexpectedTaskState, exception.InstanceNotFound):
                raise  # a delete took the server: it owns what is left
            except Exception as exc:
                self._shelve_failed(ctx, instance_uuid, image_id, was_running, exc)
                raise
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()
            inst.set_system_metadata(self.cell, instance_uuid, shelving.AT_KEY, now)
            inst.set_system_metadata(self.cell, instance_uuid, shelving.HOST_KEY, self.host)
            inst.update(self.cell, instance_uuid,
                        expected_task_state=shelving.SHELVING_IMAGE_UPLOADING,
                        vm_state=shelving.SHELVED,
                        task_state=shelving.SHELVING_OFFLOADING if offload else None)
        if offload:
            self.shelve_offload_instance(ctx, instance_uuid)

    def _upload_shelved(self, ctx: RequestContext, instance_uuid: str, image_id: str) -> None:
        """The disk into the store: only what changed since its image when it is an overlay
        on one, else the whole disk; chunks the store holds are never sent again (the
        snapshot's own upload, ``ImageOperations.upload_guest_disk``)."""
        sent = self.upload_guest_disk(ctx, instance_uuid, image_id)  # type: ignore[attr-defined]
        LOG.info("Shelved %s into image %s: %s of %s bytes sent", instance_uuid, image_id,
                 sent.get("bytes_sent"), sent.get("bytes_total"))

    def _shelve_failed(self, ctx: RequestContext, instance_uuid: str, image_id: str | None,
                       was_running: bool, error: BaseException) -> None:
        LOG.warning("Shelving %s on %s failed: %s", instance_uuid, self.host, error)
        if image_id:
            with contextlib.suppress(exception.NotFound):
                services.image.delete(RequestContext.admin(), image_id)
        state = power_state.SHUTDOWN
        with contextlib.suppress(Exception):
            if was_running:
                self.driver.power_on(instance_uuid)
            state = self.driver.get_power_state(instance_uuid)
        with contextlib.suppress(exception.NotFound, exception.Conflict):
            inst.set_system_metadata(self.cell, instance_uuid, shelving.IMAGE_KEY, None)
            inst.update(self.cell, instance_uuid,
                        expected_task_state=(shelving.SHELVING,
                                             shelving.SHELVING_IMAGE_UPLOADING),
                        task_state=None, power_state=state)
            inst.add_fault(self.cell, instance_uuid, error, host=self.host)

    # offload ----------------------------------------------------------------
    def shelve_offload_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Free this host of a shelved server; its snapshot, ports and volumes stay its own."""
        hold_point("accepted-shelve-offload", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      shelving.OFFLOAD_EVENT, self.host):
            server = inst.get(self.cell, instance_uuid)
            if server["task_state"] != shelving.SHELVING_OFFLOADING:
                raise inst.UnexpectedTaskState(instance_uuid=instance_uuid,
                                               actual=server["task_state"] or "none",
                                               expected=shelving.SHELVING_OFFLOADING)
            self.driver.destroy(instance_uuid, destroy_disks=True)
            self._park_volumes(ctx, instance_uuid)
            binding.unbind(ctx, [vif["uuid"] for vif in server["vifs"]], self.host)
            services.placement.delete_allocations(instance_uuid)
            inst.update(self.cell, instance_uuid,
                        expected_task_state=shelving.SHELVING_OFFLOADING,
                        vm_state=shelving.SHELVED_OFFLOADED, task_state=None, host=None,
                        node=None, power_state=power_state.NOSTATE)
        self.tracker.update_usage()

    def _park_volumes(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Each volume keeps a reserved attachment (no host, no connection) for the
        server, made before the one of this host goes, so no other server takes it."""
        for mapping in bdms.volumes_of(self.cell, instance_uuid):
            if not mapping["volume_id"] or (mapping["attachment_id"] and
                                            mapping["connection_info"] is None):
                continue  # already parked by an interrupted attempt
            kept = services.volume.attachment_create(ctx, mapping["volume_id"],
                                                     instance_uuid)["id"]
            if mapping["attachment_id"]:
                volumes.cleanup_volumes(ctx, [mapping | {"delete_on_termination": False}])
            bdms.set_fields(self.cell, mapping["uuid"], attachment_id=kept,
                            connection_info=None)

    def offload_expired_shelves(self) -> list[str]:
        """Offload servers shelved here longer than ``[compute] shelved_offload_time``
        (0 offloads at shelve time, -1 never); a periodic task."""
        limit = CONF.compute.shelved_offload_time
        if limit <= 0:
            return []
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ctx = RequestContext.admin()
        done = []
        for row in inst.on_host(self.cell, self.host):
            if row["hidden"] or row["vm_state"] != shelving.SHELVED or row["task_state"]:
                continue
            try:
                server = inst.get(self.cell, row["uuid"])
                since = dt.datetime.fromisoformat(server["system_metadata"][shelving.AT_KEY])
            except (exception.NotFound, KeyError, ValueError):
                continue
            if (now - since).total_seconds() < limit:
                continue
            try:
                inst.update(self.cell, row["uuid"], expected_task_state=None,
                            expected_vm_state=shelving.SHELVED,
                            task_state=shelving.SHELVING_OFFLOADING)
            except (exception.Conflict, exception.NotFound):
                continue  # a request got there first
            try:
                self.shelve_offload_instance(ctx, row["uuid"])
                done.append(row["uuid"])
            except Exception:
                LOG.exception("Offloading shelved server %s failed", row["uuid"])
        return done

    # unshelve ---------------------------------------------------------------
    def unshelve_on_host(self, ctx: RequestContext, instance_uuid: str) -> None:
        """A shelved server that still has this host: start it, drop its snapshot."""
        hold_point("accepted-unshelve", instance_uuid)
        with self._lock(instance_uuid), actions.event(ctx, self.cell, instance_uuid,
                                                      shelving.UNSHELVE_EVENT, self.host):
            server = inst.get(self.cell, instance_uuid)
            try:
                self.driver.power_on(instance_uuid)
            except Exception as exc:
                inst.update(self.cell, instance_uuid, expected_task_state=shelving.UNSHELVING,
                            task_state=None)
                inst.add_fault(self.cell, instance_uuid, exc, host=self.host)
                raise
            image_id = server["system_metadata"].get(shelving.IMAGE_KEY)
            inst.update(self.cell, instance_uuid, expected_task_state=shelving.UNSHELVING,
                        vm_state=vm.ACTIVE, task_state=None, power_state=power_state.RUNNING)
            for key in (shelving.IMAGE_KEY, shelving.AT_KEY, shelving.HOST_KEY):
                inst.set_system_metadata(self.cell, instance_uuid, key, None)
        delete_snapshot(image_id)

    def unshelve_instance(self, ctx: RequestContext, instance: dict, image_id: str | None,
                          checksum: str | None, disk_gb: int) -> dict[str, Any]:
        """Rebuild an offloaded server's guest here and start it (a call from the conductor).

        The disk comes from the snapshot, every chunk checked against its name
        and the whole against ``checksum``; when most of it is still the
        server's image, only the differing chunks are written onto this host's
        copy of that image. A guest of an earlier, interrupted attempt is
        replaced. Rows are the conductor's: this writes none.
        """
        uuid = instance["uuid"]
        hold_point("compute-unshelve", uuid)
        stats: dict[str, Any] = {}
        with self._lock(uuid):
            self.driver.destroy(uuid, destroy_disks=True)
            image_meta: dict[str, Any] = {}
            if image_id:
                built = self._rebuild_on_base(  # type: ignore[attr-defined]
                    ctx, instance, image_id, checksum, stats)
                if built is not None:
                    self.driver.import_root_disk(uuid, built["path"], disk_gb,
                                                 fmt=built["format"],
                                                 base_image_id=built["base_image_id"])
                    image_meta = services.image.get(RequestContext.admin(),
                                                    instance["image_ref"])
                else:
                    self._import_snapshot(ctx, uuid, image_id, checksum, disk_gb, stats)
            devices = _block_device_info(instance)
            self.driver.spawn(instance, image_meta, _fetch_for(ctx), disk_gb, power_on=True,
                              block_device_info=devices)
        self.tracker.update_usage()
        stats["power_state"] = self.driver.get_power_state(uuid)
        return stats

    def _import_snapshot(self, ctx: RequestContext, uuid: str, image_id: str,
                         checksum: str | None, disk_gb: int, stats: dict[str, Any]) -> None:
        part = self._incoming(uuid)  # type: ignore[attr-defined]
        os.makedirs(os.path.dirname(part), exist_ok=True)
        got = services.image.download_to_file(ctx, image_id, part)
        actual = got.get("written_digest")
        if checksum and actual != checksum:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise exception.ChecksumMismatch(what=f"unshelved disk of instance {uuid} on "
                                                  f"{self.host}",
                                             expected=checksum, actual=actual)
        stats.update(bytes_downloaded=got.get("bytes_written"), verified_checksum=actual)
        self.driver.import_root_disk(uuid, part, disk_gb)

    def resume_shelving(self, ctx: RequestContext, row: dict) -> None:
        """After a restart: finish the shelve, offload or unshelve the API accepted here."""
        uuid, task = row["uuid"], row["task_state"]
        if task == shelving.SHELVING_OFFLOADING:
            self.shelve_offload_instance(ctx, uuid)
        elif task in (shelving.SHELVING, shelving.SHELVING_IMAGE_UPLOADING):
            server = inst.get(self.cell, uuid)
            self.shelve_instance(ctx, uuid, server["system_metadata"].get(shelving.IMAGE_KEY),
                                 offload=CONF.compute.shelved_offload_time == 0)
        elif task == shelving.UNSHELVING and row["vm_state"] == shelving.SHELVED:
            self.unshelve_on_host(ctx, uuid)


def delete_snapshot(image_id: str | None) -> None:
    """The shelved snapshot is no longer needed (unshelved or deleted)."""
    if not image_id:
        return
    try:
        services.image.delete(RequestContext.admin(), image_id)
    except exception.NotFound:
        pass
    except Exception:
        LOG.exception("Could not delete shelved snapshot %s", image_id)


def _fetch_for(ctx: RequestContext):
    return lambda image_id, dest: services.image.download_to_file(ctx, image_id, dest)


def _block_device_info(instance: dict) -> dict[str, Any]:
    """The driver's block device info from the mappings the conductor sent."""
    entries = []
    root = None
    for bd in instance.get("block_devices") or []:
        entry = {"volume_id": bd["volume_id"], "device_name": bd.get("device_name") or "",
                 "connection_info": bd.get("connection_info") or {},
                 "attachment_id": bd.get("attachment_id") or ""}
        if bd.get("boot_index") in (0, "0"):
            root = entry
        entries.append(entry)
    return {"root_volume": root, "volumes": entries}
