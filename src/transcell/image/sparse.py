"""Reading disks by their data, not their size, and naming them by their chunks.

A moved server's disk is mostly holes: a 1 GiB disk may hold a few MiB of
data. Reading and hashing every zero would make a move cost its disk size;
here holes are found with SEEK_DATA/SEEK_HOLE and known to be zero chunks
without being read. The whole-disk digest used for moves is a digest of the
chunk list ("sha256-chunks"), which a host can recompute from its own copy
of the bytes at the cost of its data alone, and which changes if any byte
of any chunk, or the order of chunks, changes.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from transcell.image.store import digest_of

TREE_ALGO = "sha256-chunks"


def _hole_at(fd: int, start: int, end: int) -> bool:
    """Whether [start, end) of the file is one hole (reads as zeros)."""
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # nothing but a hole up to the end of the file
            return True
        return False  # no hole support: read it
    return data >= end


def chunks_of_sparse_file(path: str, chunk_size: int) -> Iterator[bytes | int]:
    """The file's chunks in order: bytes for chunks with data, the length for holes."""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            if _hole_at(fd, offset, offset + length):
                yield length
            else:
                data = os.pread(fd, length, offset)
                if len(data) != length:
                    raise OSError(f"{path} shrank while being read")
                yield data
            offset += length


def tree_digest(layout: Iterable[tuple[str, int]]) -> str:
    """The digest of a chunk list: each chunk's sha256 and length, in order."""
    whole = hashlib.sha256()
    for digest, length in layout:
        whole.update(f"{digest}:{length}\n".encode())
    return whole.hexdigest()


def file_tree_digest(path: str, chunk_size: int, zero_digest) -> str:
    """``tree_digest`` of a local file, hashing only the chunks that hold data."""
    def layout() -> Iterator[tuple[str, int]]:
        for chunk in chunks_of_sparse_file(path, chunk_size):
            if isinstance(chunk, int):
                yield zero_digest(chunk), chunk
            elif chunk.count(0) == len(chunk):
                yield zero_digest(len(chunk)), len(chunk)
            else:
                yield digest_of(chunk), len(chunk)
    return tree_digest(layout())


T = TypeVar("T")

#: Chunks read ahead of the one being written; hashing releases the GIL, so the
#: reads and their checks run on other cores while the caller writes.
PREFETCH = 4


def prefetch(items: Iterable[T], fetch: Callable[[T], Any], workers: int = 2
             ) -> Iterator[tuple[T, Any]]:
    """``(item, fetch(item))`` in order, with a few fetches running ahead in threads."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk") as pool:
        pending: collections.deque = collections.deque()
        for item in source:
            pending.append((item, pool.submit(fetch, item)))
            if len(pending) >= PREFETCH:
                break
        while pending:
            item, future = pending.popleft()
            following = next(source, None)
            if following is not None:
                pending.append((following, pool.submit(fetch, following)))
            yield item, future.result()
