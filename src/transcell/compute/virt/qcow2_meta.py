"""A qcow2 layer's own clusters, read from its L1/L2 tables without a process.

Before a move decides whether to pre-copy, the source host asks how much the
guest wrote over its image. ``qemu-img map`` answers that exactly but costs a
process (5-8 ms of a control plane of about 100 ms); the cluster tables answer
it with a few ``pread`` calls. Only the plain layouts qemu writes for our
overlays are read here: anything else (another version, encryption, extended
L2 entries, an external data file, a table that points outside the file)
yields None, and the caller asks qemu-img instead.

Nothing here locks the file. A guest writing while the tables are read can tear
the answer; callers use it only where a misjudged estimate is harmless.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from typing import NamedTuple

_MAGIC = b"QFI\xfb"
_HEADER_V2 = 72
_INCOMPAT_DIRTY = 1 << 0
_COPIED = 1 << 63
_OWN_BITS = ~_COPIED & 0xFFFFFFFFFFFFFFFF  # data, compressed (62) or the zero flag (0)
_TABLE_OFFSET = 0x00FFFFFFFFFFFE00  # L2 table offset bits of an L1 entry
_MIN_CLUSTER_BITS, _MAX_CLUSTER_BITS = 9, 21
_MAX_L1_BYTES = 32 * 1024 * 1024  # qemu's own ceiling; more is a damaged header
_LITTLE = sys.byteorder == "little"


def _entries(raw: bytes) -> array:
    table = array("Q", raw)
    if _LITTLE:
        table.byteswap()
    return table


class Header(NamedTuple):
    """The qcow2 header's fields; the v2 table fields are None in a header shorter
    than a v2 one, and the v3 ones (``incompat``, ``header_length``) outside v3."""

    version: int
    backed: bool  # names a backing file
    size: int  # virtual size
    cluster_bits: int | None = None
    crypt: int | None = None
    l1_size: int | None = None
    l1_offset: int | None = None
    incompat: int | None = None
    header_length: int | None = None


#: The most of a header anything here reads: version 3's fixed part.
HEADER_BYTES = 104


def parse_header(head: bytes) -> Header | None:
    """The fields of a qcow2 header read from offset 0, or None when ``head`` is not
    the start of a qcow2 of version 2 or 3; the one reading of the format's header,
    for the table walk here and for ``disk.qcow2_header``."""
    if len(head) < 32 or head[:4] != _MAGIC:
        return None
    version, backing_offset, backing_len, _bits, size = struct.unpack_from(">IQIIQ", head, 4)
    if version not in (2, 3):
        return None
    header = Header(version, bool(backing_offset and backing_len), size)
    if len(head) < _HEADER_V2:
        return header
    cluster_bits, _, crypt, l1_size, l1_offset = struct.unpack_from(">IQIIQ", head, 20)
    header = header._replace(cluster_bits=cluster_bits, crypt=crypt, l1_size=l1_size,
                             l1_offset=l1_offset)
    if version == 3 and len(head) >= HEADER_BYTES:
        header = header._replace(incompat=struct.unpack_from(">Q", head, 72)[0],
                                 header_length=struct.unpack_from(">I", head, 100)[0])
    return header


def _header(fd: int) -> tuple[int, int, int, int] | None:
    """(cluster_bits, virtual size, l1_size, l1_offset) of a layout the walk reads,
    or None when unusual."""
    header = parse_header(os.pread(fd, HEADER_BYTES, 0))
    if header is None or header.cluster_bits is None:
        return None
    if header.version == 3:
        # dirty only means refcounts may lag; every other bit changes how the
        # tables read (corrupt, external data, extended L2, compression type...)
        if header.incompat is None or header.incompat & ~_INCOMPAT_DIRTY or \
                header.header_length < HEADER_BYTES:
            return None
    cluster_bits, size = header.cluster_bits, header.size
    if header.crypt != 0 or not _MIN_CLUSTER_BITS <= cluster_bits <= _MAX_CLUSTER_BITS:
        return None
    cluster_size = 1 << cluster_bits
    l1_size, l1_offset = header.l1_size, header.l1_offset
    if l1_offset % cluster_size or l1_size * 8 > _MAX_L1_BYTES:
        return None
    covered = l1_size * (cluster_size // 8) * cluster_size
    if covered < size:
        return None
    return cluster_bits, size, l1_size, l1_offset


def _own_clusters(fd: int, cluster_bits: int, size: int, l1_size: int,
                  l1_offset: int) -> list[int] | None:
    cluster_size = 1 << cluster_bits
    per_l2 = cluster_size // 8
    clusters = (size + cluster_size - 1) >> cluster_bits
    wanted_l1 = min(l1_size, (clusters + per_l2 - 1) // per_l2)
    raw_l1 = os.pread(fd, wanted_l1 * 8, l1_offset)
    if len(raw_l1) != wanted_l1 * 8:
        return None
    own: list[int] = []
    for l1_index, l1_entry in enumerate(_entries(raw_l1)):
        l2_offset = l1_entry & _TABLE_OFFSET
        if not l2_offset:
            continue  # no table: every cluster in the range reads through
        if l2_offset % cluster_size:
            return None
        raw_l2 = os.pread(fd, cluster_size, l2_offset)
        if len(raw_l2) != cluster_size:
            return None
        if raw_l2 == bytes(cluster_size):
            continue  # an empty table, skipped without decoding its entries
        base = l1_index * per_l2
        limit = clusters - base
        own.extend(base + i for i, entry in enumerate(_entries(raw_l2))
                   if entry & _OWN_BITS and i < limit)
    return own


def _runs(own: list[int], cluster_bits: int, size: int) -> list[dict]:
    extents: list[dict] = []
    run_first = run_next = -1
    for index in own + [-2]:
        if index == run_next:
            run_next += 1
            continue
        if run_first >= 0:
            start = run_first << cluster_bits
            end = min(run_next << cluster_bits, size)
            extents.append({"start": start, "length": end - start,
                            "depth": 0, "present": True})
        run_first, run_next = index, index + 1
    return extents


def own_extents(path: str) -> list[dict] | None:
    """The ranges a qcow2 file holds itself (data, compressed or zero clusters),
    as ``qemu-img map`` depth-0 entries clipped to the virtual size.

    Ranges the file does not hold are left out rather than listed as
    read-through: ``snapshot.own_chunks`` reads only depth 0. None when the file
    is not a qcow2 this reader understands or its tables do not add up (the
    caller then asks qemu-img); never raises for a damaged or foreign file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        found = _header(fd)
        if found is None:
            return None
        cluster_bits, size, l1_size, l1_offset = found
        own = _own_clusters(fd, cluster_bits, size, l1_size, l1_offset)
    except (OSError, ValueError, OverflowError, struct.error):
        return None
    finally:
        os.close(fd)
    if own is None:
        return None
    return _runs(own, cluster_bits, size)
