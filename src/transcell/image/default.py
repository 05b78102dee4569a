"""The image every transcell cloud boots from out of the box.

Its bytes are deterministic, so the same cloud built twice has the same image
checksum, and shaped like a real disk: a boot sector, a dense region at the
start, a few scattered blocks and long runs of zeros. That makes it a fair
test of the data path: dedup of zero chunks, sparse downloads, and
checksums that would catch a chunk moved to the wrong offset.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

from transcell import exception
from transcell.context import RequestContext
from transcell.image.service import ImageService

NAME = "transcell-base"
SIZE = 16 * 1024 * 1024
MiB = 1024 * 1024
#: Fixed, so concurrent or repeated bootstraps converge on one image.
IMAGE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://transcell.invalid/images/" + NAME))

_SEED = b"transcell-base-image-v1"


def _stream(label: str, length: int) -> bytes:
    return hashlib.shake_256(_SEED + label.encode()).digest(length)


def _boot_sector() -> bytes:
    sector = bytearray(512)
    sector[:446] = _stream("boot-code", 446)
    # One bootable Linux partition from sector 2048 to the end of the disk.
    entry = bytearray(16)
    entry[0] = 0x80
    entry[4] = 0x83
    entry[8:12] = (2048).to_bytes(4, "little")
    entry[12:16] = (SIZE // 512 - 2048).to_bytes(4, "little")
    sector[446:462] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def content() -> bytes:
    """The image's bytes; also what tests compare a downloaded copy against."""
    disk = bytearray(SIZE)
    disk[0:512] = _boot_sector()
    disk[512:MiB] = _stream("dense", MiB - 512)
    banner = b"transcell base image: moved between cells only as verified chunks\n"
    for offset in (5 * MiB + 4096, 9 * MiB, 13 * MiB + 12345):
        block = banner + _stream(f"block-{offset}", 64 * 1024 - len(banner))
        disk[offset:offset + len(block)] = block
    disk[SIZE - 512:] = _stream("trailer", 512)
    return bytes(disk)


def ensure_default_image(service: ImageService, ctx: RequestContext) -> dict[str, Any]:
    """Return the base image, creating and uploading it on first use."""
    try:
        image = service.get(ctx, IMAGE_ID)
    except exception.ImageNotFound:
        try:
            image = service.create(ctx, id=IMAGE_ID, name=NAME, visibility="public",
                                   disk_format="raw", container_format="bare", min_disk=1)
        except exception.Conflict:
            image = service.get(ctx, IMAGE_ID)
    if image["status"] == "queued":
        data = content()
        try:
            image = service.upload(ctx, IMAGE_ID, io.BytesIO(data), size=len(data))
        except exception.Conflict:
            image = service.get(ctx, IMAGE_ID)
    return image
