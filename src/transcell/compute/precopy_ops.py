"""Pre-copy: a host's part in copying a running guest's disk before the guest stops.

The source freezes the guest's root disk (``driver.freeze_root_disk``) and
uploads the frozen image to the store: the first round everything the guest
changed since its image, each later round only the chunks written since the
previous freeze, read from the frozen layer that holds them. The target
builds the disk from the first round's image and patches it with each later
round, so once the guest stops only the last few chunks remain to send and
write. Nothing here touches the server's database rows or its guest at the
target: a pre-copy abandoned at any point costs the store images the conductor
deletes, the target's unfinished disk (``cleanup_move_at_dest``) and folding
the frozen layers back at the source (``end_precopy``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any

from transcell import exception, statefiles
from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.faults import hold_point
from transcell.image.service import zero_digest
from transcell.registry import services

LOG = logging.getLogger(__name__)

#: The target's record of the disk it is building, beside ``disk.incoming``.
PREBUILT = "prebuilt.json"


class PrecopyOperations:
    """Mixed into ComputeManager beside MoveOperations, whose upload helpers it uses."""

    # source ----------------------------------------------------------------
    def precopy_round(self, ctx: RequestContext, instance_uuid: str, snapshot_id: str,
                      previous_id: str | None) -> dict[str, Any]:
        """Freeze the running guest's disk and upload it as ``snapshot_id``.

        With ``previous_id`` (the last round's image) only the chunks written
        since that round are read and sent. Returns what was sent, and the
        store's chunk size, in which ``precopy_pending`` counts what is left.
        """
        hold_point("compute-precopy", instance_uuid)
        started = time.monotonic()
        frozen = self.driver.freeze_root_disk(instance_uuid)
        if frozen is None:
            return {"supported": False}
        stats: dict[str, Any] = {"supported": True}
        if previous_id is not None:
            previous = services.image.get(ctx, previous_id)
            size, items, changed = snapshot.round_items(frozen["path"], frozen["format"],
                                                        previous, zero_digest)
            sent = services.image.upload_chunks(ctx, snapshot_id, items, size,
                                                taken_from=previous_id)
            stats.update(changed_chunks=len(changed), chunk_size=int(previous["chunk_size"]),
                         changed_bytes=len(changed) * int(previous["chunk_size"]))
        else:
            record = services.image.get(ctx, snapshot_id)
            sent = (self._upload_delta(ctx, instance_uuid, snapshot_id, record["chunk_size"],
                                       stats, path=frozen["path"], spool=True)
                    or self._upload_whole(ctx, instance_uuid, snapshot_id, stats,
                                          path=frozen["path"], fmt=frozen["format"],
                                          spool=True))
            stats.update(changed_bytes=sent["bytes_sent"], chunk_size=int(record["chunk_size"]))
        stats.update(checksum=sent["os_hash_value"], bytes_uploaded=sent["bytes_sent"],
                     disk_size=sent["bytes_total"],
                     seconds=round(time.monotonic() - started, 3))
        LOG.info("Pre-copy of %s into %s: %s bytes sent", instance_uuid, snapshot_id,
                 stats["bytes_uploaded"])
        return stats

    def precopy_pending(self, ctx: RequestContext, instance_uuid: str,
                        chunk_size: int = 0) -> int:
        """What another round would send now: the whole chunks (of ``chunk_size``) the
        guest's writes since the last freeze touched, or without a chunk size the
        bytes it wrote. Read from the top layer's metadata, no data.

        Chunks, not bytes, are what travel: scattered small writes touch many
        chunks, and the stop must wait for every one of them.
        """
        extents = disk.allocation_map(self.driver.root_disk_path(instance_uuid), "qcow2")
        if chunk_size <= 0:
            return sum(e["length"] for e in extents
                       if e["depth"] == 0 and e.get("present", True))
        return len(snapshot.own_chunks(extents, chunk_size)) * chunk_size

    def precopy_measure(self, ctx: RequestContext, instance_uuid: str,
                        chunk_size: int) -> dict[str, Any]:
        """Before any freeze: what a first round would send (the whole chunks of
        ``chunk_size`` the guest wrote since its image), from the disk's metadata alone.

        So a move of a guest that has written next to nothing can skip the
        pre-copy without freezing, uploading or building anything: what little
        there is goes after the stop. ``pending_bytes`` None: the host cannot
        tell (a raw disk has no layer metadata), and the move pre-copies.
        """
        extents = self.driver.root_disk_own_extents(instance_uuid)
        if extents is None:
            return {"pending_bytes": None}
        return {"pending_bytes": len(snapshot.own_chunks(extents, chunk_size)) * chunk_size}

    def end_precopy(self, ctx: RequestContext, instance_uuid: str) -> bool:
        """The move will not use the frozen layers: fold them back into the disk."""
        if not self.driver.get_disk_paths(instance_uuid):
            return False
        return self.driver.settle_root_disk(instance_uuid)

    # target ----------------------------------------------------------------
    def prebuild_at_dest(self, ctx: RequestContext, instance: dict,
                         snapshot_id: str) -> dict[str, Any]:
        """Build (first round) or patch (later rounds) the incoming disk from a round's image.

        Every chunk written is checked against its digest on the way in, and
        the record beside the disk names the chunk list the disk now holds,
        so the final patch knows what differs and the finished disk is the
        source's byte for byte.
        """
        uuid = instance["uuid"]
        hold_point("compute-prebuild", uuid)
        started = time.monotonic()
        record = services.image.get(ctx, snapshot_id)
        built = self._prebuilt(uuid)
        stats: dict[str, Any] = {}
        if built is None:
            target = self._build_incoming(ctx, instance, snapshot_id, record["os_hash_value"],
                                          stats)
            self._save_prebuilt(uuid, record, target["format"], target.get("base_image_id"))
            written = stats.get("bytes_downloaded", 0)
        else:
            written = self._patch_incoming(ctx, uuid, built, snapshot_id, record)
        return {"prebuilt": True, "bytes_downloaded": written,
                "bytes_taken": stats.get("bytes_taken", 0),
                "seconds": round(time.monotonic() - started, 3)}

    def _prebuilt_path(self, uuid: str) -> str:
        return os.path.join(self.driver.instances_dir, uuid, PREBUILT)

    def _prebuilt(self, uuid: str) -> dict[str, Any] | None:
        """The record of a pre-built disk, if one is whole on this host."""
        if not hasattr(self.driver, "instances_dir"):
            return None
        try:
            with open(self._prebuilt_path(uuid), encoding="utf-8") as f:
                built = json.load(f)
        except FileNotFoundError:
            return None
        return built if os.path.exists(self._incoming(uuid)) else None

    def _save_prebuilt(self, uuid: str, record: dict[str, Any], fmt: str,
                       base_image_id: str | None) -> None:
        statefiles.write_atomic(self._prebuilt_path(uuid), json.dumps({
            "snapshot_id": record["id"], "chunks": record["chunks"],
            "chunk_size": record["chunk_size"], "size": record["size"],
            "os_hash_value": record["os_hash_value"], "format": fmt,
            "base_image_id": base_image_id}).encode(), durable=False)

    def _patch_incoming(self, ctx: RequestContext, uuid: str, built: dict[str, Any],
                        snapshot_id: str, record: dict[str, Any]) -> int:
        """Write into the incoming disk the chunks ``record`` names differently."""
        if (int(record["size"]) != int(built["size"])
                or int(record["chunk_size"]) != int(built["chunk_size"])):
            raise exception.DiskError(
                reason=f"image {snapshot_id} does not line up with the disk pre-built for "
                       f"{uuid} from {built['snapshot_id']}")
        size, chunk_size = int(record["size"]), int(record["chunk_size"])
        changed = [(i, digest, min(chunk_size, size - i * chunk_size))
                   for i, (digest, had) in enumerate(zip(record["chunks"], built["chunks"],
                                                         strict=True)) if digest != had]
        written = 0
        if changed:
            written = snapshot.write_changed(
                self._incoming(uuid), built["format"], chunk_size, changed,
                services.image.sealed_chunk,
                lambda indexes: services.image.read_chunks(ctx, snapshot_id, indexes))
        self._save_prebuilt(uuid, record, built["format"], built.get("base_image_id"))
        return written

    def _finish_prebuilt(self, ctx: RequestContext, instance: dict, snapshot_id: str,
                         checksum: str | None, disk_gb: int, stats: dict[str, Any]) -> bool:
        """Bring a pre-built disk to the final image and import it; False if there is none."""
        uuid = instance["uuid"]
        built = self._prebuilt(uuid)
        if built is None:
            return False
        record = services.image.get(ctx, snapshot_id)
        if record.get("os_hash_value") != checksum:
            raise exception.ChecksumMismatch(what=f"snapshot {snapshot_id}",
                                             expected=checksum,
                                             actual=record.get("os_hash_value"))
        started = time.monotonic()
        written = self._patch_incoming(ctx, uuid, built, snapshot_id, record)
        stats.update(download_seconds=round(time.monotonic() - started, 3),
                     bytes_downloaded=written, verified_checksum=record["os_hash_value"],
                     prebuilt=True)
        self.driver.import_root_disk(uuid, self._incoming(uuid), disk_gb,
                                     fmt=built["format"],
                                     base_image_id=built.get("base_image_id"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._prebuilt_path(uuid))
        return True
