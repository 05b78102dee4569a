"""The file data path of the image service: what compute hosts use to move disks.

``download_to_file`` rebuilds an image as a local file; ``read_chunks`` hands
over some of its chunks. Every chunk is checked against its digest on the way
(or comes from a chunk file or spool the store sealed when it hashed it), and
the whole image's digest is checked before a file is put in place, because a
disk that crossed cells must be bit for bit the one that left. A move's
target may also take the image's spool over (:mod:`transcell.image.spool`)
instead of copying the chunks it holds.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from transcell import statefiles
from transcell.context import RequestContext
from transcell.image import pipeline, sparse
from transcell.image.spool import ChunksTaken, taken_bytes

if TYPE_CHECKING:
    from transcell.image.store import ChunkStore

Progress = Any  # a callable (done, total): see ``transcell.image.service.Progress``

_zeros = pipeline.zeros
zero_digest = pipeline.zero_digest


class _BackgroundHash:
    """A hash fed from another thread.

    hashlib releases the GIL on large buffers, so running the whole-image
    hash beside the per-chunk sha256 nearly halves the time to move a disk.
    """

    def __init__(self, name: str):
        self._hash = hashlib.new(name, usedforsecurity=False)
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name=f"image-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def update(self, data: bytes | memoryview) -> None:
        self._queue.put(data)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


class FileDataPath:
    """Mixed into ImageService, which gives the record helpers declared here."""

    store: ChunkStore

    def _readable(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _layout(self, record: dict[str, Any]) -> Iterator[tuple[str, int]]:
        raise NotImplementedError

    def _chunk(self, digest: str, length: int) -> bytes:
        raise NotImplementedError

    @staticmethod
    def _check_whole(record: dict[str, Any], actual: str) -> None:
        raise NotImplementedError

    @staticmethod
    def _check_modify(ctx: RequestContext, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def download_to_file(self, ctx: RequestContext, image_id: str, dest_path: str,
                         progress: Progress | None = None, take: bool = False
                         ) -> dict[str, Any]:
        """Rebuild an image as a sparse file; nothing appears at ``dest_path`` unless
        every chunk and the whole-image sha256 match.

        With ``take`` (a move's target, on the store's filesystem) the image's
        spool, if it has one, becomes the file by rename and only the chunks
        it does not hold are written into it; the image is then good only for
        patching that file (its chunks are ``taken``).
        """
        record = self._readable(ctx, image_id)
        size = record["size"]
        directory = os.path.dirname(os.path.abspath(dest_path))
        tmp = os.path.join(directory, f".{os.path.basename(dest_path)}.part-{uuid.uuid4().hex}")
        # Chunk-list images are verified chunk by chunk (the store checks each
        # chunk's sha256 on read) and then as a list; zeros are never hashed.
        tree = record.get("os_hash_algo") == sparse.TREE_ALGO
        taken: set[int] = set()
        got = None
        if take and tree and record.get("spool"):
            self._check_modify(ctx, record)
            got = self.store.spools.take(image_id, tmp)
        if got is None:
            refuse_taken(record, range(len(record.get("chunks") or ())))
        fd = -1
        whole = None if tree else _BackgroundHash("sha256")
        written_digest = None
        timings = pipeline.Timings()
        started = time.perf_counter()
        try:
            if got is not None:  # the spool is this file now: the rest goes into it
                taken = set(got)
                fd = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                record = self._readable(ctx, image_id)
            else:
                fd = statefiles.create_private(tmp)  # a disk or cached image: guest data
            written = offset = 0
            if tree:
                # chunks fetched, verified and written by workers at their own offsets,
                # several at once; a chunk file this store sealed is copied in the kernel
                chunk_size = int(record["chunk_size"])
                rebuild = pipeline.Rebuild(fd, self._chunk,
                                           self.store.sealed_path, timings)
                wanted = (item for item in pipeline.layout_offsets(
                    self._layout(record))
                    if item[0] // chunk_size not in taken)
                for (offset, _digest, length), wrote in pipeline.ordered(wanted, rebuild):
                    written += wrote
                    if progress is not None:
                        progress(offset + length, size)
            else:
                # the whole-image sha256 below checks every byte, so a sealed chunk
                # file is read without a sha256 of its own (one pass, not two)
                for (_digest, length), data in sparse.prefetch(
                        self._layout(record), self._fetch_whole):
                    if data is None:
                        whole.update(_zeros(length))  # type: ignore[union-attr]
                    else:
                        whole.update(data)  # type: ignore[union-attr]
                        written += pipeline.write_sparse(fd, data, offset)
                    offset += length
                    if progress is not None:
                        progress(offset, size)
            os.ftruncate(fd, size)
            if whole is None:
                # Every chunk written was checked against its name on its way in (or
                # was a sealed chunk file or spool: see ChunkStore.sealed_path), so the
                # chunk-list digest of the written file is known without reading it back.
                written_digest = sparse.tree_digest(
                    self._layout(record))
                self._check_whole(record, written_digest)
            else:
                self._check_whole(record, whole.hexdigest())
            os.close(fd)
            fd = -1
            os.replace(tmp, dest_path)
        except BaseException:
            if whole is not None:
                whole.close()
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return {"bytes_total": size, "bytes_written": written,
                "bytes_taken": taken_bytes(record, taken),
                "chunks_total": len(record["chunks"]), "checksum": record["checksum"],
                "os_hash_value": record["os_hash_value"], "written_digest": written_digest,
                "stages": timings.as_dict(),
                "wall_seconds": round(time.perf_counter() - started, 4)}

    def read_chunks(self, ctx: RequestContext, image_id: str, indexes: Iterable[int]
                    ) -> Iterator[bytes]:
        """The image's chunks at ``indexes``, each checked against its name as it is read."""
        record = self._readable(ctx, image_id)
        indexes = list(indexes)
        refuse_taken(record, indexes)
        layout = list(self._layout(record))
        wanted = [layout[i] for i in indexes]
        for (_, length), data in sparse.prefetch(wanted, self._fetch):
            yield data if data is not None else _zeros(length)

    def _fetch_whole(self, item: tuple[str, int]) -> bytes | None:
        """A chunk for a download whose whole-image sha256 is checked at the end."""
        digest, length = item
        sealed = None if digest == zero_digest(length) else self.store.sealed_path(digest,
                                                                                    length)
        if sealed is not None:
            with open(sealed, "rb") as f:
                data = f.read()
            if len(data) == length:
                return data
        return self._fetch(item)

    def _fetch(self, item: tuple[str, int]) -> bytes | None:
        digest, length = item
        return None if digest == zero_digest(length) else self._chunk(
            digest, length)


def refuse_taken(record: dict[str, Any], indexes: Iterable[int]) -> None:
    """A clear error, not a missing chunk, for reading what a move's target holds."""
    taken = set(record.get("taken") or ())
    if taken and any(i in taken for i in indexes):
        raise ChunksTaken(f"Image {record['id']} handed {len(taken)} of its chunks to a "
                          "move's target, which holds them instead of the image store; "
                          "those chunks cannot be read from the store.")
