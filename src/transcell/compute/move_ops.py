"""What a compute host does for a move between cells: only local work.

A host never reaches a host of another cell. The source host turns the
stopped guest's root disk into a snapshot in the global image store; the
target host rebuilds that disk from the store and checks it bit for bit.
Cell database rows are the conductor's to change; a host reports numbers
back, so each call can be retried without double effects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from transcell import exception
from transcell.compute import instance as inst
from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.faults import hold_point
from transcell.image import sparse
from transcell.image.service import zero_digest
from transcell.image.store import ChunkMissing
from transcell.registry import services

LOG = logging.getLogger(__name__)

#: Write progress to the server row at most this often (fraction of the disk).
PROGRESS_STEP = 0.05
#: ... and no sooner than this many seconds after the upload began or last wrote it: an
#: upload that sends nothing (an unchanged disk) ends before anyone could read a figure.
PROGRESS_SECONDS = 0.5


class MoveOperations:
    """Mixed into ComputeManager, whose host, cell, driver and tracker it uses."""

    def prep_move_at_dest(self, ctx: RequestContext, instance_uuid: str,
                          disk_gb: int) -> dict[str, Any]:
        """Check this host can take the server before the source is touched.

        A guest of the same uuid here means the scheduler picked the server's
        own host or a leftover is in the way; either way the move must not
        land here.
        """
        if self.driver.instance_exists(instance_uuid):
            raise exception.Conflict(f"Host {self.host} already runs a guest for instance "
                                     f"{instance_uuid}.")
        LOG.info("Host %s prepared for instance %s (%s GiB root disk)", self.host,
                 instance_uuid, disk_gb)
        return {"host": self.host, "node": self.tracker.nodename}

    def describe_disk(self, ctx: RequestContext, instance_uuid: str) -> dict[str, Any]:
        """What a move of this guest's root disk would have to read: for a move plan.

        Allocated bytes, not the virtual size: holes are never read or sent, and
        a qcow2 overlay holds only what the guest wrote since its image.
        """
        paths = self.driver.get_disk_paths(instance_uuid)
        root = paths.get("root")
        if root is None:
            return {"host": self.host, "exists": False, "allocated_bytes": 0}
        stat = os.stat(root)
        return {"host": self.host, "exists": True, "format": self.driver.root_disk_format(
                    instance_uuid), "allocated_bytes": stat.st_blocks * 512,
                "file_size": stat.st_size,
                "on_image": self.driver.root_disk_image(instance_uuid) is not None}

    def prep_move_at_source(self, ctx: RequestContext, instance_uuid: str,
                            snapshot_id: str | None,
                            previous_id: str | None = None) -> dict[str, Any]:
        """Stop the guest, upload its root disk as the snapshot, keep the disks.

        Returns the snapshot's chunk-list digest (of every byte the guest
        sees), the disk's size and what was actually sent: chunks the store
        already holds (from the base image, or an earlier attempt) are not
        sent again. After a pre-copy (``previous_id``, its last round's image)
        only what the guest wrote since that round's freeze is read.
        """
        stats: dict[str, Any] = {}
        if self.driver.instance_exists(instance_uuid):
            self.driver.power_off(instance_uuid)
        stats["stopped_at"] = time.time()
        hold_point("compute-upload", instance_uuid)
        if snapshot_id is None:
            # booted from a volume: the root disk is that volume, which the
            # conductor moves (or leaves) with the other volumes
            self.driver.destroy(instance_uuid, destroy_disks=False)
            self.tracker.update_usage()
            stats.update(checksum=None, disk_size=0, bytes_uploaded=0)
            return stats
        record = services.image.get(ctx, snapshot_id)
        if record["status"] == "active":  # uploaded by an earlier attempt of this step
            sent = {"bytes_total": record["size"], "bytes_sent": 0,
                    "os_hash_value": record["os_hash_value"]}
        else:
            sent = (self._upload_since(ctx, instance_uuid, snapshot_id, previous_id, stats)
                    or self._upload_delta(ctx, instance_uuid, snapshot_id, record["chunk_size"],
                                          stats, spool=True)
                    or self._upload_whole(ctx, instance_uuid, snapshot_id, stats, spool=True))
        self.driver.destroy(instance_uuid, destroy_disks=False)
        self.tracker.update_usage()
        stats.update(checksum=sent["os_hash_value"],
                     disk_size=sent["bytes_total"], bytes_uploaded=sent["bytes_sent"])
        return stats

    def _upload_since(self, ctx: RequestContext, instance_uuid: str, snapshot_id: str,
                      previous_id: str | None, stats: dict[str, Any]) -> dict[str, Any] | None:
        """Upload the stopped guest's disk as the pre-copy's image plus what was written
        since its last freeze; None without a usable pre-copy."""
        if previous_id is None:
            return None
        root = self.driver.root_disk_path(instance_uuid)
        if self.driver.root_disk_format(instance_uuid) != "qcow2":
            return None  # no layer on top: the pre-copy's freeze did not stand
        chunk_size = 0

        def describe() -> tuple[int, Any, list[int]]:
            nonlocal chunk_size
            previous = services.image.get(ctx, previous_id)
            chunk_size = int(previous["chunk_size"])
            return snapshot.round_items(root, "qcow2", previous, zero_digest)
        done = self._upload_items(ctx, instance_uuid, snapshot_id, describe,
                                  "without its pre-copy", taken_from=previous_id)
        if done is None:
            return None
        sent, changed, seconds = done
        stats.update(upload_seconds=seconds, bytes_read=len(changed) * chunk_size,
                     final_chunks=len(changed), data_path=sent.get("stages"))
        return sent

    def _upload_delta(self, ctx: RequestContext, instance_uuid: str, snapshot_id: str,
                      chunk_size: int, stats: dict[str, Any],
                      path: str | None = None, spool: bool = False) -> dict[str, Any] | None:
        """Upload only what the guest changed since its base image; None if that can't be.

        ``spool``: a move's image, which a target may take over (see ``_mostly_new``);
        images kept in the store (snapshots, shelved servers) stay chunk files."""
        base_id = self.driver.root_disk_image(instance_uuid)
        if base_id is None:
            return None
        root = path or self.driver.root_disk_path(instance_uuid)

        def describe() -> tuple[int, Any, dict[str, int]]:
            base = services.image.get(RequestContext.admin(), base_id)
            return snapshot.delta_items(root, "qcow2", base, chunk_size)
        done = self._upload_items(ctx, instance_uuid, snapshot_id, describe, "whole",
                                  spool=_mostly_new if spool else None)
        if done is None:
            return None
        sent, counters, seconds = done
        stats.update(upload_seconds=seconds, delta=counters,
                     bytes_read=counters["read"] * chunk_size, data_path=sent.get("stages"))
        LOG.info("Uploaded the disk of %s in %.3f s: %s", instance_uuid,
                 stats["upload_seconds"], sent.get("stages"))
        return sent

    def _upload_items(self, ctx: RequestContext, instance_uuid: str, snapshot_id: str,
                      describe: Callable[[], tuple[int, Any, Any]], otherwise: str,
                      spool: Callable[[Any], bool] | None = None,
                      taken_from: str | None = None
                      ) -> tuple[dict[str, Any], Any, float] | None:
        """Upload the chunk items ``describe`` gives; None when the disk cannot be
        described that way, so the caller falls back to a plainer upload (``otherwise``).

        ``spool(extra)`` says whether the store should lay the new chunks out
        as the disk for the target to take over; ``taken_from`` is the image
        whose chunks the target may already have taken (see ``upload_chunks``)."""
        started = time.monotonic()
        try:
            size, items, extra = describe()
            sent = services.image.upload_chunks(ctx, snapshot_id, items, size,
                                                self._progress(instance_uuid),
                                                spool=spool is not None and spool(extra),
                                                taken_from=taken_from)
        except (snapshot.NotADelta, ChunkMissing, exception.NotFound,
                exception.DiskError) as exc:
            LOG.info("Uploading the disk of %s %s: %s", instance_uuid, otherwise, exc)
            return None
        return sent, extra, round(time.monotonic() - started, 3)

    def _upload_whole(self, ctx: RequestContext, instance_uuid: str, snapshot_id: str,
                      stats: dict[str, Any], path: str | None = None,
                      fmt: str | None = None, spool: bool = False) -> dict[str, Any]:
        root = path or self.driver.root_disk_path(instance_uuid)
        fmt = fmt or self.driver.root_disk_format(instance_uuid)
        started = time.monotonic()
        if fmt != "raw":
            # read through the disk's own extents by the upload's workers: no flatten,
            # no second copy of the disk, holes and zero clusters never read
            record = services.image.get(ctx, snapshot_id)
            size, items = snapshot.whole_items(root, fmt, record["chunk_size"])
            # no base image to build on: a move's target takes the store's spool whole
            sent = services.image.upload_chunks(ctx, snapshot_id, items, size,
                                                self._progress(instance_uuid), spool=spool)
            stats.update(upload_seconds=round(time.monotonic() - started, 3),
                         data_path=sent.get("stages"))
            return sent
        sent = services.image.upload_file(ctx, snapshot_id, root,
                                          self._progress(instance_uuid),
                                          hash_algo=sparse.TREE_ALGO, spool=spool)
        stats.update(upload_seconds=round(time.monotonic() - started, 3),
                     data_path=sent.get("stages"))
        return sent

    def _progress(self, instance_uuid: str):
        last = [0.0, time.monotonic()]

        def report(done: int, total: int | None) -> None:
            if not total:
                return
            fraction = done / total
            if (fraction - last[0] >= PROGRESS_STEP or done >= total) and \
                    time.monotonic() - last[1] >= PROGRESS_SECONDS:
                last[0], last[1] = fraction, time.monotonic()
                with contextlib.suppress(exception.InstanceNotFound):
                    inst.update(self.cell, instance_uuid, progress=int(fraction * 100))
        return report

    def finish_move_at_dest(self, ctx: RequestContext, instance: dict,
                            snapshot_id: str | None, checksum: str | None, disk_gb: int,
                            power_on: bool) -> dict[str, Any]:
        """Rebuild the root disk from the snapshot, verify it, start the guest if it ran.

        Every chunk written here is hashed as it arrives and must match its
        name, and the digest of the chunk list must be the one the source
        reported, so a disk that differs from what left the source is never
        started. When the disk is mostly the server's image, only the differing
        chunks are written, onto this host's copy of that image.
        """
        uuid = instance["uuid"]
        hold_point("compute-rebuild", uuid)
        stats: dict[str, Any] = {}
        if snapshot_id is not None and not self.driver.get_disk_paths(uuid) and \
                not self._finish_prebuilt(ctx, instance, snapshot_id, checksum, disk_gb, stats):
            built = self._build_incoming(ctx, instance, snapshot_id, checksum, stats)
            self.driver.import_root_disk(uuid, built["path"], disk_gb, fmt=built["format"],
                                         base_image_id=built.get("base_image_id"))
        devices = _volume_entries(instance)
        if snapshot_id is None and not self.driver.instance_exists(uuid):
            # booted from a volume: the guest is defined on its volumes alone
            self.driver.spawn(instance, {}, _no_image, 0, power_on=power_on,
                              block_device_info=devices)
        else:
            self.driver.restore_guest(instance, power_on=power_on)
            self._sync_volumes(uuid, devices)
        stats["running_at"] = time.time()
        self.tracker.update_usage()
        return stats

    def _build_incoming(self, ctx: RequestContext, instance: dict, snapshot_id: str,
                        checksum: str | None, stats: dict[str, Any]) -> dict[str, Any]:
        """Write the snapshot's disk as ``disk.incoming``, checked against ``checksum``;
        returns its path, format and base image, for ``import_root_disk``."""
        uuid = instance["uuid"]
        built = self._rebuild_on_base(ctx, instance, snapshot_id, checksum, stats)
        if built is not None:
            return built
        part = self._incoming(uuid)
        os.makedirs(os.path.dirname(part), exist_ok=True)
        started = time.monotonic()
        # take the store's spool where it shares this filesystem: written once, not twice
        got = services.image.download_to_file(ctx, snapshot_id, part, take=True)
        stats["download_seconds"] = round(time.monotonic() - started, 3)
        stats["bytes_downloaded"] = got["bytes_written"]
        stats["bytes_taken"] = got.get("bytes_taken") or 0
        stats["rebuild_data_path"] = got.get("stages")
        LOG.info("Rebuilt the disk of %s in %.3f s: %s", uuid, stats["download_seconds"],
                 got.get("stages"))
        # the digest of the bytes written here, each chunk hashed as it arrived
        actual = got.get("written_digest")
        if actual != checksum:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise exception.ChecksumMismatch(
                what=f"rebuilt disk of instance {uuid} on {self.host}",
                expected=checksum, actual=actual)
        stats["verified_checksum"] = actual
        return {"path": part, "format": "raw", "base_image_id": None}

    def _incoming(self, uuid: str) -> str:
        """Where a disk arriving at this host is written before it is imported."""
        return os.path.join(self.driver.instances_dir, uuid, "disk.incoming")

    def _rebuild_on_base(self, ctx: RequestContext, instance: dict, snapshot_id: str,
                         checksum: str | None, stats: dict[str, Any]) -> dict[str, Any] | None:
        """Build the disk as an overlay on the cached base image plus the differing chunks.

        The result is the snapshot's bytes exactly: chunks equal by digest to
        the base image's at the same index are read through from the host's
        verified copy of it, every other chunk is written from the store and
        checked against its digest on the way. False when most of the disk
        differs or the base cannot be used; the caller then rebuilds it whole.
        """
        base_id = instance.get("image_ref")
        if not base_id or not hasattr(self.driver, "instances_dir"):
            return None
        try:
            snap = services.image.get(ctx, snapshot_id)
            base = services.image.get(RequestContext.admin(), base_id)
        except exception.NotFound:
            return None
        if snap.get("os_hash_value") != checksum:
            raise exception.ChecksumMismatch(what=f"snapshot {snapshot_id}",
                                             expected=checksum, actual=snap.get("os_hash_value"))
        changed = snapshot.changed_chunks(snap, base, zero_digest)
        # an overlay saves writing the data chunks the base already holds; when most of
        # the disk's data changed it saves little, and a whole rebuild (chunk files
        # copied in the kernel, every core busy) is much faster than qemu-io writes
        size, chunk_size = int(snap["size"]), int(snap["chunk_size"])
        data_chunks = sum(1 for i, d in enumerate(snap["chunks"])
                          if d != zero_digest(min(chunk_size, size - i * chunk_size)))
        if changed is None or len(changed) * 2 > data_chunks:
            return None
        started = time.monotonic()
        base_path = self.driver.cached_image(
            {"id": base_id, "disk_format": "raw"},
            lambda image_id, dest: services.image.download_to_file(
                RequestContext.admin(), image_id, dest))
        if base_path is None:
            return None
        part = self._incoming(instance["uuid"])
        os.makedirs(os.path.dirname(part), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        disk.create_qcow2_overlay(base_path, part, int(snap["size"]), "raw")
        written = snapshot.write_changed(
            part, "qcow2", chunk_size,
            [(i, snap["chunks"][i], min(chunk_size, size - i * chunk_size)) for i in changed],
            services.image.sealed_chunk,
            lambda indexes: services.image.read_chunks(ctx, snapshot_id, indexes))
        stats.update(download_seconds=round(time.monotonic() - started, 3),
                     bytes_downloaded=written, verified_checksum=snap["os_hash_value"],
                     rebuilt_on_base=base_id)
        return {"path": part, "format": "qcow2", "base_image_id": base_id}

    def cleanup_move_at_dest(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Remove the guest and every disk this move put here."""
        self.driver.destroy(instance_uuid, destroy_disks=True)
        self.tracker.update_usage()

    def restore_at_source(self, ctx: RequestContext, instance: dict, power_on: bool) -> int:
        """Bring the guest back on its kept disks; returns the power state it is in."""
        uuid = instance["uuid"]
        if not self.driver.instance_exists(uuid):
            self.driver.restore_guest(instance, power_on=power_on)
            self._sync_volumes(uuid, _volume_entries(instance))
        elif power_on:
            self.driver.power_on(uuid)
        self.tracker.update_usage()
        return self.driver.get_power_state(uuid)

    def _sync_volumes(self, uuid: str, devices: dict[str, Any]) -> None:
        """The guest has exactly the volumes its mappings name, through the paths given
        (a volume migrated, or attached or detached elsewhere, since it last ran here)."""
        if not hasattr(self.driver, "attach_volume"):
            return
        wanted = {entry["volume_id"]: entry for entry in devices["volumes"]}
        for volume_id in set(self.driver.get_volumes(uuid)) - set(wanted):
            self.driver.detach_volume(uuid, volume_id)
        for entry in wanted.values():
            if entry.get("connection_info"):
                self.driver.attach_volume(uuid, entry["connection_info"],
                                          entry["device_name"])

    def refresh_usage(self, ctx: RequestContext) -> None:
        """Recount now: a move changed which rows sit on this host."""
        self.tracker.update_usage()

    def confirm_move_at_source(self, ctx: RequestContext, instance_uuid: str) -> None:
        """The move is kept: the source's kept disks are no longer anyone's."""
        self.driver.destroy(instance_uuid, destroy_disks=True)
        self.tracker.update_usage()


def _mostly_new(counters: dict[str, int]) -> bool:
    """Spool a disk most of whose data chunks are new: the target then rebuilds it
    whole (see ``_rebuild_on_base``) and can take the spool over. A disk mostly
    its image is built on the image, with its few new chunks from chunk files."""
    return counters["read"] * 2 > counters["read"] + counters["base"]


def _volume_entries(instance: dict) -> dict[str, Any]:
    """The driver's block device info from the mappings the conductor sent."""
    volumes = [{"volume_id": bd["volume_id"], "device_name": bd.get("device_name") or "",
                "connection_info": bd.get("connection_info") or {},
                "attachment_id": bd.get("attachment_id") or ""}
               for bd in instance.get("block_devices") or []]
    root = next((v for v, bd in zip(volumes, instance.get("block_devices") or [], strict=True)
                 if bd.get("boot_index") in (0, "0")), None)
    return {"root_volume": root, "volumes": volumes}


def _no_image(image_id: str, dest: str) -> None:
    raise exception.Invalid(reason="a server booted from a volume has no image to fetch")
