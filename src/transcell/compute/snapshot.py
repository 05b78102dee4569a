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

import bisect
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from transcell import exception, statefiles
from transcell.compute.virt import disk, disk_chain
from transcell.image import pipeline

#: Chunks written by one qemu-io run (each is one ``-c`` argument).
QEMU_IO_BATCH = 256


class NotADelta(Exception):
    """The disk cannot be described against its base image; upload it whole."""


def _classify(extents: list[dict], start: int, end: int, base_size: int,
              base_depth: int = 1) -> str:
    """"base", "zero" or "read" for the chunk [start, end).

    ``base_depth`` is the base image's place in the chain: 1 below a plain
    overlay, deeper while a pre-copy has frozen layers between them.
    """
    overlapping = [e for e in extents
                   if e["start"] < end and e["start"] + e["length"] > start]
    if any(e["depth"] < base_depth and e.get("present", True) for e in overlapping):
        return "read"  # the guest wrote here
    if all(not e.get("present", True) for e in overlapping):
        return "zero"  # neither the overlay nor its base has anything here
    if end <= base_size and all(e["depth"] >= base_depth for e in overlapping):
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
    header = disk.qcow2_header(path)  # what qemu-img info would say, without a process
    if header is None:
        info = disk.info(path, fmt)
        header = int(info["virtual-size"]), bool(info.get("backing-filename"))
    size, backed = header
    if not backed:
        raise NotADelta("the disk has no backing file")
    base_size = int(base["size"])
    chunks = list(base["chunks"])
    extents = disk.allocation_map(path, fmt)
    # a pre-copy's frozen layers sit between the overlay and its image: the image is
    # then deeper than 1, and only the chain itself says how deep
    files = (_chain_files(path, fmt)
             if disk_chain.chained(disk_chain.root_of(path)) else None)
    count = -(-size // chunk_size)
    kinds = []
    for index in range(count):
        start = index * chunk_size
        end = min(size, start + chunk_size)
        kind = _classify(extents, start, end, base_size, len(files) - 1 if files else 1)
        if kind == "base" and (index >= len(chunks) or end - start != min(
                chunk_size, base_size - start)):
            kind = "read"
        kinds.append(kind)
    counters = {"chunks": count, "read": kinds.count("read"), "base": kinds.count("base"),
                "zero": kinds.count("zero")}
    # the backing chain's files are asked of qemu-img only when a chunk is to be read:
    # a disk the guest never wrote is proven unchanged by its map alone
    readers: list[ExtentReader] = []

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
                # read by a pipeline worker, straight from the files that hold it
                if not readers:
                    readers.append(ExtentReader(path, fmt, extents, files))
                read = readers[0].chunk(start, min(chunk_size, size - start))
                yield read.length if read.reads_nothing else read
                index += 1
    return size, items(), counters


class ExtentReader:
    """Reads a qcow2 disk's guest view from the files themselves, not through qemu-img.

    ``qemu-img map`` says, for every extent, whether it reads as zeros, and
    where its data lies: at which offset of which file of the backing chain.
    A stopped guest's disk does not change, so those bytes can be ``pread``
    directly, by as many threads as there are cores; a zero extent is not read
    at all. The map is taken once: a disk that is still being written (a
    running guest) must not be read this way. Extents whose data has no plain
    offset (compressed clusters) or lives in a layer that cannot be read
    directly (encrypted, or with an external data file) are read with
    ``read_window`` instead.
    """

    def __init__(self, path: str, fmt: str, extents: list[dict] | None = None,
                 files: list[str | None] | None = None):
        self.path, self.fmt = path, fmt
        self.extents = extents if extents is not None else disk.allocation_map(path, fmt)
        self.starts = [e["start"] for e in self.extents]
        self.files = files if files is not None else _chain_files(path, fmt)

    def chunk(self, start: int, length: int) -> pipeline.ChunkRead:
        end = start + length
        parts: list[tuple[str | None, int, int]] = []
        at = start
        index = max(0, bisect.bisect_right(self.starts, start) - 1)
        while at < end and index < len(self.extents):
            extent = self.extents[index]
            e_end = extent["start"] + extent["length"]
            if e_end <= at:
                index += 1
                continue
            run = min(end, e_end) - at
            if not extent.get("data", False) and (extent.get("zero", False)
                                                 or not extent.get("present", True)):
                parts.append((None, 0, run))
            elif (extent.get("data") and "offset" in extent
                  and extent["depth"] < len(self.files) and self.files[extent["depth"]]):
                parts.append((self.files[extent["depth"]],
                              extent["offset"] + at - extent["start"], run))
            else:
                return self._window(start, length)
            at += run
            index += 1
        if at < end:  # past the map's end: the disk reads zeros there
            parts.append((None, 0, end - at))
        return pipeline.ChunkRead(length, tuple(parts))

    def _window(self, start: int, length: int) -> pipeline.ChunkRead:
        path, fmt = self.path, self.fmt
        return pipeline.ChunkRead(length, fallback=lambda: disk.read_window(
            path, fmt, start, length)[:length])

    def items(self, size: int, chunk_size: int) -> Iterator[int | pipeline.ChunkRead]:
        """The disk's chunks for the image store: a length for chunks that read as zeros
        (never read), a lazy read for the others."""
        for start in range(0, size, chunk_size):
            length = min(chunk_size, size - start)
            read = self.chunk(start, length)
            yield length if read.reads_nothing else read


def _chain_files(path: str, fmt: str) -> list[str | None]:
    """The files of the disk's backing chain, top first; None where one cannot be
    read directly (an encrypted layer)."""
    out = disk._run([disk.QEMU_IMG, "info", "--backing-chain", "-U", "--output=json",
                     "-f", fmt, os.path.abspath(path)], f"qemu-img info {path}")
    chain = json.loads(out)
    files: list[str | None] = []
    name: str | None = os.path.abspath(path)
    for layer in chain:
        specific = layer.get("format-specific", {}).get("data", {})
        # an encrypted layer's bytes are not the guest's, and a layer with an external
        # data file keeps them elsewhere than the offsets the map gives for it
        opaque = layer.get("encrypted") or specific.get("encrypt") or specific.get("data-file")
        files.append(None if opaque or name is None else name)
        name = layer.get("full-backing-filename") or layer.get("backing-filename")
    return files


def whole_items(path: str, fmt: str, chunk_size: int
                ) -> tuple[int, Iterator[int | pipeline.ChunkRead]]:
    """(virtual size, items) of a whole disk read through its own extents, no flatten."""
    size = disk.virtual_size(path, fmt)
    return size, ExtentReader(path, fmt).items(size, chunk_size)


def own_chunks(extents: list[dict], chunk_size: int) -> list[int]:
    """Indexes of the chunks the top layer's own clusters touch (``depth`` 0 in a map)."""
    touched: set[int] = set()
    for extent in extents:
        if extent["depth"] == 0 and extent.get("present", True) and extent["length"]:
            first = extent["start"] // chunk_size
            last = (extent["start"] + extent["length"] - 1) // chunk_size
            touched.update(range(first, last + 1))
    return sorted(touched)


def round_items(layer: str, fmt: str, previous: dict[str, Any], zero_digest
                ) -> tuple[int, Iterator[Any], list[int]]:
    """(virtual size, items, changed indexes) of a disk whose top layer ``layer``
    holds only what the guest wrote since the image ``previous`` was taken.

    A pre-copy round and the final copy after the stop send just those chunks:
    every chunk the layer does not touch is named by ``previous``'s digest
    without being read, and the layer's own clusters come from ``qemu-img
    map``, metadata only. ``layer`` must not change while the items are read
    (frozen, or its guest stopped).
    """
    chunk_size = int(previous["chunk_size"])
    extents = disk.allocation_map(layer, fmt)
    size = extents[-1]["start"] + extents[-1]["length"] if extents else 0
    if size != int(previous["size"]):
        raise NotADelta(f"the disk is {size} bytes, the previous copy {previous['size']}")
    chunks = list(previous["chunks"])
    changed = set(own_chunks(extents, chunk_size))
    reader = ExtentReader(layer, fmt, extents)

    def items() -> Iterator[Any]:
        for index in range(len(chunks)):
            start = index * chunk_size
            length = min(chunk_size, size - start)
            if index in changed:
                read = reader.chunk(start, length)
                yield length if read.reads_nothing else read
            elif chunks[index] == zero_digest(length):
                yield length
            else:
                yield ("known", chunks[index], length)
    return size, items(), sorted(changed)


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


def write_changed(path: str, fmt: str, chunk_size: int,
                  changed: list[tuple[int, str, int]],
                  sealed: Callable[[str, int], str | None],
                  read_chunks: Callable[[list[int]], Iterable[bytes]]) -> int:
    """Write the chunks ``(index, digest, length)`` into the guest's view of ``path``.

    A chunk whose store file is sealed (hashed by the store when written, and
    unchanged since: ``ChunkStore.sealed_path``) is handed to qemu-io as that
    file, so its bytes are neither read through Python nor copied first. Every
    other chunk comes from ``read_chunks``, which checks each against its
    digest, through a private temporary file. All go in one qemu-io run. A
    sealed file that changed while qemu-io read it is written again from
    checked bytes, so what lands is always what the digests name.
    """
    directory = os.path.dirname(os.path.abspath(path))
    written = 0
    with tempfile.TemporaryDirectory(prefix=".chunks-", dir=directory) as tmp:
        sources: list[tuple[int, str, int, str | None]] = []
        unsealed: list[tuple[int, int]] = []
        for index, digest, length in changed:
            found = sealed(digest, length)
            if found is None:
                unsealed.append((index, length))
            else:
                sources.append((index, found, length, digest))
        sources += _checked_files(tmp, unsealed, read_chunks)
        _qemu_io_write(path, fmt, chunk_size, tmp, sources)
        written += sum(length for _, _, length, _ in sources)
        broken = [(index, length) for index, found, length, digest in sources
                  if digest is not None and sealed(digest, length) != found]
        if broken:
            _qemu_io_write(path, fmt, chunk_size, tmp,
                           _checked_files(tmp, broken, read_chunks))
    return written


def _checked_files(tmp: str, wanted: list[tuple[int, int]],
                   read_chunks: Callable[[list[int]], Iterable[bytes]]
                   ) -> list[tuple[int, str, int, None]]:
    files = []
    indexes = [index for index, _ in wanted]
    for (index, length), data in zip(wanted, read_chunks(indexes), strict=True):
        if len(data) != length:
            raise exception.DiskError(reason=f"chunk {index} holds {len(data)} bytes, "
                                             f"not {length}")
        name = os.path.join(tmp, f"checked-{index}")
        statefiles.write_atomic(name, data, durable=False)
        files.append((index, name, length, None))
    return files


def _qemu_io_write(path: str, fmt: str, chunk_size: int, tmp: str,
                   sources: list[tuple[int, str, int, str | None]]) -> None:
    """One qemu-io run per batch of chunks; sources are linked into ``tmp`` under
    names without spaces, since qemu-io splits its commands on them."""
    for start in range(0, len(sources), QEMU_IO_BATCH):
        commands: list[str] = []
        for index, source, length, _ in sources[start:start + QEMU_IO_BATCH]:
            link = os.path.join(tmp, f"link-{index}-{uuid.uuid4().hex[:8]}")
            os.symlink(source, link)
            commands += ["-c", f"write -s {os.path.basename(link)} {index * chunk_size} "
                               f"{length}"]
        # writeback: no flush after every write, as no other write of a move syncs
        out = disk._run([disk.QEMU_IO, "-t", "writeback", "-f", fmt, *commands,
                         os.path.abspath(path)], f"write chunks into {path}", cwd=tmp)
        if "failed" in out:
            raise exception.DiskError(reason=f"writing chunks into {path}: {out.strip()}")
