"""Images: Glance v2 records over the chunk store, and the verified data path.

The record is what Glance shows plus two internal fields, ``chunk_size`` and
``chunks`` (the image as a list of chunk digests), which the HTTP API never
exposes. Records are the store's manifests, so an image and its bytes are
always described in one place.

Two data paths exist. ``upload``/``download`` stream bytes for the HTTP API.
``upload_file``/``download_to_file`` are what compute hosts use to move disks:
only chunks the store lacks are written, every chunk read back is re-hashed,
and the whole-image sha256 is checked before a file is put in place, because
a disk that crossed cells must be bit-for-bit the one that left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from transcell import exception
from transcell.context import RequestContext
from transcell.image import ordering, pipeline, sparse
from transcell.image.file_path import FileDataPath, _BackgroundHash, refuse_taken
from transcell.image.spool import mark as mark_spool
from transcell.image.store import ChunkMissing, ChunkStore, digest_of

LOG = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "deactivated")

#: Fields a caller may set.
MUTABLE = frozenset({"name", "visibility", "protected", "os_hidden", "disk_format",
                     "container_format", "min_disk", "min_ram", "tags", "owner"})
#: Fields the service computes.
READ_ONLY = frozenset({"id", "status", "size", "virtual_size", "checksum", "os_hash_algo",
                       "os_hash_value", "created_at", "updated_at", "self", "file", "schema",
                       "direct_url", "locations"})
#: Never settable and never shown (``members``: who an image is shared with).
RESERVED = frozenset({"chunks", "chunk_size", "location", "deleted", "deleted_at", "members"})
INTERNAL = frozenset({"chunks", "chunk_size", "members"})
#: Glance keeps property names with this prefix for itself.
RESERVED_PREFIX = "os_glance_"
CORE = MUTABLE | (READ_ONLY - {"self", "file", "schema", "direct_url", "locations"})

_MAX_STR = 255
_MAX_TAGS = 128


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_zeros = pipeline.zeros
#: A chunk of zeros is named by its length alone; knowing that skips hashing holes.
zero_digest = pipeline.zero_digest
_is_zero = pipeline.is_zero


def extra_properties(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in CORE and k not in INTERNAL}


# -- validation ---------------------------------------------------------------------


def _string(field: str, value: Any, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise exception.Invalid(f"'{field}' must be a string, got {value!r}.")
    if len(value) > _MAX_STR:
        raise exception.Invalid(f"'{field}' must be at most {_MAX_STR} characters.")
    return value


def _choice(field: str, value: Any, choices: tuple[str, ...], nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if value not in choices:
        raise exception.Invalid(f"Invalid value {value!r} for '{field}': must be one of "
                                f"{', '.join(choices)}.")
    return value


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise exception.Invalid(f"'{field}' must be true or false, got {value!r}.")
    return value


def _count(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise exception.Invalid(f"'{field}' must be a non-negative integer, got {value!r}.")
    return value


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise exception.Invalid(f"'tags' must be a list of strings, got {value!r}.")
    tags: list[str] = []
    for tag in value:
        _string("tags", tag)
        if tag not in tags:
            tags.append(tag)
    if len(tags) > _MAX_TAGS:
        raise exception.Invalid(f"An image can have at most {_MAX_TAGS} tags.")
    return tags


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "name": lambda v: _string("name", v, nullable=True),
    "visibility": lambda v: _choice("visibility", v, VISIBILITIES, nullable=False),
    "protected": lambda v: _flag("protected", v),
    "os_hidden": lambda v: _flag("os_hidden", v),
    "disk_format": lambda v: _choice("disk_format", v, DISK_FORMATS, nullable=True),
    "container_format": lambda v: _choice("container_format", v, CONTAINER_FORMATS,
                                          nullable=True),
    "min_disk": lambda v: _count("min_disk", v),
    "min_ram": lambda v: _count("min_ram", v),
    "tags": _tags,
    "owner": lambda v: _string("owner", v, nullable=True),
}


def _validate_fields(ctx: RequestContext, fields: dict[str, Any], record: dict | None
                     ) -> dict[str, Any]:
    """Check every field before anything is written, so bad input changes nothing."""
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        if key in RESERVED or (isinstance(key, str) and key.startswith(RESERVED_PREFIX)):
            raise exception.Forbidden(f"Attribute '{key}' is reserved.")
        if key in READ_ONLY:
            raise exception.Forbidden(f"Attribute '{key}' is read-only.")
        if key in _VALIDATORS:
            clean[key] = _VALIDATORS[key](value)
            continue
        if not isinstance(key, str) or not key or len(key) > _MAX_STR:
            raise exception.Invalid(f"Property name {key!r} must be 1 to {_MAX_STR} "
                                    "characters.")
        if not isinstance(value, str):
            raise exception.Invalid(f"Property '{key}' must be a string, got {value!r}.")
        clean[key] = value
    if clean.get("visibility") == "public" and not ctx.is_admin:
        if record is None or record.get("visibility") != "public":
            raise exception.Forbidden("Only administrators can make an image public.")
    if "owner" in clean and not ctx.is_admin:
        if clean["owner"] != (record["owner"] if record else ctx.project_id):
            raise exception.Forbidden("Only administrators can change an image's owner.")
    if record is not None and record["status"] != "queued":
        for key in ("disk_format", "container_format"):
            if key in clean and clean[key] != record.get(key):
                raise exception.Forbidden(f"Attribute '{key}' can only be changed while "
                                          "the image is queued.")
    return clean


# -- hashing helpers ------------------------------------------------------------------


def _read_exactly(stream: IO[bytes], length: int) -> bytes:
    """Fill one chunk even from streams (sockets, WSGI input) that return short reads."""
    parts = []
    wanted = length
    while wanted > 0:
        data = stream.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _chunks_of(stream: IO[bytes], chunk_size: int, size: int | None) -> Iterator[bytes]:
    remaining = size
    while remaining is None or remaining > 0:
        want = chunk_size if remaining is None else min(chunk_size, remaining)
        data = _read_exactly(stream, want)
        if remaining is not None:
            remaining -= len(data)
            if len(data) < want:
                raise exception.Invalid(f"The image data ended after {size - remaining} "
                                        f"bytes but {size} were announced.")
        if data:
            yield data
        if len(data) < want:
            return


def _name_chunk(item: bytes | int | tuple) -> str | None:
    """A chunk's name: zeros are named by their length alone, data by its sha256."""
    if isinstance(item, tuple):
        return None
    if isinstance(item, int):
        return zero_digest(item)
    return zero_digest(len(item)) if _is_zero(item) else digest_of(item)


_write_sparse = pipeline.write_sparse


def _non_negative(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exception.Invalid(f"{name} must be an integer, got {value!r}.") from None
    if number < 0:
        raise exception.Invalid(f"{name} must be zero or positive, got {number}.")
    return number


def _virtual_size(disk_format: str | None, size: int, head: bytes) -> int | None:
    if disk_format in ("raw", "iso"):
        return size
    if disk_format == "qcow2" and head[:4] == b"QFI\xfb" and len(head) >= 32:
        return int.from_bytes(head[24:32], "big")
    return None


# -- the service ------------------------------------------------------------------------


def visible(ctx: RequestContext, record: dict[str, Any]) -> bool:
    """Glance's rule: a shared image is seen by its owner and its members (any status).

    Also the rule for whoever reads a record fetched as the service user (the
    volume service making a volume of a user's image), so it is one function.
    """
    if ctx.is_admin or record["visibility"] in ("public", "community"):
        return True
    if record.get("owner") is not None and record["owner"] == ctx.project_id:
        return True
    return record["visibility"] == "shared" and ctx.project_id in record.get("members", {})


class ImageService(FileDataPath):
    def __init__(self, store: ChunkStore):
        self.store = store

    # -- records ----------------------------------------------------------------------

    def create(self, ctx: RequestContext, /, **fields: Any) -> dict[str, Any]:
        image_id = fields.pop("id", None)
        if image_id is None:
            image_id = str(uuid.uuid4())
        else:
            try:
                image_id = str(uuid.UUID(str(image_id)))
            except ValueError:
                raise exception.Invalid(f"'id' must be a UUID, got {image_id!r}.") from None
        clean = _validate_fields(ctx, fields, None)
        now = _now()
        record: dict[str, Any] = {
            "id": image_id, "name": None, "status": "queued", "visibility": "private",
            "protected": False, "os_hidden": False, "owner": ctx.project_id,
            "disk_format": None, "container_format": None, "size": None,
            "virtual_size": None, "min_disk": 0, "min_ram": 0, "checksum": None,
            "os_hash_algo": None, "os_hash_value": None, "tags": [],
            "created_at": now, "updated_at": now,
            "chunk_size": self.store.chunk_size, "chunks": [],
        }
        record.update(clean)
        if not self.store.create_manifest(record):
            raise exception.Conflict(f"Image with identifier {image_id} already exists.")
        return record

    def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        record = self._load(image_id)
        if record is None or not self._visible(ctx, record):
            raise exception.ImageNotFound(image_id=image_id)
        return record

    def list(self, ctx: RequestContext, filters: dict[str, Any] | None = None,
             limit: int | None = None, marker: str | None = None,
             sort_key: str | list[str] = "created_at", sort_dir: str | list[str] = "desc"
             ) -> list[dict[str, Any]]:
        """Visible images matching ``filters``, newest first by default.

        Filter values may be ``"in:a,b"`` for any of one set; unknown filter
        names match extra properties, as in Glance. ``sort_key`` and
        ``sort_dir`` may be lists (see :mod:`.ordering`).
        """
        filters = dict(filters or {})
        limit = filters.pop("limit", limit)
        marker = filters.pop("marker", marker)
        sort_key = filters.pop("sort_key", sort_key)
        sort_dir = filters.pop("sort_dir", sort_dir)
        pairs = ordering.check(sort_key, sort_dir)
        limit = _non_negative("limit", limit)
        match = _Matcher(ctx, filters)
        images = [r for r in self.store.iter_manifests() if self._visible(ctx, r)]
        ordering.order(images, pairs)
        if marker is not None:
            ids = [r["id"] for r in images]
            if marker not in ids:
                raise exception.Invalid(f"Invalid marker: image {marker} could not be found.")
            images = images[ids.index(marker) + 1:]
        found = [r for r in images if match(r)]
        return found if limit is None else found[:limit]

    def update(self, ctx: RequestContext, image_id: str, changes: dict[str, Any],
               remove: Iterable[str] = ()) -> dict[str, Any]:
        """Set ``changes`` and drop the extra properties named in ``remove``, all or nothing."""
        remove = list(remove)

        def apply(record: dict[str, Any]) -> None:
            self._check_modify(ctx, record)
            clean = _validate_fields(ctx, changes, record)
            for key in remove:
                if key in CORE or key in RESERVED or key in READ_ONLY:
                    raise exception.Forbidden(f"Property '{key}' cannot be removed.")
                if key not in record:
                    raise exception.Conflict(f"Property {key} does not exist.")
            record.update(clean)
            for key in remove:
                record.pop(key, None)
            record["updated_at"] = _now()

        record = self._update(ctx, image_id, apply)
        return record

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        with self.store.lock:
            record = self.get(ctx, image_id)
            self._check_modify(ctx, record)
            if record["protected"]:
                raise exception.Forbidden(f"Image {image_id} is protected and cannot be "
                                          "deleted.")
            self.store.remove_manifest(image_id)

    # -- streaming data path (HTTP API) ------------------------------------------------

    def upload(self, ctx: RequestContext, image_id: str, stream: IO[bytes],
               size: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
        chunks = _chunks_of(stream, self.store.chunk_size, size)
        record, _ = self._ingest(ctx, image_id, chunks, size, progress)
        return record

    def download(self, ctx: RequestContext, image_id: str) -> Iterator[bytes]:
        """Check access now; then yield verified chunks (the whole hash is checked last)."""
        record = self._readable(ctx, image_id)
        refuse_taken(record, range(len(record.get("chunks") or ())))
        return self._stream(record)

    def _stream(self, record: dict[str, Any]) -> Iterator[bytes]:
        # A chunk-list image (a move's snapshot) is checked as the list of the chunks
        # the store verified on read, as download_to_file checks it; a plain sha256
        # of its bytes would never equal its digest.
        tree = record.get("os_hash_algo") == sparse.TREE_ALGO
        layout = list(self._layout(record))
        whole = None if tree else hashlib.sha256()
        for digest, length in layout:
            data = _zeros(length) if digest == zero_digest(length) else self._chunk(digest,
                                                                                   length)
            if whole is not None:
                whole.update(data)
            yield data
        self._check_whole(record, sparse.tree_digest(layout) if tree else whole.hexdigest())

    # -- file data path (compute hosts) -----------------------------------------------

    def upload_file(self, ctx: RequestContext, image_id: str, path: str,
                    progress: Progress | None = None, hash_algo: str = "sha256",
                    spool: bool = False) -> dict[str, Any]:
        """Upload a local disk, writing only the chunks the store does not hold yet.

        With ``hash_algo="sha256-chunks"`` (moves) holes are never read and the
        whole-image digest is the chunk-list digest of :mod:`.sparse`, so the
        cost follows the disk's data, not its size; such an image has no md5.
        ``spool`` as for ``upload_chunks`` (chunk lists only).
        """
        if hash_algo == sparse.TREE_ALGO:
            total = os.path.getsize(path)
            chunks = pipeline.sparse_file_items(path, self.store.chunk_size)
            _, stats = self._ingest(ctx, image_id, chunks, total, progress, tree=True,
                                    spool=spool)
            return stats
        with open(path, "rb", buffering=0) as f:
            total = os.fstat(f.fileno()).st_size
            chunks = _chunks_of(f, self.store.chunk_size, total)
            _, stats = self._ingest(ctx, image_id, chunks, total, progress)
        return stats

    def upload_chunks(self, ctx: RequestContext, image_id: str, items: Iterator[Any],
                      total: int, progress: Progress | None = None, spool: bool = False,
                      taken_from: str | None = None) -> dict[str, Any]:
        """Upload a disk described chunk by chunk, named by its chunk-list digest.

        Items are bytes, an int (a zero chunk of that length) or
        ``("known", digest, length)`` for a chunk the store already holds, which
        is referenced without being sent; a known chunk the store lacks fails
        the upload with ChunkMissing and leaves the image queued.

        ``spool``: the new chunks are written once, laid out as the disk, for a
        move's target to take over (:mod:`transcell.image.spool`).
        ``taken_from``: an earlier image of the same disk whose chunks a move's
        target took; a known chunk it names as taken at the same index is
        named as taken here too instead of failing the upload.
        """
        _, stats = self._ingest(ctx, image_id, items, total, progress, tree=True,
                                spool=spool, taken_from=taken_from)
        return stats

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.store.stats()
        by_status: dict[str, int] = {}
        logical = 0
        for record in self.store.iter_manifests():
            by_status[record["status"]] = by_status.get(record["status"], 0) + 1
            logical += record.get("size") or 0
        stats["images_by_status"] = by_status
        stats["bytes_logical"] = logical
        return stats

    # -- internals -----------------------------------------------------------------------

    def _load(self, image_id: str) -> dict[str, Any] | None:
        try:
            return self.store.read_manifest(image_id)
        except ValueError:
            return None

    _visible = staticmethod(visible)

    @staticmethod
    def _check_modify(ctx: RequestContext, record: dict[str, Any]) -> None:
        if not ctx.is_admin and record.get("owner") != ctx.project_id:
            raise exception.Forbidden(f"You are not permitted to modify image {record['id']}; "
                                      "it belongs to another project.")

    def _update(self, ctx: RequestContext, image_id: str,
                apply: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        def guarded(record: dict[str, Any]) -> None:
            if not self._visible(ctx, record):
                raise exception.ImageNotFound(image_id=image_id)
            apply(record)

        try:
            record = self.store.update_manifest(image_id, guarded)
        except ValueError:
            record = None
        if record is None:
            raise exception.ImageNotFound(image_id=image_id)
        return record

    def _readable(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        record = self.get(ctx, image_id)
        if record["status"] == "deactivated" and ctx.is_admin:
            return record
        if record["status"] == "deactivated":
            raise exception.Forbidden(f"Image {image_id} has been deactivated; its data "
                                      "cannot be downloaded.")
        if record["status"] != "active":
            raise exception.Conflict(f"Image {image_id} has no data (status "
                                     f"{record['status']}).")
        return record

    def _layout(self, record: dict[str, Any]) -> Iterator[tuple[str, int]]:
        size, chunk_size, chunks = record["size"], record["chunk_size"], record["chunks"]
        expected = -(-size // chunk_size)
        if len(chunks) != expected:
            raise exception.ChecksumMismatch(what=f"image {record['id']} chunk list",
                                             expected=f"{expected} chunks",
                                             actual=f"{len(chunks)} chunks")
        for index, digest in enumerate(chunks):
            yield digest, min(chunk_size, size - index * chunk_size)

    def _chunk(self, digest: str, length: int) -> bytes:
        data = self.store.get(digest)
        if len(data) != length:
            raise exception.ChecksumMismatch(what=f"length of chunk {digest}",
                                             expected=length, actual=len(data))
        return data

    @staticmethod
    def _check_whole(record: dict[str, Any], actual: str) -> None:
        if actual != record["os_hash_value"]:
            raise exception.ChecksumMismatch(what=f"image {record['id']}",
                                             expected=record["os_hash_value"], actual=actual)

    def _ingest(self, ctx: RequestContext, image_id: str, chunks: Iterator[bytes | int],
                expected: int | None, progress: Progress | None, tree: bool = False,
                spool: bool = False, taken_from: str | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Chunk, hash and store image data; status goes queued -> saving -> active.

        Written chunks stay pinned until the final manifest names them, so a
        concurrent delete cannot collect them; on failure the image returns to
        queued and the chunks only this upload wrote are collected.
        """
        taken = self._taken_in(ctx, taken_from)
        self._begin_upload(ctx, image_id)
        writer = (self.store.spools.start(image_id, expected)
                  if spool and tree and expected else None)
        taken_here: list[int] = []
        # a chunk-list image has no whole-image hashes: nothing to run for them
        md5 = None if tree else _BackgroundHash("md5")
        whole = None if tree else hashlib.sha256()
        digests: list[str] = []
        lengths: list[int] = []
        written: list[str] = []
        total = sent = 0
        head = b""
        timings = pipeline.Timings()
        started = time.perf_counter()
        try:
            with self.store.pinned() as pin:
                # every chunk is read, hashed and stored by a worker, several at once on
                # every core; this thread only books the results, in chunk order
                ingest = pipeline.Ingest(
                    claim=lambda digest: digest in pin.claim([digest]),
                    put=self.store.put_known,
                    missing=lambda digest: ChunkMissing(digest=digest), timings=timings,
                    # a chunk list names a chunk of zeros by its length and every reader
                    # makes the zeros itself: storing one would only be written and
                    # collected again with each move's image
                    store_zeros=not tree, keep_data=not tree,
                    place=None if writer is None else writer.put, taken=taken)
                written = ingest.written
                # a hole or a chunk named by its digest is booked without a worker
                for _item, done in pipeline.ordered(
                        enumerate(chunks), lambda pair: ingest(pair[1], pair[0]),
                        inline=lambda pair: isinstance(pair[1], int | tuple)):
                    if done.taken:
                        taken_here.append(len(digests))
                    if done.wrote:
                        sent += done.length
                    if not done.known and (md5 is not None or not digests):
                        data = done.head if done.head is not None else (
                            _zeros(done.length) if done.data is None else done.data)
                        if md5 is not None and whole is not None:
                            md5.update(data)
                            whole.update(data)
                        if not digests:
                            head = bytes(data[:512])
                    digests.append(done.digest)
                    lengths.append(done.length)
                    total += done.length
                    if progress is not None:
                        progress(total, expected)
                if md5 is None or whole is None:
                    checksum = None
                    sha256 = sparse.tree_digest(zip(digests, lengths, strict=True))
                else:
                    checksum = md5.hexdigest()
                    sha256 = whole.hexdigest()

                def finish(record: dict[str, Any]) -> None:
                    if record["status"] != "saving":
                        raise exception.Conflict(f"Image {image_id} changed status to "
                                                 f"{record['status']} during upload.")
                    record.update(
                        status="active", size=total, checksum=checksum,
                        os_hash_algo=sparse.TREE_ALGO if tree else "sha256",
                        os_hash_value=sha256,
                        virtual_size=_virtual_size(record.get("disk_format"), total, head),
                        chunk_size=self.store.chunk_size, chunks=digests, updated_at=_now())
                    mark_spool(record, writer.placed if writer is not None else (),
                               taken_here)

                record = self.store.spools.commit(image_id, finish, writer)
        except BaseException:
            if writer is not None:
                writer.discard()
            if md5 is not None:
                md5.close()
            try:
                self._abort_upload(image_id, written)
            except Exception:
                LOG.exception("could not roll back the failed upload of image %s", image_id)
            raise
        stats = {"bytes_total": total, "bytes_sent": sent, "chunks_total": len(digests),
                 "chunks_sent": len(written), "checksum": checksum, "os_hash_value": sha256,
                 "stages": timings.as_dict(),
                 "wall_seconds": round(time.perf_counter() - started, 4)}
        return record, stats

    def _taken_in(self, ctx: RequestContext, image_id: str | None
                  ) -> Callable[[int, str], bool] | None:
        """Whether a chunk at an index is one ``image_id``'s move target took (see
        ``upload_chunks``); None when that image took nothing."""
        if image_id is None:
            return None
        record = self.get(ctx, image_id)
        taken = set(record.get("taken") or ())
        if not taken:
            return None
        chunks = list(record["chunks"])
        return lambda index, digest: (index in taken and index < len(chunks)
                                      and chunks[index] == digest)

    def _begin_upload(self, ctx: RequestContext, image_id: str) -> None:
        def begin(record: dict[str, Any]) -> None:
            self._check_modify(ctx, record)
            if record["status"] != "queued":
                raise exception.Conflict(f"Image status transition from {record['status']} "
                                         "to saving is not allowed; only a queued image "
                                         "accepts data.")
            if not record.get("disk_format") or not record.get("container_format"):
                raise exception.Invalid("Properties disk_format and container_format must "
                                        "be set before uploading image data.")
            record["status"] = "saving"
            record["updated_at"] = _now()

        self._update(ctx, image_id, begin)

    def _abort_upload(self, image_id: str, written: list[str]) -> None:
        def requeue(record: dict[str, Any]) -> None:
            if record["status"] == "saving":
                record["status"] = "queued"
                record["updated_at"] = _now()

        self.store.update_manifest(image_id, requeue)
        self.store.collect(written)


class _Matcher:
    """One list filter set, checked against a record."""

    _SETS = ("name", "id", "status", "owner", "disk_format", "container_format")
    _IGNORED = ("member_status",)
    _MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")

    def __init__(self, ctx: RequestContext, filters: dict[str, Any]):
        self.ctx = ctx
        self.filters = {k: v for k, v in filters.items() if k not in self._IGNORED}
        # images shared with the caller are listed once it accepted them, unless asked
        self.member_status = filters.get("member_status", "accepted")
        if self.member_status not in self._MEMBER_STATUSES:
            raise exception.Invalid(f"Invalid member_status value {self.member_status!r}: "
                                    f"use one of {', '.join(self._MEMBER_STATUSES)}.")
        visibility = self.filters.get("visibility")
        if visibility is not None and visibility not in VISIBILITIES + ("all",):
            raise exception.Invalid(f"Invalid visibility value {visibility!r}: use one of "
                                    f"{', '.join(VISIBILITIES + ('all',))}.")
        for key in ("size_min", "size_max"):
            if key in self.filters:
                self.filters[key] = _non_negative(key, self.filters[key])
        if "protected" in self.filters:
            self.filters["protected"] = self._bool("protected", self.filters["protected"])
        if "os_hidden" in self.filters:
            self.filters["os_hidden"] = self._bool("os_hidden", self.filters["os_hidden"])
        tags = self.filters.pop("tag", None)
        self.tags = [tags] if isinstance(tags, str) else list(tags or [])

    @staticmethod
    def _bool(key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise exception.Invalid(f"'{key}' filter must be true or false, got {value!r}.")

    def __call__(self, record: dict[str, Any]) -> bool:
        f = self.filters
        visibility = f.get("visibility")
        if visibility is None and record["visibility"] == "community" \
                and record.get("owner") != self.ctx.project_id and not self.ctx.is_admin:
            return False
        if visibility not in (None, "all") and record["visibility"] != visibility:
            return False
        if record["visibility"] == "shared" and not self.ctx.is_admin \
                and record.get("owner") != self.ctx.project_id:
            membership = record.get("members", {}).get(self.ctx.project_id) or {}
            if self.member_status != "all" and membership.get("status") != self.member_status:
                return False
        if record.get("os_hidden", False) != f.get("os_hidden", False):
            return False
        if f.get("size_min") is not None and (record["size"] or 0) < f["size_min"]:
            return False
        if f.get("size_max") is not None and (record["size"] or 0) > f["size_max"]:
            return False
        if "protected" in f and record["protected"] != f["protected"]:
            return False
        if any(tag not in record.get("tags", []) for tag in self.tags):
            return False
        for key, want in f.items():
            if key in ("visibility", "os_hidden", "size_min", "size_max", "protected"):
                continue
            value = record.get(key)
            if key in self._SETS and isinstance(want, str) and want.startswith("in:"):
                if value not in want[3:].split(","):
                    return False
            elif value is None or str(value) != str(want):
                return False
        return True
