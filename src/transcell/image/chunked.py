"""The chunk protocol: an image uploaded and read chunk by chunk by a remote host.

This is the server half of what ``ImageService.upload_file``/``upload_chunks``
do in process, split into steps a client can drive over HTTP (see
``transcell.api.image.chunks`` for the routes): *begin* (queued -> saving),
*missing* (which of these digests does the store lack), *put* (one chunk,
refused unless its bytes hash to the digest it claims), then *commit* (the
chunk list, checked against the store and hashed as a whole) or *abort*.

Between begin and commit or abort an upload is a session held in this
process. Its pin keeps every chunk it was told is present, and every chunk it
wrote, safe from garbage collection until a manifest names them, exactly as
``_ingest`` does for the in-process path. Nothing the client says is trusted:
the commit re-checks that each chunk is in the store with the length its
place needs, and computes the whole-image digest itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from transcell import exception, statefiles
from transcell.context import RequestContext
from transcell.image import sparse
from transcell.image.file_path import refuse_taken
from transcell.image.service import (
    ImageService,
    _now,
    _virtual_size,
    _zeros,
    zero_digest,
)
from transcell.image.spool import SpoolWriter
from transcell.image.spool import mark as mark_spool
from transcell.image.store import ChunkMissing, Pin, digest_of

LOG = logging.getLogger(__name__)

#: The header naming a chunk's sha256, on a chunk sent and a chunk read.
DIGEST_HEADER = "X-Image-Chunk-Sha256"
#: An upload no request touched for this long may be taken over by a new begin:
#: its client died mid-upload (a compute host killed during a move).
STALE_AFTER = 30.0
#: Most digests one "missing" question may name.
MAX_DIGESTS = 4096
HASH_ALGOS = ("sha256", sparse.TREE_ALGO)


@dataclass
class _Upload:
    pin: Pin
    written: list[str] = field(default_factory=list)
    #: index -> digest of chunks put by index, checked against the committed list
    placed: dict[int, str] = field(default_factory=dict)
    touched: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: set once committed or given up; a chunk arriving later is not kept
    ended: bool = False
    #: new chunks laid out as the disk for a move's target (``begin(spool=True)``)
    writer: SpoolWriter | None = None
    #: whether a known chunk at an index is one a move's target took (``taken_from``)
    taken: Callable[[int, str], bool] | None = None


class ChunkUploads:
    """The open chunk uploads of one image service, and the steps on them."""

    def __init__(self, service: ImageService):
        self.service = service
        self.store = service.store
        self._uploads: dict[str, _Upload] = {}
        self._lock = threading.Lock()
        #: names this process's uploads in their marker files
        self.token = uuid.uuid4().hex
        self.marker_dir = statefiles.private_dir(os.path.join(self.store.root,
                                                              "chunk-uploads"))

    # -- reading ------------------------------------------------------------------

    def manifest(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The whole record, chunk list included, as the in-process client returns it."""
        return self.service.get(ctx, image_id)

    def chunk(self, ctx: RequestContext, image_id: str, which: str) -> tuple[str, bytes]:
        """One chunk of an active image by index or by digest, checked as it is read."""
        record = self.service._readable(ctx, image_id)
        layout = list(self.service._layout(record))
        if _is_digest(which):
            index = next((i for i, (d, _) in enumerate(layout) if d == which), None)
            if index is None:
                raise exception.NotFound(f"Image {image_id} has no chunk {which}.")
        else:
            index = _index(which)
            if index >= len(layout):
                raise exception.NotFound(f"Image {image_id} has {len(layout)} chunks; "
                                         f"there is no chunk {index}.")
        refuse_taken(record, [index])
        digest, length = layout[index]
        if digest == zero_digest(length):
            return digest, _zeros(length)
        return digest, self.service._chunk(digest, length)

    # -- uploading ----------------------------------------------------------------

    def begin(self, ctx: RequestContext, image_id: str, spool: bool = False,
              taken_from: str | None = None) -> dict[str, Any]:
        """Open an upload: the image goes from queued to saving.

        ``spool`` and ``taken_from`` as for ``ImageService.upload_chunks``: a
        move's new chunks laid out once as its disk, for a target on this
        filesystem to take over; chunks an earlier image's target took.

        An image left saving by a chunk upload whose client went silent (a host
        killed mid-upload), or that an earlier run of this service began (the
        API restarted), is taken over rather than refused: nobody can finish
        that upload any more. An image saving through a streamed upload is not.
        """
        record = self.service.get(ctx, image_id)
        if record["status"] == "saving":
            self.service._check_modify(ctx, record)
            self._take_over(image_id)
        taken = self.service._taken_in(ctx, taken_from)
        self.service._begin_upload(ctx, image_id)
        upload = _Upload(Pin(self.store), taken=taken,
                         writer=self.store.spools.start(image_id, None) if spool else None)
        with self._lock:
            # an upload left over from an earlier image of this id (deleted and
            # made again by a retried move) only holds pins: let them go
            leftover = self._uploads.get(image_id)
            self._uploads[image_id] = upload
        self._mark(image_id)
        if leftover is not None:
            self._release(leftover)
        return self.service.get(ctx, image_id)

    def _take_over(self, image_id: str) -> None:
        with self._lock:
            live = self._uploads.get(image_id)
            if live is not None and time.monotonic() - live.touched > STALE_AFTER:
                self._uploads.pop(image_id)
                stale: _Upload | None = live
            else:
                stale = None
        if stale is not None:
            LOG.warning("Taking over the chunk upload of image %s: no request for %.0f s",
                        image_id, STALE_AFTER)
            self._abandon(image_id, stale)
        elif live is None and self._marked_by_another(image_id):
            LOG.warning("Taking over the chunk upload of image %s that an earlier run of "
                        "the image service began", image_id)
            self.service._abort_upload(image_id, [])
            self._unmark(image_id)

    def missing(self, ctx: RequestContext, image_id: str, digests: Iterable[str]
                ) -> list[str]:
        """Which of ``digests`` the store lacks; the ones it holds stay pinned to the upload."""
        digests = list(dict.fromkeys(digests))
        if len(digests) > MAX_DIGESTS:
            raise exception.Invalid(f"Ask about at most {MAX_DIGESTS} digests at once.")
        for digest in digests:
            _check_digest(digest)
        upload = self._session(ctx, image_id)
        with upload.lock:
            lacking = upload.pin.claim(digests)
        return [d for d in digests if d in lacking]

    def put(self, ctx: RequestContext, image_id: str, index: int, digest: str,
            data: bytes) -> bool:
        """Store one chunk if its bytes are what ``digest`` names; True if it was new."""
        _check_digest(digest)
        if index < 0:
            raise exception.Invalid(f"Chunk index must be zero or positive, got {index}.")
        if not data or len(data) > self.store.chunk_size:
            raise exception.Invalid(f"A chunk holds 1 to {self.store.chunk_size} bytes, "
                                    f"got {len(data)}.")
        actual = digest_of(data)
        if actual != digest:
            raise exception.Invalid(f"Chunk {index} of image {image_id} does not match its "
                                    f"digest: it was sent as {digest} but its bytes hash "
                                    f"to {actual}. Nothing was stored.")
        upload = self._session(ctx, image_id)
        with upload.lock:
            if upload.ended:
                raise _ended(image_id)
            lacking = upload.pin.claim([digest])
        # several chunks of one upload are written at once; only the books are locked
        if upload.writer is not None:
            spooled = digest in lacking
            if spooled:
                try:
                    upload.writer.put(index, digest, data)
                except ValueError as exc:
                    if upload.ended:
                        raise _ended(image_id) from None
                    raise exception.Invalid(f"Chunk {index}: {exc}.") from None
            wrote = False
        else:
            spooled = False
            wrote = self.store.put_known(digest, data)
        with upload.lock:
            ended = upload.ended
            if not ended:
                if wrote:
                    upload.written.append(digest)
                upload.placed[index] = digest
        if ended:  # given up while this chunk was being written: do not leave it behind
            if wrote:
                self.store.collect([digest])
            raise _ended(image_id)
        return wrote or spooled

    def commit(self, ctx: RequestContext, image_id: str, size: Any, chunks: Any,
               hash_algo: Any = sparse.TREE_ALGO, os_hash_value: Any = None,
               checksum: Any = None) -> dict[str, Any]:
        """Make the image active with ``chunks`` as its data, after checking all of it.

        Any failure ends the upload: written chunks nobody else names are
        collected and the image is queued again, as a failed in-process upload is.
        """
        upload = self._session(ctx, image_id)
        try:
            record = self._commit(ctx, image_id, upload, size, chunks, hash_algo,
                                  os_hash_value, checksum)
        except BaseException:
            self._end(image_id, upload, failed=True)
            raise
        self._end(image_id, upload, failed=False)
        return record

    def abort(self, ctx: RequestContext, image_id: str) -> None:
        """Give up an upload: the image is queued again; a missing upload is not an error."""
        with self._lock:
            upload = self._uploads.get(image_id)
        if upload is None:
            record = self.service.get(ctx, image_id)  # 404 for one the caller cannot see
            if record["status"] == "saving" and self._marked_by_another(image_id):
                # begun before this service restarted: nobody can finish it now
                self.service._check_modify(ctx, record)
                self.service._abort_upload(image_id, [])
                self._unmark(image_id)
            return
        self.service._check_modify(ctx, self.service.get(ctx, image_id))
        self._end(image_id, upload, failed=True)

    # -- a spool taken over by a target in another process -------------------------------

    def lend_spool(self, ctx: RequestContext, image_id: str) -> dict[str, Any] | None:
        """Offer the image's spool to a target that may share this filesystem (see
        ``Spools.lend``): it renames the file away itself, then confirms; None when
        there is nothing to offer and the target reads the chunks instead."""
        self.service._check_modify(ctx, self.service._readable(ctx, image_id))
        return self.store.spools.lend(image_id)

    def confirm_spool(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The target took the lent spool: the image's record, which names its chunks
        as taken."""
        self.service._check_modify(ctx, self.service.get(ctx, image_id))
        self.store.spools.confirm(image_id)
        return self.service.get(ctx, image_id)

    def return_spool(self, ctx: RequestContext, image_id: str) -> None:
        """The target could not take the lent spool (another host, another filesystem)."""
        self.service._check_modify(ctx, self.service.get(ctx, image_id))
        self.store.spools.give_back(image_id)

    def open_uploads(self) -> list[str]:
        with self._lock:
            return sorted(self._uploads)

    # -- internals ------------------------------------------------------------------

    def _session(self, ctx: RequestContext, image_id: str) -> _Upload:
        try:
            record = self.service.get(ctx, image_id)
        except exception.ImageNotFound:
            gone = None
            if self.service._load(image_id) is None:
                with self._lock:
                    gone = self._uploads.pop(image_id, None)
            if gone is not None:  # the image was deleted under its upload
                self._unmark(image_id)
                self._release(gone)
            raise
        self.service._check_modify(ctx, record)
        with self._lock:
            upload = self._uploads.get(image_id)
        if upload is None or record["status"] != "saving":
            raise exception.Conflict(f"Image {image_id} has no chunk upload in progress "
                                     f"(status {record['status']}); begin one first.")
        upload.touched = time.monotonic()
        return upload

    def _end(self, image_id: str, upload: _Upload, failed: bool) -> None:
        with self._lock:
            if self._uploads.get(image_id) is upload:
                self._uploads.pop(image_id)
                self._unmark(image_id)
        if failed:
            self._abandon(image_id, upload)
        else:
            with upload.lock:
                upload.ended = True
                upload.pin.release()

    def _abandon(self, image_id: str, upload: _Upload) -> None:
        """Queue the image again and collect what only this upload wrote."""
        with upload.lock:
            upload.ended = True
            upload.pin.release()
            self.service._abort_upload(image_id, upload.written)
            if upload.writer is not None:
                upload.writer.discard()

    def _release(self, upload: _Upload) -> None:
        """Forget an upload whose image is gone: its pins, and chunks nobody names."""
        with upload.lock:
            upload.ended = True
            upload.pin.release()
            self.store.collect(upload.written)
            if upload.writer is not None:
                upload.writer.discard()

    def _marker(self, image_id: str) -> str:
        return os.path.join(self.marker_dir, str(uuid.UUID(image_id)))

    def _mark(self, image_id: str) -> None:
        statefiles.write_atomic(self._marker(image_id), self.token.encode())

    def _unmark(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._marker(image_id))

    def _marked_by_another(self, image_id: str) -> bool:
        try:
            with open(self._marker(image_id), "rb") as f:
                return f.read().decode(errors="replace") != self.token
        except FileNotFoundError:
            return False

    def _commit(self, ctx: RequestContext, image_id: str, upload: _Upload, size: Any,
                chunks: Any, hash_algo: Any, os_hash_value: Any, checksum: Any
                ) -> dict[str, Any]:
        chunk_size = self.store.chunk_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise exception.Invalid(f"'size' must be a non-negative integer, got {size!r}.")
        if not isinstance(chunks, list):
            raise exception.Invalid("'chunks' must be the list of the image's chunk digests.")
        if hash_algo not in HASH_ALGOS:
            raise exception.Invalid(f"'os_hash_algo' must be one of {', '.join(HASH_ALGOS)}, "
                                    f"got {hash_algo!r}.")
        expected = -(-size // chunk_size)
        if len(chunks) != expected:
            raise exception.Invalid(f"An image of {size} bytes in chunks of {chunk_size} "
                                    f"has {expected} chunks, not {len(chunks)}.")
        digests = [_check_digest(d) for d in chunks]
        lengths = [min(chunk_size, size - i * chunk_size) for i in range(expected)]
        if (upload.writer is not None or upload.taken is not None) and \
                hash_algo != sparse.TREE_ALGO:
            raise exception.Invalid("A spooled upload, or one naming taken chunks, is named "
                                    f"by its chunk list ('os_hash_algo' {sparse.TREE_ALGO}).")
        if upload.writer is not None:
            upload.writer.freeze()  # what is checked below is what gets sealed
            for index, digest in upload.writer.placed.items():
                if index >= expected or digests[index] != digest:
                    raise exception.Invalid(f"Chunk {index} was put as {digest} but the "
                                            "committed chunk list says otherwise.")
        with upload.lock:
            for index, digest in upload.placed.items():
                if index >= expected or digests[index] != digest:
                    raise exception.Invalid(f"Chunk {index} was put as {digest} but the "
                                            "committed chunk list says otherwise.")
            # chunks of zeros are never sent: the store makes them itself
            for digest, length in zip(digests, lengths, strict=True):
                if digest == zero_digest(length):
                    upload.pin.claim([digest])
                    if self.store.put_known(digest, _zeros(length)):
                        upload.written.append(digest)
            lacking = upload.pin.claim(digests)
        spooled: list[int] = []
        if upload.writer is not None:
            for index, got in upload.writer.lengths.items():
                if got != lengths[index]:
                    raise exception.Invalid(f"Chunk {index} holds {got} bytes; its place in "
                                            f"the image needs {lengths[index]}.")
            spooled = upload.writer.complete(digests, size)
            lacking -= {digests[i] for i in spooled}
        held_elsewhere = set(spooled)
        taken = [i for i, d in enumerate(digests)
                 if d in lacking and upload.taken is not None and upload.taken(i, d)]
        held_elsewhere.update(taken)
        missing = {d for i, d in enumerate(digests) if d in lacking and i not in held_elsewhere}
        if missing:
            raise ChunkMissing(digest=sorted(missing)[0])
        for index, (digest, length) in enumerate(zip(digests, lengths, strict=True)):
            if index in held_elsewhere:
                continue
            stored = self.store.size_of(digest)
            if stored != length:
                raise exception.Invalid(f"Chunk {index} ({digest}) holds {stored} bytes; "
                                        f"its place in the image needs {length}.")
        head = b""
        if digests and upload.writer is not None and 0 in spooled:
            head = os.pread(upload.writer.fd, min(512, lengths[0]), 0)
        elif digests and 0 not in held_elsewhere:
            head = bytes(self._read(digests[0], lengths[0])[:512])
        md5 = None
        if hash_algo == sparse.TREE_ALGO:
            whole = sparse.tree_digest(zip(digests, lengths, strict=True))
        else:
            whole, md5 = self._hash_whole(zip(digests, lengths, strict=True))
        if os_hash_value is not None and os_hash_value != whole:
            raise exception.Invalid(f"The image's {hash_algo} digest is {whole}, not the "
                                    f"{os_hash_value} its uploader computed.")
        if checksum is not None and md5 is not None and checksum != md5:
            raise exception.Invalid(f"The image's md5 is {md5}, not the {checksum} its "
                                    "uploader computed.")

        def finish(record: dict[str, Any]) -> None:
            if upload.ended:  # taken over while its commit was hashing
                raise _ended(image_id)
            if record["status"] != "saving":
                raise exception.Conflict(f"Image {image_id} changed status to "
                                         f"{record['status']} during upload.")
            record.update(
                status="active", size=size, checksum=md5, os_hash_algo=hash_algo,
                os_hash_value=whole,
                virtual_size=_virtual_size(record.get("disk_format"), size, head),
                chunk_size=chunk_size, chunks=digests, updated_at=_now())
            mark_spool(record, spooled, taken)

        return self.store.spools.commit(image_id, finish, upload.writer)

    def _read(self, digest: str, length: int) -> bytes:
        if digest == zero_digest(length):
            return _zeros(length)
        return self.service._chunk(digest, length)

    def _hash_whole(self, layout: Iterator[tuple[str, int]]) -> tuple[str, str]:
        """sha256 and md5 of the image as the store holds it; every chunk is re-checked."""
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        for _item, data in sparse.prefetch(layout, lambda item: self._read(*item)):
            sha.update(data)
            md5.update(data)
        return sha.hexdigest(), md5.hexdigest()


def _ended(image_id: str) -> exception.Conflict:
    return exception.Conflict(f"The chunk upload of image {image_id} has ended; begin "
                              "it again.")


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _check_digest(digest: Any) -> str:
    if not isinstance(digest, str) or not _is_digest(digest):
        raise exception.Invalid(f"{digest!r} is not a sha256 digest (64 lowercase hex "
                                "digits).")
    return digest


def _index(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise exception.Invalid(f"A chunk is named by its index (0, 1, ...) or its sha256 "
                                f"digest, not {text!r}.")
    return int(text)


_REGISTRY: weakref.WeakKeyDictionary[ImageService, ChunkUploads] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def uploads_for(service: ImageService) -> ChunkUploads:
    """The one set of chunk uploads of ``service``, however many API apps serve it."""
    with _REGISTRY_LOCK:
        uploads = _REGISTRY.get(service)
        if uploads is None:
            uploads = _REGISTRY[service] = ChunkUploads(service)
        return uploads
