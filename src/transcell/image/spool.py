"""A move's image written once, laid out as its disk, for a target that takes it whole.

Why: where the store and a move's target share a filesystem (the embedded
layout), a chunk file the store writes and the target then copies into its
disk is every byte written twice; ext4 shares no blocks between files, so
the second write is a real copy. A spool is one sparse file per image with
each new chunk at its own offset in the disk. A target on that filesystem
takes the file over by rename and has its disk without copying a byte; only
chunks the store held before the upload (named, not sent) and chunks of
zeros (holes) are left for it to fill.

Until it is taken, a spooled chunk is held by the store like any other:
readable (re-hashed on every read), found by later uploads, protected from
garbage collection by the manifest that names it. The take-over moves the
bytes out of the store, so it first copies out any spooled chunk another
image or a running upload also names, then records the chunk indexes it
handed over as the image's ``taken`` list before the rename: a kill between
the two leaves an orphan spool file, never a manifest that claims what the
store lost. A taken chunk is the target's now. Later images of the same move
name it as taken too (it did not change since), and nobody can read it from
the store: such an image is only good for patching the target's disk, and a
reader asking for those chunks gets ``ChunksTaken``.

The seal (identity, size and times of the spool file right after the upload
wrote it, as for chunk files: ``ChunkStore.sealed_path``) is what lets the
target take the bytes without hashing them again; a spool whose seal does
not hold, or that this process did not write, is read chunk by chunk and
re-hashed instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from transcell import exception, statefiles

if TYPE_CHECKING:
    from transcell.image.store import ChunkStore


#: Seconds a spool file must have gone unwritten before an orphan is deleted.
ORPHAN_AGE = 60.0
#: Seconds a lent spool may stay out of the store's index before it is given back.
LEND_SECONDS = 120.0
#: Chunks a spool whose size is not known yet (an upload over HTTP) may reach.
MAX_CHUNKS = 1 << 20


class ChunksTaken(exception.Conflict):
    """An image's chunks went to a move's target; the store cannot rebuild it."""


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def mark(record: dict[str, Any], spooled: Iterable[int], taken: Iterable[int]) -> None:
    """Name in a manifest being committed the indexes its spool holds and those a
    move's target holds (``taken``); an index in neither is the store's as usual."""
    record.pop("spool", None)
    record.pop("taken", None)
    if spooled := sorted(spooled):
        record["spool"] = spooled
    if taken := sorted(taken):
        record["taken"] = taken


def taken_bytes(record: dict[str, Any], taken: Iterable[int]) -> int:
    chunk_size, size = int(record.get("chunk_size") or 1), int(record["size"])
    return sum(min(chunk_size, size - i * chunk_size) for i in taken)


class SpoolWriter:
    """One upload's spool: chunks written at their own offsets by the upload's workers."""

    def __init__(self, path: str, size: int | None, chunk_size: int):
        self.path, self.size, self.chunk_size = path, size, chunk_size
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by an upload of this image that did not finish
        os.close(statefiles.create_private(path))  # 0600, never through a planted link
        # read back at commit: a chunk sent once but named at several indexes is copied
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        if size is not None:
            os.ftruncate(self.fd, size)
        self._lock = threading.Condition()
        #: writes running now: the file is closed only once none is (its descriptor
        #: number could otherwise be reused under a late writer by another file)
        self._active = 0
        self._frozen = False
        #: index -> digest of every chunk written here, and its length
        self.placed: dict[int, str] = {}
        self.lengths: dict[int, int] = {}

    def put(self, index: int, digest: str, data: bytes | memoryview) -> None:
        offset = index * self.chunk_size
        end = self.size if self.size is not None else MAX_CHUNKS * self.chunk_size
        if index < 0 or offset + len(data) > end or len(data) > self.chunk_size:
            raise ValueError(f"chunk {index} of {len(data)} bytes does not fit the image")
        with self._lock:
            if self.fd < 0 or self._frozen:
                raise ValueError("the upload has ended")
            self._active += 1
        try:
            self._write(data, offset)
            with self._lock:
                self.placed[index] = digest
                self.lengths[index] = len(data)
        finally:
            with self._lock:
                self._active -= 1
                self._lock.notify_all()

    def freeze(self) -> None:
        """No more chunks: wait for those being written. A commit checks and seals
        what is there, and a chunk landing after that check would not be checked."""
        with self._lock:
            self._frozen = True
            self._lock.wait_for(lambda: self._active == 0)

    def _write(self, data: bytes | memoryview, offset: int) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

    def complete(self, digests: list[str], size: int) -> list[int]:
        """At commit, once the chunk list is known: the spool cut to ``size``, and
        chunks that occur at several indexes but were sent once (a client sends a
        digest once per upload) copied to each; returns every index it holds."""
        os.ftruncate(self.fd, size)
        with self._lock:
            placed = dict(self.placed)
        first = {}
        for index, digest in sorted(placed.items()):
            first.setdefault(digest, index)
        for index, digest in enumerate(digests):
            if index not in placed and digest in first:
                source = first[digest]
                data = os.pread(self.fd, self.lengths[source], source * self.chunk_size)
                self._write(data, index * self.chunk_size)
                placed[index] = digest
        with self._lock:
            self.placed = placed
        return sorted(placed)

    def close(self) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self._active == 0)
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Spools:
    """The spool files of one chunk store and the chunks they hold.

    Every method that changes what the store holds runs under the store's
    lock, as manifest updates and garbage collection do.
    """

    def __init__(self, store: ChunkStore):
        self.store = store
        self.dir = statefiles.private_dir(os.path.join(store.root, "spools"))
        #: digest -> {image id: (offset, length)} of committed, untaken spools
        self._where: dict[str, dict[str, tuple[int, int]]] = {}
        #: image id -> the spool file's signature right after its upload wrote it
        self._seals: dict[str, tuple[int, ...]] = {}
        #: image id -> (its spool's indexes, when) of spools lent to a taker
        self._lent: dict[str, tuple[list[int], float]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def path(self, image_id: str) -> str:
        return os.path.join(self.dir, os.path.basename(self.store.manifest_path(image_id))[:-5])

    def start(self, image_id: str, size: int | None) -> SpoolWriter:
        """A new spool for an upload; ``size`` None until its commit says (HTTP)."""
        return SpoolWriter(self.path(image_id), size, self.store.chunk_size)

    # -- what the store holds -------------------------------------------------------

    def _load(self) -> None:
        """After a restart: the committed spools, found from the spool files there are and
        their manifests (no seals); a store without spools reads no manifest for it."""
        if self._loaded:
            return
        with self.store.lock, self._lock:
            if self._loaded:
                return
            for name in sorted(os.listdir(self.dir)):
                try:
                    record = self.store.read_manifest(name)
                except ValueError:
                    continue  # not an image's spool: the audit reports it
                if record is not None and record.get("spool"):
                    self._add(record)
            self._loaded = True

    def _add(self, record: dict[str, Any]) -> None:
        chunk_size, size = int(record["chunk_size"]), int(record["size"])
        for index in record["spool"]:
            digest = record["chunks"][index]
            length = min(chunk_size, size - index * chunk_size)
            self._where.setdefault(digest, {})[record["id"]] = (index * chunk_size, length)

    def commit(self, image_id: str, finish: Any, writer: SpoolWriter | None
               ) -> dict[str, Any]:
        """Write the manifest of an upload (``finish`` as for ``update_manifest``) and,
        under the same lock, hold the chunks of its spool; a spool it did not use goes."""
        with self.store.lock:
            record = self.store.update_manifest(image_id, finish)
            if record is None:
                raise exception.ImageNotFound(image_id=image_id)
            if writer is not None and record.get("spool"):
                self.register(record, writer)
        if writer is not None and not record.get("spool"):
            writer.discard()
        return record

    def register(self, record: dict[str, Any], writer: SpoolWriter) -> None:
        """The upload committed (``record`` is its manifest): its spooled chunks are held."""
        writer.close()
        self._load()
        with self._lock:
            self._add(record)
            with contextlib.suppress(FileNotFoundError):
                self._seals[record["id"]] = _signature(os.stat(writer.path))

    def locate(self, digest: str) -> tuple[str, int, int] | None:
        """``(spool path, offset, length)`` of a spooled chunk, or None."""
        self._load()
        with self._lock:
            places = self._where.get(digest)
            if not places:
                return None
            image_id, (offset, length) = next(iter(places.items()))
        return self.path(image_id), offset, length

    def read(self, digest: str) -> bytes | None:
        """A spooled chunk's bytes as the file holds them (the caller re-hashes), or None."""
        found = self.locate(digest)
        if found is None:
            return None
        path, offset, length = found
        try:
            with open(path, "rb", buffering=0) as f:
                return os.pread(f.fileno(), length, offset)
        except FileNotFoundError:
            return None

    def digests(self) -> set[str]:
        self._load()
        with self._lock:
            return set(self._where)

    def _forget(self, image_id: str) -> None:
        with self._lock:
            self._seals.pop(image_id, None)
            self._lent.pop(image_id, None)
            self._unplace(image_id)

    def _unplace(self, image_id: str) -> None:
        """The spool's chunks out of the index (the caller holds ``_lock``)."""
        for digest in [d for d, places in self._where.items() if image_id in places]:
            places = self._where[digest]
            places.pop(image_id, None)
            if not places:
                del self._where[digest]

    def _copy_out(self, record: dict[str, Any], keep: set[str]) -> None:
        """Chunks of this spool that ``keep`` names become chunk files, checked on the way."""
        mine = {record["chunks"][i] for i in record.get("spool") or ()}
        for digest in sorted(mine & keep):
            if self.store.has_file(digest):
                continue
            data = self.read(digest)
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                continue  # damaged or gone: the store's check reports the loss
            self.store.put_known(digest, data)

    def drop(self, record: dict[str, Any]) -> None:
        """The image is deleted: keep what others name, then let the spool go (also
        one its upload left unfinished: a kill mid-upload leaves the image saving)."""
        self._load()
        with self.store.lock:
            if record.get("spool"):
                self._copy_out(record, self.store.referenced())
                self._forget(record["id"])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(record["id"]))

    # -- the take-over --------------------------------------------------------------------

    def take(self, image_id: str, dest_path: str) -> list[int] | None:
        """Hand the image's spool to a target in this process as ``dest_path``; the
        indexes it held. None (and nothing changed) when there is none to offer
        (see ``lend``) or the file cannot be renamed there (another filesystem):
        the caller rebuilds from the store instead."""
        with self.store.lock:
            offered = self.lend(image_id)
            if offered is None:
                return None
            try:
                if os.stat(os.path.dirname(os.path.abspath(dest_path))).st_dev != \
                        offered["signature"][0]:
                    raise OSError("another filesystem")
                os.rename(offered["path"], dest_path)
            except OSError:
                self.give_back(image_id)
                return None
            return self.confirm(image_id)

    def lend(self, image_id: str) -> dict[str, Any] | None:
        """Offer the image's spool to a target on this filesystem: its path, seal
        (``signature``: device, inode, size, mtime, ctime) and chunk indexes.

        None when there is nothing to offer: no spool, one lent already, or its
        seal does not hold (not written by this process, or changed since).
        Chunks of it another image or a running upload names are copied out
        first; until ``confirm``, ``give_back`` or ``LEND_SECONDS`` the spool's
        chunks are out of the store's index, so no upload starts relying on them.
        """
        self._load()
        path = self.path(image_id)
        with self.store.lock:
            self._expire()
            record = self.store.read_manifest(image_id)
            if record is None or not record.get("spool"):
                return None
            with self._lock:
                seal = self._seals.get(image_id)
                if image_id in self._lent:
                    return None
            try:
                if seal is None or _signature(os.stat(path)) != seal:
                    return None
            except FileNotFoundError:
                return None
            self._copy_out(record, self.store.referenced(excluding=image_id))
            with self._lock:
                self._unplace(image_id)
                self._lent[image_id] = (list(record["spool"]), time.monotonic())
        return {"path": path, "signature": list(seal), "indexes": sorted(record["spool"])}

    def confirm(self, image_id: str) -> list[int]:
        """The target renamed the lent spool away: its chunks are the target's now, and
        the image names them as ``taken``."""
        with self.store.lock:
            with self._lock:
                lent = self._lent.get(image_id)
            if lent is None:
                raise exception.Conflict(f"Image {image_id} has no spool lent out to take.")
            if os.path.lexists(self.path(image_id)):
                raise exception.Conflict(f"The spool of image {image_id} was not taken: it "
                                         "is still in the image store.")
            spooled = lent[0]

            def hand_over(current: dict[str, Any]) -> None:
                if current.get("spool") != spooled:
                    raise exception.Conflict(f"Image {image_id}'s spool changed while it "
                                             "was being taken over.")
                current.pop("spool")
                current["taken"] = sorted(spooled)

            self.store.update_manifest(image_id, hand_over)
            self._forget(image_id)
        return sorted(spooled)

    def give_back(self, image_id: str) -> bool:
        """The target did not take the lent spool: it is the store's again, if it is
        still there. A spool renamed away but never confirmed (its taker died) stays
        lost: its image's chunks are missing until the move that made it is undone."""
        with self.store.lock:
            with self._lock:
                lent = self._lent.pop(image_id, None)
            if lent is None:
                return False
            record = self.store.read_manifest(image_id)
            if record is None or not record.get("spool") or \
                    not os.path.exists(self.path(image_id)):
                return False
            with self._lock:
                self._add(record)
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [i for i, (_, at) in self._lent.items() if now - at > LEND_SECONDS]
        for image_id in stale:
            self.give_back(image_id)

    # -- housekeeping -----------------------------------------------------------------------

    def orphans(self) -> list[str]:
        """Spool files no manifest holds: left by a kill (mid-upload or mid-take-over).

        A spool whose image is still saving belongs to a running upload.
        """
        found = []
        with self.store.lock:
            for name in sorted(os.listdir(self.dir)):
                try:
                    record = self.store.read_manifest(name)
                except ValueError:
                    found.append(name)
                    continue
                if record is None or (not record.get("spool")
                                      and record.get("status") != "saving"):
                    found.append(name)
        return found

    def remove_orphans(self, names: Iterable[str], min_age: float = ORPHAN_AGE) -> int:
        """Delete those of ``names`` that are still orphans and untouched for ``min_age``
        seconds. An upload begins under the store's lock, so in this process none
        can start on one of them while this runs; the age covers another process
        (the audit's) that cannot take the serving process's lock: an upload that
        began since the check writes its spool all the time."""
        removed = 0
        now = time.time()
        with self.store.lock:
            orphaned = set(self.orphans())
            for name in names:
                if name not in orphaned:
                    continue
                path = os.path.join(self.dir, name)
                with contextlib.suppress(FileNotFoundError):
                    if now - os.stat(path).st_mtime >= min_age:
                        os.unlink(path)
                        removed += 1
        return removed
