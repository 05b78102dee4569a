"""Volume bytes: sparse raw files made, grown, copied and verified, with no database.

A volume is one sparse raw file on its backend. The volume service decides
what should exist; the functions here make it so, in a way that can be
repeated after a crash: every file is built under a temporary name
(``disk.temp_path_for``, swept by ``disk.remove_stale_partials``) and renamed
into place only once it is whole, so a path either holds a complete volume
or nothing new.

Copies are judged by one measure, :func:`checksum`: the sha256 of the
volume's logical contents, holes read as zeros. Both copy paths, the direct
one (:func:`copy_direct`) and the one through the image store
(``data_store.send_through_store``), return it with the bytes they really
moved, so a caller can record what was verified and what it cost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from transcell import exception, statefiles
from transcell.compute.virt import disk
from transcell.image import sparse

GiB = 1024 ** 3
#: How much is read at once when a file is hashed or copied byte by byte.
READ_CHUNK = 4 * 1024 * 1024
_ZEROS = memoryview(bytes(READ_CHUNK))
#: ioctl(FICLONE): share the source's extents (btrfs, XFS); refused elsewhere.
_FICLONE = 0x40049409
#: copy_file_range cannot serve these source/target pairs: copy through memory.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
#: What data_store provides, reachable here too so callers need one module.
_STORE_FUNCTIONS = ("from_image", "to_image", "send_through_store", "drop_kept")


def __getattr__(name: str) -> Any:
    # data_store builds on this module, so it is imported on first use, not at the top
    if name in _STORE_FUNCTIONS:
        from transcell.volume import data_store
        return getattr(data_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def size_bytes(size_gb: int) -> int:
    """A volume size in GiB as bytes; anything but a positive whole number is refused."""
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb <= 0:
        raise ValueError(f"A volume size is a positive whole number of GiB, not {size_gb!r}.")
    return size_gb * GiB


# -- reading ---------------------------------------------------------------------------


def _hash_zeros(whole: Any, length: int) -> None:
    while length > 0:
        step = min(length, READ_CHUNK)
        whole.update(_ZEROS[:step])
        length -= step


def scan(path: str, chunk_size: int, whole: Any = None) -> Iterator[bytes | int]:
    """The file in chunks: bytes where it holds data, the length where it is one hole.

    The one way volume bytes are read here, for hashing, uploading and
    verifying alike. ``whole`` (a hashlib object) is fed the logical contents
    on the way, holes as zeros that are hashed but never read.
    """
    for chunk in sparse.chunks_of_sparse_file(path, chunk_size):
        if whole is not None:
            if isinstance(chunk, int):
                _hash_zeros(whole, chunk)
            else:
                whole.update(chunk)
        yield chunk


def checksum(path: str) -> str:
    """sha256 hex of every byte a reader of the file sees, holes included as zeros."""
    whole = hashlib.sha256()
    for _ in scan(path, READ_CHUNK, whole):
        pass
    return whole.hexdigest()


def checksums(*paths: str) -> list[str]:
    """:func:`checksum` of several files at once (hashing releases the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, len(paths)),
                            thread_name_prefix="volume-sum") as pool:
        return list(pool.map(checksum, paths))


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run that holds data; a filesystem without holes is one run."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                yield pos, size
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def allocated_bytes(path: str) -> int:
    """Bytes of the file that hold data (not holes): what a copy of it has to carry."""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        return sum(end - start for start, end in _data_extents(fd, os.fstat(fd).st_size))


# -- making and growing ----------------------------------------------------------------


@contextlib.contextmanager
def building(path: str) -> Iterator[str]:
    """A temporary name beside ``path`` that replaces it only if the block succeeds."""
    statefiles.private_dir(os.path.dirname(os.path.abspath(path)))
    tmp = disk.temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def create_blank(path: str, size_gb: int) -> None:
    """A sparse raw file of ``size_gb`` GiB, its directories made (0700, guest data).

    Repeating it for a file of that size is a no-op; a file of another size
    at ``path`` is refused with FileExistsError, never replaced: it may hold
    a volume's data.
    """
    size = size_bytes(size_gb)
    if _same_size(path, size):
        return
    statefiles.private_dir(os.path.dirname(os.path.abspath(path)))
    tmp = disk.temp_path_for(path)
    fd = statefiles.create_private(tmp)
    try:
        os.ftruncate(fd, size)
        os.close(fd)
        fd = -1
        try:
            os.link(tmp, path)  # unlike a rename, never replaces what appeared meanwhile
        except FileExistsError:
            if not _same_size(path, size):
                raise
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)


def _same_size(path: str, size: int) -> bool:
    try:
        existing = os.stat(path).st_size
    except FileNotFoundError:
        return False
    if existing != size:
        raise FileExistsError(errno.EEXIST, f"A file of {existing} bytes is already at "
                              f"{path}; a new volume of {size} bytes will not replace it",
                              path)
    return True


def resize(path: str, size_gb: int) -> None:
    """Grow the file to ``size_gb`` GiB (the new part a hole); shrinking is a ValueError."""
    size = size_bytes(size_gb)
    current = os.stat(path).st_size
    if size < current:
        raise ValueError(f"A volume cannot shrink: {path} holds {current} bytes, more than "
                         f"the {size_gb} GiB asked for.")
    if size > current:
        os.truncate(path, size)


# -- copying ---------------------------------------------------------------------------


def clone(src: str, dst: str) -> int:
    """Make ``dst`` a copy of ``src`` with the same holes; returns the bytes copied.

    A filesystem that can share extents (reflink) copies nothing, so 0 is
    returned; otherwise only the source's data runs are copied, in the kernel
    where it can. ``dst`` is replaced whole or not at all, so repeating a
    clone that died half way is safe.
    """
    with building(dst) as tmp:
        return _copy_into(src, tmp)


def _copy_into(src: str, tmp: str) -> int:
    with open(src, "rb", buffering=0) as source:
        src_fd = source.fileno()
        size = os.fstat(src_fd).st_size
        dst_fd = statefiles.create_private(tmp)
        try:
            try:
                fcntl.ioctl(dst_fd, _FICLONE, src_fd)
                return 0
            except OSError:
                pass  # no shared extents here: copy the data runs
            copied = 0
            kernel = True
            for start, end in _data_extents(src_fd, size):
                if kernel:
                    try:
                        copied += _kernel_copy(src_fd, dst_fd, start, end)
                        continue
                    except OSError as exc:
                        if exc.errno not in _NO_KERNEL_COPY:
                            raise
                        kernel = False
                copied += _memory_copy(src_fd, dst_fd, start, end)
            os.ftruncate(dst_fd, size)
            return copied
        finally:
            os.close(dst_fd)


def _kernel_copy(src_fd: int, dst_fd: int, start: int, end: int) -> int:
    pos = start
    while pos < end:
        done = os.copy_file_range(src_fd, dst_fd, end - pos, pos, pos)
        if done == 0:
            raise OSError(errno.EIO, "the source shrank while being copied")
        pos += done
    return end - start


def _memory_copy(src_fd: int, dst_fd: int, start: int, end: int) -> int:
    pos = start
    while pos < end:
        data = os.pread(src_fd, min(READ_CHUNK, end - pos), pos)
        if not data:
            raise OSError(errno.EIO, "the source shrank while being copied")
        view = memoryview(data)
        while view:
            written = os.pwrite(dst_fd, view, pos)
            view = view[written:]
            pos += written
    return end - start


def copy_direct(src: str, dst: str) -> dict[str, Any]:
    """Copy a volume between backends one host reaches, checked before it is put in place.

    Returns ``{"checksum", "bytes_sent", "bytes"}`` like ``send_through_store``:
    the sha256 of the logical contents, the bytes copied (0 when nothing had
    to be: a reflink, or a ``dst`` already equal to ``src`` from an earlier
    attempt) and the file's size.
    """
    size = os.path.getsize(src)
    want = None
    if os.path.exists(dst) and os.path.getsize(dst) == size:
        want, have = checksums(src, dst)
        if want == have:
            return {"checksum": want, "bytes_sent": 0, "bytes": size}
    with building(dst) as tmp:
        copied = _copy_into(src, tmp)
        if want is None:
            want, have = checksums(src, tmp)
        else:  # the source was hashed just now, when the old copy was compared with it
            have = checksum(tmp)
        verify(want, have, f"copy of {src} at {dst}")
    return {"checksum": want, "bytes_sent": copied, "bytes": size}


def verify(expected: str, actual: str, what: str) -> None:
    """Refuse a copy whose contents are not the source's: it must never be used."""
    if expected != actual:
        raise exception.ChecksumMismatch(what=what, expected=expected, actual=actual)
