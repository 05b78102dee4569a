"""The move's data path as a pipeline on every core.

A disk that crosses cells goes read -> hash -> store at the source and fetch
-> verify -> write at the target. Each of those stages is a system call or a
hashlib call on a multi-megabyte buffer, and all of them release the GIL, so
a plain thread pool runs one chunk per core at once: chunk i is hashed while
chunk i+1 is read and chunk i-1 is written. Results come back in chunk order
(the manifest is an ordered list), but the work does not wait for order:
each chunk lands at its own offset, so the order in which workers finish
cannot change a byte of the result.

Holes and zero chunks cost nothing anywhere: a reader reports them by length
without reading them, their digest is known from their length alone, they are
never sent, and the target leaves them as holes.

Where the store and the target share a filesystem (the embedded layout), the
target does not read a chunk through Python at all: the store's chunk file is
cloned (FICLONERANGE, on filesystems that share blocks) or copied in the kernel
(``copy_file_range``) into the disk. It is not re-hashed when the store can
show that the file is the very one it hashed when it wrote it: see
``ChunkStore.sealed_path`` for exactly what that trusts.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import functools
import hashlib
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: One worker per core, and one more so a core is never idle while a worker waits
#: on a page it is reading or writing.
WORKERS = (os.cpu_count() or 2) + 1
#: Chunks handed out ahead of the one being consumed; bounds memory to
#: about this many chunks per pipeline.
IN_FLIGHT = 2 * WORKERS
#: Granularity of holes left in a written file.
SPARSE_BLOCK = 64 * 1024
#: ioctl number of FICLONERANGE (``_IOW(0x94, 13, struct file_clone_range)``).
_FICLONERANGE = 0x4020940D

T = TypeVar("T")


@functools.lru_cache(maxsize=4)
def zeros(length: int) -> bytes:
    return bytes(length)


@functools.lru_cache(maxsize=16)
def zero_digest(length: int) -> str:
    """A chunk of zeros is named by its length alone; knowing that skips hashing holes."""
    return hashlib.sha256(zeros(length)).hexdigest()


def is_zero(data: bytes | memoryview) -> bool:
    return data == zeros(len(data))


# -- what a worker reads -------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRead:
    """A chunk with data, read only when a worker gets to it (not by the producer).

    ``parts`` are ``(path, file offset, length)`` runs read with ``pread`` and
    ``None`` paths for runs of zeros; ``fallback`` (when set) reads the whole
    chunk another way, for a disk whose layout cannot be read directly.
    """

    length: int
    parts: tuple[tuple[str | None, int, int], ...] = ()
    fallback: Callable[[], bytes] | None = None

    @property
    def reads_nothing(self) -> bool:
        """Every part is zeros: the chunk is a hole and needs no read at all."""
        return self.fallback is None and all(path is None for path, _, _ in self.parts)

    def read(self, into: bytearray | None = None) -> bytes:
        """The chunk's bytes; read into ``into`` (reused, so its pages are already
        mapped) when it is given and as long as the chunk, else into new memory."""
        if self.fallback is not None:
            data = self.fallback()
            if len(data) != self.length:
                raise OSError(f"read {len(data)} bytes of a {self.length}-byte chunk")
            return data
        buf = into if into is not None and len(into) == self.length else bytearray(
            self.length)
        view = memoryview(buf)
        at = 0
        fds: dict[str, int] = {}
        try:
            for path, offset, length in self.parts:
                if path is None:
                    if buf is into:  # a reused buffer holds the last chunk's bytes
                        view[at:at + length] = zeros(length)
                else:
                    fd = fds.get(path)
                    if fd is None:
                        fd = fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    got = os.preadv(fd, [view[at:at + length]], offset)
                    if got != length:
                        raise OSError(f"{path} ended at {offset + got} while reading a chunk")
                at += length
        finally:
            for fd in fds.values():
                os.close(fd)
        if at != self.length:
            raise OSError(f"a chunk's parts cover {at} of its {self.length} bytes")
        return buf  # type: ignore[return-value]  # bytes-like; copying it would cost a pass


def file_chunk(path: str, offset: int, length: int) -> ChunkRead:
    return ChunkRead(length, ((path, offset, length),))


def _hole_at(fd: int, start: int, end: int) -> bool:
    """Whether [start, end) of the file is one hole (reads as zeros)."""
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError as exc:
        return exc.errno == errno.ENXIO  # ENXIO: only a hole up to the end of the file
    return data >= end


def sparse_file_items(path: str, chunk_size: int) -> Iterator[int | ChunkRead]:
    """A file's chunks in order: the length for a hole (never read), a ChunkRead for data.

    Holes are found with SEEK_DATA, here, in the producer; the data itself is
    read by whichever worker takes the chunk.
    """
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        for offset in range(0, size, chunk_size):
            length = min(chunk_size, size - offset)
            yield length if _hole_at(fd, offset, offset + length) else file_chunk(
                path, offset, length)


def resolve(item: Any) -> Any:
    """An item as the store's protocol knew it before lazy reads: bytes, int or tuple."""
    return item.read() if isinstance(item, ChunkRead) else item


# -- where the time goes ---------------------------------------------------------------


@dataclass
class Timings:
    """Seconds and bytes per stage, summed over workers (so seconds can exceed wall time)."""

    seconds: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))
    nbytes: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, started: float, nbytes: int) -> float:
        now = time.perf_counter()
        with self._lock:
            self.seconds[stage] += now - started
            self.nbytes[stage] += nbytes
        return now

    def as_dict(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {stage: {"seconds": round(self.seconds[stage], 4),
                            "bytes": self.nbytes[stage]} for stage in self.seconds}


# -- running it ------------------------------------------------------------------------------


def ordered(items: Iterable[T], work: Callable[[T], Any], workers: int | None = None,
            in_flight: int | None = None,
            inline: Callable[[T], bool] | None = None) -> Iterator[tuple[T, Any]]:
    """``(item, work(item))`` in the items' order, ``in_flight`` of them running at once.

    The first failure (of a worker, of the producer or of the consumer) stops
    the pipeline: chunks not started are cancelled and those running are
    waited for before the error goes on, so a caller that cleans up after it
    never races a worker still writing.

    Items for which ``inline`` is true are worked on in the calling thread as
    they are taken: for work that reads and hashes nothing (a hole, a chunk
    named by its digest) handing it to a worker and back costs more than the
    work, and a disk that is all such chunks would pay that a thousand times.
    """
    workers = WORKERS if workers is None else workers
    in_flight = max(workers, IN_FLIGHT if in_flight is None else in_flight)
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="data-path")
    pending: collections.deque[tuple[T, Future | _Done]] = collections.deque()

    def submit(item: T) -> Future | _Done:
        if inline is None or not inline(item):
            return pool.submit(work, item)
        try:
            return _Done(work(item))
        except BaseException as exc:  # raised where the consumer takes it, in order
            return _Done(error=exc)

    try:
        for item in source:
            pending.append((item, submit(item)))
            if len(pending) >= in_flight:
                break
        while pending:
            item, future = pending.popleft()
            result = future.result()
            following = next(source, _END)
            if following is not _END:
                pending.append((following, submit(following)))  # type: ignore[arg-type]
            yield item, result
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()


class _Done:
    """An inline item's outcome, kept as a Future would keep it but without the
    condition and lock each Future makes: a disk of known chunks has a thousand."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any = None, error: BaseException | None = None):
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def cancel(self) -> bool:
        return False


# -- the source: read, hash, store -------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What one chunk became: its name, length, whether this upload wrote it, its bytes."""

    digest: str
    length: int
    wrote: bool
    data: bytes | None  # None for a zero chunk and for a chunk named as already held
    known: bool = False
    head: bytes | None = None  # the first bytes, when ``data`` is not kept
    taken: bool = False  # named as held by a move's target, not by the store


class Ingest:
    """The source's stages for one chunk, run by a worker: read, hash, store.

    ``claim(digest)`` pins a digest to the upload and says whether the store
    lacks it; ``put(digest, data)`` stores bytes already hashed. A digest met
    twice in one upload is written once: the second worker sees the claim.

    With ``place(index, digest, data)`` (a spool: :mod:`transcell.image.spool`)
    a chunk the store lacks is written at its own index instead, every time it
    occurs, since a spool is the disk's layout. ``taken(index, digest)`` says
    whether a known chunk is one a move's target holds instead of the store.
    Both need the chunk's index: call with ``(item, index)``.
    """

    def __init__(self, claim: Callable[[str], bool], put: Callable[[str, bytes], bool],
                 missing: Callable[[str], Exception], timings: Timings | None = None,
                 store_zeros: bool = True, keep_data: bool = True,
                 place: Callable[[int, str, bytes], None] | None = None,
                 taken: Callable[[int, str], bool] | None = None):
        self.claim, self.put, self.missing = claim, put, missing
        self.place, self.taken = place, taken
        self.timings = timings or Timings()
        self.store_zeros = store_zeros
        #: Without it a worker reads every chunk into one buffer of its own, reused:
        #: no page of it is faulted in again, and nothing outlives the chunk's store.
        self.keep_data = keep_data
        self._buffers = threading.local()
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        #: Digests this upload wrote, booked by the worker that wrote them, so a
        #: failure can collect them even if nobody consumed that chunk's result.
        self.written: list[str] = []

    def _first(self, digest: str) -> bool:
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            return True

    def __call__(self, item: Any, index: int | None = None) -> Stored:
        if isinstance(item, tuple):  # ("known", digest, length): must be held already
            _, digest, length = item
            if not self.store_zeros and digest == zero_digest(length):
                return Stored(digest, length, False, None, known=True)  # nothing to hold
            if index is not None and self.taken is not None and self.taken(index, digest):
                return Stored(digest, length, False, None, known=True, taken=True)
            if self.claim(digest):
                raise self.missing(digest)
            return Stored(digest, length, False, None, known=True)
        if isinstance(item, int):  # a hole: never read, never hashed
            digest, data, length = zero_digest(item), None, item
        else:
            started = time.perf_counter()
            data = item.read(None if self.keep_data else self._buffer(item.length)) \
                if isinstance(item, ChunkRead) else item
            length = len(data)
            started = self.timings.add("read", started, length)
            if is_zero(data):
                digest, data = zero_digest(length), None
            else:
                digest = hashlib.sha256(data).hexdigest()
                self.timings.add("hash", started, length)
        if data is None and not self.store_zeros:
            return Stored(digest, length, False, None)
        wrote = False
        if self.place is not None and index is not None and data is not None:
            if self.claim(digest):
                started = time.perf_counter()
                self.place(index, digest, data)
                wrote = True
                self.timings.add("store", started, length)
        elif self._first(digest) and self.claim(digest):
            started = time.perf_counter()
            wrote = self.put(digest, zeros(length) if data is None else data)
            if wrote:
                with self._lock:
                    self.written.append(digest)
            self.timings.add("store", started, length if wrote else 0)
        if not self.keep_data:
            head = None if data is None else bytes(data[:512])
            return Stored(digest, length, wrote, None, head=head)
        return Stored(digest, length, wrote, data)

    def _buffer(self, length: int) -> bytearray:
        buf = getattr(self._buffers, "buf", None)
        if buf is None or len(buf) != length:
            buf = self._buffers.buf = bytearray(length)
        return buf


# -- the target: fetch, verify, write -------------------------------------------------------


def write_sparse(fd: int, data: bytes | memoryview, offset: int) -> int:
    """Write the non-zero runs of ``data``; holes stay unallocated."""
    view = memoryview(data)
    zero = zeros(SPARSE_BLOCK)
    written = 0
    run_start = None
    for start in range(0, len(view), SPARSE_BLOCK):
        block = view[start:start + SPARSE_BLOCK]
        if block == zero[:len(block)]:
            if run_start is not None:
                written += os.pwrite(fd, view[run_start:start], offset + run_start)
                run_start = None
        elif run_start is None:
            run_start = start
    if run_start is not None:
        written += os.pwrite(fd, view[run_start:], offset + run_start)
    return written


def copy_range(src_path: str, dest_fd: int, offset: int, length: int) -> str:
    """Put ``length`` bytes of ``src_path`` at ``offset`` of ``dest_fd`` without Python
    touching them: a block clone where the filesystem shares blocks, else a kernel copy.

    Returns how ("clone" or "copy"). A short source raises OSError.
    """
    src = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.ioctl(dest_fd, _FICLONERANGE, struct.pack("qQQQ", src, 0, length, offset))
            return "clone"
        except OSError:
            pass  # not supported here (ext4), or not block-aligned: copy instead
        done = 0
        while done < length:
            n = os.copy_file_range(src, dest_fd, length - done, done, offset + done)
            if n == 0:
                raise OSError(f"{src_path} ended after {done} of {length} bytes")
            done += n
        return "copy"
    finally:
        os.close(src)


class Rebuild:
    """The target's stages for one chunk, run by a worker: fetch, verify, write.

    ``fetch(digest, length)`` returns bytes already checked against their
    digest. ``sealed(digest, length)``, where the store shares this host,
    returns the path of a chunk file the store hashed when it wrote it and
    that has not changed since, or None; such a chunk is cloned or copied in
    the kernel, and the seal is checked again after the copy so that a file
    changed during it is fetched and verified after all.
    """

    def __init__(self, fd: int, fetch: Callable[[str, int], bytes],
                 sealed: Callable[[str, int], str | None] | None = None,
                 timings: Timings | None = None):
        self.fd, self.fetch, self.sealed = fd, fetch, sealed
        self.timings = timings or Timings()

    def __call__(self, item: tuple[int, str, int]) -> int:
        offset, digest, length = item
        if digest == zero_digest(length):
            return 0  # a hole in the new file: nothing fetched, hashed or written
        if self.sealed is not None:
            path = self.sealed(digest, length)
            if path is not None:
                started = time.perf_counter()
                try:
                    how = copy_range(path, self.fd, offset, length)
                except OSError:
                    how = None
                if how is not None and self.sealed(digest, length) == path:
                    self.timings.add(how, started, length)
                    return length
        started = time.perf_counter()
        data = self.fetch(digest, length)
        started = self.timings.add("fetch+verify", started, length)
        written = write_sparse(self.fd, data, offset)
        self.timings.add("write", started, written)
        return written


def layout_offsets(layout: Iterable[tuple[str, int]]) -> Iterator[tuple[int, str, int]]:
    """``(offset, digest, length)`` of each chunk of a layout."""
    offset = 0
    for digest, length in layout:
        yield offset, digest, length
        offset += length
