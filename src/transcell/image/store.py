"""The global, content-addressed chunk store.

Every disk that leaves a cell travels as chunks through this store, so it is
built to be boring: a chunk is a file named by the sha256 of its bytes, written
to a temporary name and renamed into place (a reader never sees half a chunk),
and every read re-hashes what it returns. Identical chunks are stored once,
which is what lets a re-upload send only what changed.

Layout under ``root``::

    chunks/<first 2 hex>/<sha256 hex>   one file per distinct chunk
    images/<image uuid>.json            one manifest (the image record) per image
    spools/<image uuid>                 a move's new chunks laid out as its disk
                                        (see :mod:`transcell.image.spool`)

One process owns a store (the image service; a distributed deployment reaches
it over HTTP). Within that process the store lock makes manifest updates and
garbage collection safe against each other, and pins protect chunks an upload
has written but not yet recorded in a manifest.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from transcell import exception, statefiles
from transcell.image.pipeline import zero_digest

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"


class ChunkMissing(exception.TranscellError):
    """A manifest names a chunk the store does not hold: the store is damaged."""

    msg_fmt = "Chunk %(digest)s is missing from the image store."


def digest_of(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return digest


def _check_image_id(image_id: str) -> str:
    """Only canonical UUIDs name manifests, so an id can never escape the directory."""
    try:
        canonical = str(uuid.UUID(image_id))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"not an image id: {image_id!r}") from None
    if canonical != image_id:
        raise ValueError(f"not a canonical image id: {image_id!r}")
    return image_id


def _write_atomically(path: str, data: bytes | memoryview, durable: bool = False) -> None:
    # private (0600, never through a planted link); chunks are not fsynced, as
    # before: every read re-hashes a chunk, so a torn write is detected, not served
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f"{_TMP_PREFIX}{uuid.uuid4().hex}")
    statefiles.write_atomic(path, data, tmp_path=tmp, durable=durable)


class Pin:
    """Chunks an unfinished upload relies on; garbage collection leaves them alone."""

    def __init__(self, store: ChunkStore):
        self._store = store
        self._held: collections.Counter[str] = collections.Counter()

    def claim(self, digests: Iterable[str]) -> set[str]:
        """Pin ``digests`` and return those the store lacks, in one locked step.

        Doing both under the lock closes the gap in which a chunk reported
        present could be collected before the caller's manifest names it.
        """
        digests = list(digests)
        with self._store.lock:
            for digest in digests:
                self._held[digest] += 1
                self._store._pins[digest] += 1
            return self._store.missing(digests)

    def release(self) -> None:
        with self._store.lock:
            self._store._pins.subtract(self._held)
            for digest in self._held:
                if self._store._pins[digest] <= 0:
                    del self._store._pins[digest]
            self._held.clear()


#: Seals kept at most (about 256 GiB of 4 MiB chunks); the oldest are forgotten first.
MAX_SEALS = 65536


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ChunkStore:
    def __init__(self, root: str, chunk_size: int = 4 * 1024 * 1024):
        if chunk_size < 4096:
            raise ValueError("chunk_size must be at least 4096 bytes")
        self.root = os.path.abspath(root)
        self.chunk_size = chunk_size
        self.chunk_dir = os.path.join(self.root, "chunks")
        self.image_dir = os.path.join(self.root, "images")
        statefiles.private_dir(self.root)
        statefiles.private_dir(self.chunk_dir)
        statefiles.private_dir(self.image_dir)
        #: Serialises manifest read-modify-write and garbage collection.
        self.lock = threading.RLock()
        self._pins: collections.Counter[str] = collections.Counter()
        #: Chunk files this store wrote from bytes it had just hashed: digest -> the
        #: file's identity and times right after (see ``sealed_path``).
        self._seals: collections.OrderedDict[str, tuple[int, ...]] = collections.OrderedDict()
        self._seal_lock = threading.Lock()
        from transcell.image.spool import Spools  # the spool module types this store
        self.spools = Spools(self)

    # -- chunks ---------------------------------------------------------------

    def chunk_path(self, digest: str) -> str:
        _check_digest(digest)
        return os.path.join(self.chunk_dir, digest[:2], digest)

    def has(self, digest: str) -> bool:
        return self.has_file(digest) or self.spools.locate(digest) is not None

    def has_file(self, digest: str) -> bool:
        return os.path.exists(self.chunk_path(digest))

    def missing(self, digests: Iterable[str]) -> set[str]:
        return {d for d in set(digests) if not self.has(d)}

    def put(self, data: bytes | memoryview) -> str:
        """Store ``data`` under its hash; storing the same bytes again is free."""
        digest = digest_of(data)
        self.put_known(digest, data)
        return digest

    def put_known(self, digest: str, data: bytes | memoryview) -> bool:
        """Store bytes the caller has just hashed; returns whether anything was written.

        This spares a second hash of every chunk on the upload path. Callers
        must pass the sha256 of ``data`` itself; ``get`` would reject anything else.
        """
        path = self.chunk_path(digest)
        if os.path.exists(path):
            return False
        statefiles.private_dir(os.path.dirname(path))
        _write_atomically(path, data)
        self._seal(digest, path)
        return True

    def _seal(self, digest: str, path: str) -> None:
        try:
            signature = _signature(os.stat(path))
        except FileNotFoundError:
            return
        with self._seal_lock:
            self._seals[digest] = signature
            self._seals.move_to_end(digest)
            while len(self._seals) > MAX_SEALS:
                self._seals.popitem(last=False)

    def sealed_path(self, digest: str, length: int) -> str | None:
        """The chunk's file, if it is still the one this store wrote and hashed; else None.

        What is trusted: when ``put_known`` wrote the file, its bytes were the
        ones whose sha256 names it (the caller, in this process, had just
        hashed them; the chunk API re-hashes what it receives). The seal is the
        file's device, inode, size, mtime and ctime right after that write.
        A write to the file, a truncation, or a replacement by another file
        changes at least one of them, and none can be set back by an
        unprivileged process (ctime cannot be set at all), so an unchanged
        seal means the bytes in the page cache are still the hashed ones, and a
        reader on this host may use the file without hashing it again.

        Not covered: a write within the filesystem's timestamp granularity
        (one clock tick) of the store's own write, and corruption beneath the
        page cache (a disk's bit rot), which no sha256 of the page cache would
        see either. The store's directory is 0700 to the service's user.
        Anything the seal does not vouch for is read through ``get``, which
        re-hashes it.
        """
        with self._seal_lock:
            signature = self._seals.get(digest)
        if signature is None or signature[2] != length:
            return None
        path = self.chunk_path(digest)
        try:
            current = _signature(os.stat(path))
        except FileNotFoundError:
            current = None
        if current != signature:
            with self._seal_lock:
                if self._seals.get(digest) == signature:
                    del self._seals[digest]
            return None
        return path

    def get(self, digest: str) -> bytes:
        """The chunk's bytes, only if they still hash to its name."""
        try:
            with open(self.chunk_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            spooled = self.spools.read(digest)
            if spooled is None:
                raise ChunkMissing(digest=digest) from None
            data = spooled
        actual = digest_of(data)
        if actual != digest:
            raise exception.ChecksumMismatch(what=f"chunk {digest}", expected=digest,
                                             actual=actual)
        return data

    def size_of(self, digest: str) -> int:
        try:
            return os.path.getsize(self.chunk_path(digest))
        except FileNotFoundError:
            spooled = self.spools.locate(digest)
            if spooled is None:
                raise
            return spooled[2]

    def delete(self, digest: str) -> bool:
        with self._seal_lock:
            self._seals.pop(digest, None)
        try:
            os.unlink(self.chunk_path(digest))
            return True
        except FileNotFoundError:
            return False

    def iter_digests(self) -> Iterator[str]:
        try:
            shards = sorted(os.listdir(self.chunk_dir))
        except FileNotFoundError:
            return
        for shard in shards:
            try:
                names = sorted(os.listdir(os.path.join(self.chunk_dir, shard)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if _DIGEST.match(name):
                    yield name

    # -- manifests ------------------------------------------------------------

    def manifest_path(self, image_id: str) -> str:
        return os.path.join(self.image_dir, f"{_check_image_id(image_id)}.json")

    def read_manifest(self, image_id: str) -> dict[str, Any] | None:
        try:
            with open(self.manifest_path(image_id), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None

    def write_manifest(self, record: dict[str, Any]) -> None:
        data = json.dumps(record, sort_keys=True).encode()
        with self.lock:
            _write_atomically(self.manifest_path(record["id"]), data, durable=True)

    def create_manifest(self, record: dict[str, Any]) -> bool:
        """Write a new manifest unless one exists; False when the id is taken."""
        with self.lock:
            if os.path.exists(self.manifest_path(record["id"])):
                return False
            self.write_manifest(record)
            return True

    def update_manifest(self, image_id: str,
                        change: Callable[[dict[str, Any]], dict[str, Any] | None]
                        ) -> dict[str, Any] | None:
        """Read, change and write one manifest without losing a concurrent update.

        ``change`` may mutate the record or return a new one; if it raises,
        nothing is written. Returns None when the manifest does not exist.
        """
        with self.lock:
            record = self.read_manifest(image_id)
            if record is None:
                return None
            new = change(record)
            record = record if new is None else new
            self.write_manifest(record)
            return record

    def iter_manifests(self) -> Iterator[dict[str, Any]]:
        try:
            names = sorted(os.listdir(self.image_dir))
        except FileNotFoundError:
            return
        for name in names:
            if not name.endswith(".json") or name.startswith(_TMP_PREFIX):
                continue
            try:
                record = self.read_manifest(name[:-5])
            except ValueError:
                continue
            if record is not None:
                yield record

    def remove_manifest(self, image_id: str) -> dict[str, Any] | None:
        """Drop an image's manifest and collect the chunks no other image uses."""
        with self.lock:
            record = self.read_manifest(image_id)
            if record is None:
                return None
            os.unlink(self.manifest_path(image_id))
            self.spools.drop(record)
            self.collect(record.get("chunks") or [])
            return record

    # -- garbage collection -------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Pin]:
        pin = Pin(self)
        try:
            yield pin
        finally:
            pin.release()

    def referenced(self, excluding: str | None = None) -> set[str]:
        """Digests a manifest (but ``excluding``'s) or a pin holds; call with the lock held
        for a stable answer. Chunks an image handed to a move's target (its ``taken``
        indexes) are not the store's to hold."""
        with self.lock:
            refs = {d for d in self._pins if self._pins[d] > 0}
            for record in self.iter_manifests():
                if record.get("id") == excluding:
                    continue
                chunks = record.get("chunks") or []
                taken = set(record.get("taken") or ())
                refs.update((d for i, d in enumerate(chunks) if i not in taken)
                            if taken else chunks)
            return refs

    def collect(self, candidates: Iterable[str] | None = None) -> int:
        """Delete unreferenced chunks among ``candidates`` (all chunks when None)."""
        with self.lock:
            refs = self.referenced()
            pool = self.iter_digests() if candidates is None else set(candidates)
            return sum(1 for d in list(pool) if d not in refs and self.delete(d))

    # -- housekeeping -------------------------------------------------------------

    def check(self, deep: bool = False) -> dict[str, list[str]]:
        """Referenced chunks that are missing, chunks nothing references, and
        (with ``deep``) chunks whose bytes no longer match their name."""
        with self.lock:
            refs = self.referenced()
            files = set(self.iter_digests())
            present = files | self.spools.digests()
            orphan_spools = self.spools.orphans()
        corrupt = []
        if deep:
            for digest in sorted(present):
                try:
                    self.get(digest)
                except (exception.ChecksumMismatch, ChunkMissing):
                    corrupt.append(digest)
        # a chunk list names a chunk of zeros that was never stored: readers make it
        missing = refs - present - self._zero_names()
        return {"missing": sorted(missing), "orphans": sorted(files - refs),
                "corrupt": corrupt, "orphan_spools": orphan_spools}

    def _zero_names(self) -> set[str]:
        """The digests a chunk of zeros of each chunk length in use goes by."""
        lengths = {self.chunk_size}
        for record in self.iter_manifests():
            size, chunk_size = record.get("size"), record.get("chunk_size")
            if size and chunk_size and int(size) % int(chunk_size):
                lengths.add(int(size) % int(chunk_size))
            if chunk_size:
                lengths.add(int(chunk_size))
        return {zero_digest(n) for n in lengths}

    def stats(self) -> dict[str, int]:
        chunks = 0
        stored = 0
        for digest in self.iter_digests():
            with contextlib.suppress(FileNotFoundError):
                stored += self.size_of(digest)
                chunks += 1
        images = sum(1 for _ in self.iter_manifests())
        return {"chunks": chunks, "bytes_stored": stored, "images": images,
                "chunk_size": self.chunk_size,
                "free_bytes": shutil.disk_usage(self.root).free}
