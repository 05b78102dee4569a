"""Volume bytes through the image store: from an image, to an image, and across cells.

The image store is the only path bytes take between cells, so a volume whose
new backend shares no cell with its old one travels the way a root disk
does on a move: cut into the store's chunks, only the chunks the store lacks
sent (holes and zeros never), rebuilt on the other side from chunks each
checked against its sha256, and then compared as a whole with the source
before it is put in place. Everything goes through ``services.image``, so
the same code runs whether the image service is in this process or behind
its HTTP API.

A transfer image is a hidden image named by the caller (one per move), so a
send repeated after a crash finds what the first one stored and sends
nothing twice. A caller that wants the next send of the same volume to cost
only what changed names a *kept* image too: after each send it holds the
volume's chunks in the store, and :func:`drop_kept` lets them go when the
volume is deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
from typing import Any

from transcell import exception
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.image.service import visible as image_visible
from transcell.image.service import zero_digest
from transcell.registry import services
from transcell.volume import data

LOG = logging.getLogger(__name__)

#: Extra property naming the volume file a transfer image carries (for audits).
TRANSFER_MARKER = "transcell_volume_transfer"
#: Extra property naming the volume file whose last sent chunks a kept image holds.
KEPT_MARKER = "transcell_volume_kept"
#: Formats a volume can be made from or uploaded as.
FORMATS = ("raw", "qcow2")


def _internal() -> RequestContext:
    """Transfer and kept images belong to the service, whoever asked for the copy."""
    return RequestContext.admin()


# -- images into volumes -----------------------------------------------------------------


def from_image(ctx: RequestContext, image_id: str, path: str, size_gb: int
               ) -> dict[str, Any]:
    """Fill a new volume file with an image's contents, grown to ``size_gb`` GiB.

    The image is read with the caller's rights. A qcow2 image is converted
    to raw; an image that would not fit, that is not active, or whose format
    cannot be read is a ValueError and nothing is left at ``path``.
    """
    size = data.size_bytes(size_gb)
    image = services.image.get(ctx, image_id)
    _check_visible(ctx, image)
    fmt = image.get("disk_format")
    if fmt not in FORMATS:
        raise ValueError(f"Image {image_id} is {fmt}; a volume is made from a "
                         f"{' or '.join(FORMATS)} image.")
    if image.get("status") != "active":
        raise ValueError(f"Image {image_id} is {image.get('status')}, not active: it has "
                         "no data to make a volume from.")
    _check_fits(image_id, image.get("virtual_size") or image.get("size") or 0, size)
    if (image.get("min_disk") or 0) > size_gb:
        raise ValueError(f"Image {image_id} needs a disk of {image['min_disk']} GiB; the "
                         f"volume has {size_gb} GiB.")
    with data.building(path) as tmp:
        if fmt == "raw":
            services.image.download_to_file(ctx, image_id, tmp)
        else:
            _qcow2_to_raw(ctx, image_id, path, tmp, size)
        contents = os.path.getsize(tmp)
        _check_fits(image_id, contents, size)
        os.truncate(tmp, size)
    return {"bytes": size, "image_bytes": contents, "disk_format": fmt}


def _check_visible(ctx: RequestContext, image: dict[str, Any]) -> None:
    """Hold the caller to the images they may see.

    An image client over HTTP reads as the service user, who sees every
    image; without this a user could make a volume of another project's
    private image in the distributed layout.
    """
    if not image_visible(ctx, image):
        raise exception.ImageNotFound(image_id=image["id"])


def _check_fits(image_id: str, needed: int, size: int) -> None:
    if needed > size:
        raise ValueError(f"Image {image_id} holds {needed} bytes, more than the volume's "
                         f"{size // data.GiB} GiB.")


def _qcow2_to_raw(ctx: RequestContext, image_id: str, path: str, dest: str,
                  size: int) -> None:
    fetched = disk.temp_path_for(path)
    try:
        services.image.download_to_file(ctx, image_id, fetched)
        try:
            meta = disk.info(fetched, "qcow2")
        except exception.DiskError as exc:
            raise ValueError(f"Image {image_id} is not a readable qcow2 image: {exc}") from exc
        if meta.get("backing-filename") or _data_file(meta):
            # qemu-img would read whatever host file the image names
            raise ValueError(f"Image {image_id} refers to a file outside itself (a backing "
                             "or data file); a volume is made only from a whole image.")
        _check_fits(image_id, int(meta["virtual-size"]), size)
        disk.flatten_to_raw(fetched, dest, "qcow2")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fetched)


def _data_file(meta: dict[str, Any]) -> bool:
    specific = (meta.get("format-specific") or {}).get("data") or {}
    return bool(specific.get("data-file"))


# -- volumes into images -----------------------------------------------------------------


def to_image(ctx: RequestContext, path: str, image_id: str, disk_format: str = "raw"
             ) -> dict[str, Any]:
    """Upload a volume into an existing queued image, with the caller's rights.

    Holes are never read and only chunks the store lacks are sent, so a
    volume made from an image uploads little more than what was written
    into it. Returns the upload's figures (``bytes_sent``, ``os_hash_value``...).
    """
    if disk_format not in FORMATS:
        raise ValueError(f"A volume is uploaded as {' or '.join(FORMATS)}, not "
                         f"{disk_format!r}.")
    image = services.image.get(ctx, image_id)
    if image.get("disk_format") not in (None, disk_format):
        raise ValueError(f"Image {image_id} is to hold {image['disk_format']} data, not "
                         f"{disk_format}.")
    if disk_format == "raw":
        return _upload(ctx, image_id, path, image["chunk_size"])
    converted = disk.temp_path_for(path)
    try:
        _raw_to_qcow2(path, converted)
        return _upload(ctx, image_id, converted, image["chunk_size"])
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(converted)


def _upload(ctx: RequestContext, image_id: str, path: str, chunk_size: int,
            whole: Any = None) -> dict[str, Any]:
    size = os.path.getsize(path)
    return services.image.upload_chunks(ctx, image_id, data.scan(path, chunk_size, whole),
                                        size)


def _raw_to_qcow2(path: str, dest: str) -> None:
    argv = [disk.QEMU_IMG, "convert", "-q", "-f", "raw", "-O", "qcow2", path, dest]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, umask=0o077,
                          env=dict(os.environ, LC_ALL="C"))
    if proc.returncode != 0:
        raise exception.DiskError(reason=f"qemu-img convert {path} to qcow2: "
                                         f"{proc.stderr.strip() or proc.returncode}")


# -- volumes across cells ----------------------------------------------------------------


def send_through_store(ctx: RequestContext, src_path: str, dst_path: str,
                       transfer_image_id: str, *, keep_image_id: str | None = None
                       ) -> dict[str, Any]:
    """Copy a volume file through the image store; returns ``{"checksum", "bytes_sent", "bytes"}``.

    ``dst_path`` appears only once its sha256 equals the source's; the
    transfer image is deleted afterwards. Repeated after a crash it resumes:
    chunks already in the store are not sent again, and a ``dst_path``
    already equal to the source is kept (``bytes_sent`` 0). With
    ``keep_image_id`` the volume's chunks stay in the store under that hidden
    image, so the next send of this volume sends only what changed.
    ``ctx`` is accepted for symmetry: the images involved are the service's own.
    """
    admin = _internal()
    size = os.path.getsize(src_path)
    done = _finished_before(src_path, dst_path, size)
    if done is not None:
        if keep_image_id is not None:
            with contextlib.suppress(exception.NotFound, exception.Conflict):
                record = services.image.get(admin, transfer_image_id)
                if record["status"] == "active":
                    _keep(admin, keep_image_id, record, src_path)
        _drop(admin, transfer_image_id)
        return {"checksum": done, "bytes_sent": 0, "bytes": size}
    record = _transfer_image(admin, transfer_image_id, src_path, size)
    sent, want = 0, None
    if record["status"] != "active":
        whole = hashlib.sha256()
        stats = _upload(admin, transfer_image_id, src_path, record["chunk_size"], whole)
        sent, want = int(stats["bytes_sent"]), whole.hexdigest()
        record = services.image.get(admin, transfer_image_id)
    try:
        want = _rebuild(admin, transfer_image_id, src_path, dst_path, want)
    except exception.ChecksumMismatch:
        # drop the image, so chunks only it named are collected and sent afresh next time
        _drop(admin, transfer_image_id)
        if want is None:  # an earlier attempt stored other bytes: start over once
            LOG.warning("Transfer image %s did not hold %s; sending it again",
                        transfer_image_id, src_path)
            return send_through_store(ctx, src_path, dst_path, transfer_image_id,
                                      keep_image_id=keep_image_id)
        raise
    if keep_image_id is not None:
        _keep(admin, keep_image_id, record, src_path)
    _drop(admin, transfer_image_id)
    return {"checksum": want, "bytes_sent": sent, "bytes": size}


def _finished_before(src: str, dst: str, size: int) -> str | None:
    """The checksum, when an earlier attempt already put an equal copy at ``dst``."""
    if not os.path.exists(dst) or os.path.getsize(dst) != size:
        return None
    want, have = data.checksums(src, dst)
    return want if want == have else None


def _transfer_image(admin: RequestContext, image_id: str, src: str, size: int
                    ) -> dict[str, Any]:
    """The transfer image, queued for the upload, or active from an earlier attempt."""
    try:
        record = services.image.get(admin, image_id)
    except exception.NotFound:
        record = None
    if record is not None and not (
            record["status"] == "queued"
            or (record["status"] == "active" and record["size"] == size)):
        # left saving by an uploader that died, or holding another file's bytes
        _drop(admin, image_id)
        record = None
    if record is None:
        name = os.path.basename(src)
        record = services.image.create(admin, id=image_id, name=f"transfer of {name}",
                                       disk_format="raw", container_format="bare",
                                       visibility="private", os_hidden=True,
                                       **{TRANSFER_MARKER: name})
    return record


def _rebuild(admin: RequestContext, image_id: str, src: str, dst: str,
             want: str | None) -> str:
    """Write ``dst`` from the store; it replaces ``dst`` only if it hashes like ``src``."""
    with data.building(dst) as tmp:
        services.image.download_to_file(admin, image_id, tmp)
        if want is None:
            want, have = data.checksums(src, tmp)
        else:
            have = data.checksum(tmp)
        data.verify(want, have, f"volume copy at {dst} rebuilt from image {image_id}")
    return want


def _keep(admin: RequestContext, keep_image_id: str, record: dict[str, Any],
          src: str) -> None:
    """Point the kept image at the chunks just sent (no bytes move: all are in the store).

    Failing here costs only the next send's savings, never this copy.
    """
    size, chunk_size = int(record["size"]), int(record["chunk_size"])
    items: list[Any] = []
    for index, digest in enumerate(record["chunks"]):
        length = min(chunk_size, size - index * chunk_size)
        items.append(length if digest == zero_digest(length) else ("known", digest, length))
    name = os.path.basename(src)
    try:
        _drop(admin, keep_image_id)
        services.image.create(admin, id=keep_image_id, name=f"last copy of {name}",
                              disk_format="raw", container_format="bare",
                              visibility="private", os_hidden=True, **{KEPT_MARKER: name})
        services.image.upload_chunks(admin, keep_image_id, iter(items), size)
    except Exception:
        LOG.warning("Could not keep the chunks of %s under image %s; its next copy "
                    "will send them again", src, keep_image_id, exc_info=True)
        with contextlib.suppress(Exception):
            _drop(admin, keep_image_id)


def _drop(admin: RequestContext, image_id: str) -> None:
    with contextlib.suppress(exception.NotFound):
        services.image.delete(admin, image_id)


def drop_kept(ctx: RequestContext, keep_image_id: str) -> None:
    """Let the store forget a deleted volume's kept chunks; a missing image is fine."""
    _drop(_internal(), keep_image_id)
