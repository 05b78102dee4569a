"""A moving server's root disk as image-store chunks, reading only what changed.

A root disk built from an image is a qcow2 overlay on that image. Every chunk
the guest never wrote is, byte for byte, the base image's chunk at the same
index, which the store already holds under a known digest; so the snapshot
names those chunks without reading them and reads only chunks that touch the
overlay's own data. A disk of 1 GiB with 10 MiB changed costs 10 MiB of
reads and hashing at the source instead of a flatten and a full pass.

Only a raw base image with the store's chunk size lines up chunk for chunk;
anything else is not a delta, and the caller falls back to a full upload.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from transcell.compute.virt import disk

#: Changed chunks are read in runs of at most this many chunks per qemu-img call.
RUN = 16


class NotADelta(Exception):
    """The disk cannot be described against its base image; upload it whole."""


def _classify(extents: list[dict], start: int, end: int, base_size: int) -> str:
    """"base", "zero" or "read" for the chunk [start, end)."""
    overlapping = [e for e in extents
                   if e["start"] < end and e["start"] + e["length"] > start]
    if any(e["depth"] == 0 and e.get("present", True) for e in overlapping):
        return "read"  # the guest wrote here
    if all(not e.get("present", True) for e in overlapping):
        return "zero"  # neither the overlay nor its base has anything here
    if end <= base_size and all(e["depth"] >= 1 for e in overlapping):
        return "base"
    return "read"


def delta_items(path: str, fmt: str, base: dict[str, Any], chunk_size: int
                ) -> tuple[int, Iterator[Any], dict[str, int]]:
    """(virtual size, chunk items for the image store, counters) of a qcow2 overlay.

    Items are ``("known", digest, length)`` for base chunks, an int (the
    length) for zero chunks, and bytes for chunks read from the guest's view.
    """
    if fmt != "qcow2":
        raise NotADelta("only qcow2 overlays are described against a base")
    if base.get("disk_format") != "raw" or base.get("chunk_size") != chunk_size:
        raise NotADelta("the base image does not line up with the store's chunks")
    info = disk.info(path, fmt)
    if not info.get("backing-filename"):
        raise NotADelta("the disk has no backing file")
    size = int(info["virtual-size"])
    base_size = int(base["size"])
    chunks = list(base["chunks"])
    extents = disk.allocation_map(path, fmt)
    count = -(-size // chunk_size)
    kinds = []
    for index in range(count):
        start = index * chunk_size
        end = min(size, start + chunk_size)
        kind = _classify(extents, start, end, base_size)
        if kind == "base" and (index >= len(chunks) or end - start != min(
                chunk_size, base_size - start)):
            kind = "read"
        kinds.append(kind)
    counters = {"chunks": count, "read": kinds.count("read"), "base": kinds.count("base"),
                "zero": kinds.count("zero")}

    def items() -> Iterator[Any]:
        index = 0
        while index < count:
            start = index * chunk_size
            if kinds[index] == "base":
                yield ("known", chunks[index], min(chunk_size, size - start))
                index += 1
            elif kinds[index] == "zero":
                yield min(chunk_size, size - start)
                index += 1
            else:
                run = 1
                while index + run < count and run < RUN and kinds[index + run] == "read":
                    run += 1
                length = min(run * chunk_size, size - start)
                data = disk.read_window(path, fmt, start, length)
                for offset in range(0, length, chunk_size):
                    yield data[offset:offset + chunk_size]
                index += run
    return size, items(), counters


def changed_chunks(snap: dict[str, Any], base: dict[str, Any], zero_digest) -> list[int] | None:
    """Indexes of the snapshot's chunks that differ from the base image's; None if unaligned.

    A chunk past the end of the base that is all zeros is not a change: an
    overlay larger than its base reads zeros there.
    """
    if base.get("disk_format") != "raw" or base.get("chunk_size") != snap.get("chunk_size"):
        return None
    size, base_size, chunk = int(snap["size"]), int(base["size"]), int(snap["chunk_size"])
    changed = []
    for index, digest in enumerate(snap["chunks"]):
        start = index * chunk
        length = min(chunk, size - start)
        if (index < len(base["chunks"]) and base["chunks"][index] == digest
                and min(chunk, base_size - start) == length):
            continue
        if start >= base_size and digest == zero_digest(length):
            continue
        changed.append(index)
    return changed


def write_chunks(path: str, fmt: str, chunk_size: int, indexes: list[int],
                 read_chunks) -> int:
    """Write the chunks at ``indexes`` into the guest's view of ``path``; bytes written.

    ``read_chunks(indexes)`` yields each chunk's bytes, already checked against
    its digest. Consecutive chunks go in one write.
    """
    written = 0
    position = 0
    while position < len(indexes):
        run = [indexes[position]]
        while (position + len(run) < len(indexes) and len(run) < RUN
               and indexes[position + len(run)] == run[-1] + 1):
            run.append(indexes[position + len(run)])
        data = b"".join(read_chunks(run))
        disk.guest_write(path, run[0] * chunk_size, data, fmt)
        written += len(data)
        position += len(run)
    return written
