"""Disk files as a guest sees them, through qemu-img and qemu-io.

Root disks are either qcow2 overlays on a cached base image or sparse raw
copies. Moving a server between cells needs three things from them: build them
from an image, read and write them as the guest would (to prove the bytes that
arrive are the bytes that left), and flatten them into one self-contained raw
image for the image store. Everything here is synchronous subprocess work.

Every function takes an optional ``fmt``. Callers that know the format should
pass it: probing lets a guest that writes a qcow2 header at sector 0 of a raw
disk change how the host interprets the file.

Files are created under a temporary name in the destination directory and
renamed into place, so after a crash a disk either exists whole or not at all;
:func:`remove_stale_partials` sweeps what a dead process left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

from transcell import exception
from transcell.compute.virt import qcow2_meta
from transcell.lifecycle import pid_exists

QEMU_IMG = "qemu-img"
QEMU_IO = "qemu-io"

SECTOR = 512
_CHUNK = 4 * 1024 * 1024
_ZEROS = bytes(_CHUNK)
_PARTIAL_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{32}\.part$")
_FORMATS = ("raw", "qcow2")


# -- plumbing ---------------------------------------------------------------

def _run(argv: list[str], what: str, cwd: str | None = None) -> str:
    """Run a qemu tool; any failure becomes a DiskError naming the operation."""
    env = dict(os.environ, LC_ALL="C")
    try:
        # the disks qemu creates hold guest data: 0600 whatever our umask
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env,
                              check=False, umask=0o077)
    except OSError as e:
        raise exception.DiskError(reason=f"{what}: cannot run {argv[0]}: {e}") from e
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")
        raise exception.DiskError(reason=f"{what}: {detail}")
    return proc.stdout


def _check_format(fmt: str) -> None:
    if fmt not in _FORMATS:
        raise exception.DiskError(reason=f"unsupported disk format {fmt!r}")


def _fmt_args(fmt: str | None, flag: str = "-f") -> list[str]:
    return [flag, fmt] if fmt else []


def temp_path_for(path: str) -> str:
    """A hidden sibling of ``path`` that :func:`remove_stale_partials` recognises."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{os.getpid()}.{uuid.uuid4().hex}.part")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_partials(directory: str) -> list[str]:
    """Delete temporary files whose creating process is gone; returns what was removed."""
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for entry in names:
        m = _PARTIAL_RE.match(entry)
        if m and not pid_exists(int(m.group(1))):
            _unlink_quietly(os.path.join(directory, entry))
            removed.append(entry)
    return removed


class _Creating:
    """Context manager giving a temp path that is renamed to ``path`` only on success."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.tmp = temp_path_for(self.path)

    def __enter__(self) -> str:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            _unlink_quietly(self.tmp)


# -- inspection -------------------------------------------------------------

def info(path: str, fmt: str | None = None) -> dict:
    """``qemu-img info`` as a dict.

    Keys used by transcell: ``format``, ``virtual-size``, ``actual-size`` and
    ``backing-filename`` (always present, None without a backing file), plus
    ``backing-filename-format`` when there is one. ``-U`` lets a running guest
    keep its lock on the file while we look.
    """
    if not os.path.exists(path):
        raise exception.DiskError(reason=f"no disk at {path}")
    out = _run([QEMU_IMG, "info", "-U", "--output=json", *_fmt_args(fmt), path],
               f"qemu-img info {path}")
    data = json.loads(out)
    data.setdefault("backing-filename", None)
    return data


def virtual_size(path: str, fmt: str | None = None) -> int:
    """The size the guest sees: read from the file itself when its format is known.

    A raw file's virtual size is its length, and a qcow2 file's is the size
    field of its header, which is where ``qemu-img info`` reads it too; so a
    move or a boot does not start a process for it. Anything else (format not
    given, a raw length qemu would round, a header not recognised) asks qemu-img.
    """
    quick = _header_size(path, fmt)
    return quick if quick is not None else int(info(path, fmt)["virtual-size"])


def qcow2_header(path: str) -> tuple[int, bool] | None:
    """(virtual size, whether it names a backing file) from a qcow2 file's header.

    The same two fields ``qemu-img info`` reports as ``virtual-size`` and
    ``backing-filename``, read without a process; None when the file is not a
    qcow2 of version 2 or 3 (the caller then asks qemu-img).
    """
    try:
        with open(path, "rb") as fh:
            header = qcow2_meta.parse_header(fh.read(qcow2_meta.HEADER_BYTES))
    except OSError:
        return None
    return None if header is None else (header.size, header.backed)


def _header_size(path: str, fmt: str | None) -> int | None:
    try:
        if fmt == "raw":
            st = os.stat(path)
            if st.st_size % 512 == 0 and os.path.isfile(path):
                return st.st_size
        elif fmt == "qcow2":
            found = qcow2_header(path)
            return found[0] if found is not None else None
    except OSError:
        return None
    return None


# -- creation ---------------------------------------------------------------

def create_blank(path: str, size_bytes: int, fmt: str = "raw") -> None:
    """An empty disk (sparse when raw), for servers that boot from nothing."""
    _check_format(fmt)
    if size_bytes <= 0:
        raise exception.DiskError(reason=f"cannot create a {size_bytes}-byte disk at {path}")
    with _Creating(path) as tmp:
        _run([QEMU_IMG, "create", "-q", "-f", fmt, tmp, str(size_bytes)],
             f"qemu-img create {path}")


def create_qcow2_overlay(base_path: str, path: str, size_bytes: int,
                         base_format: str = "raw") -> None:
    """A qcow2 disk whose unwritten clusters read from ``base_path``.

    The guest never sees less than the base: the virtual size is the larger of
    ``size_bytes`` and the base's virtual size (0 means "the image's size").
    """
    _check_format(base_format)
    base_path = os.path.abspath(base_path)
    size = max(int(size_bytes), virtual_size(base_path, base_format))
    with _Creating(path) as tmp:
        _run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", base_path, "-F", base_format,
              tmp, str(size)], f"qemu-img create overlay {path} on {base_path}")


def create_raw_copy(base_path: str, path: str, size_bytes: int,
                    base_format: str = "raw") -> None:
    """A sparse raw copy of the base grown to ``size_bytes`` (never shrunk below the base)."""
    _check_format(base_format)
    with _Creating(path) as tmp:
        _run([QEMU_IMG, "convert", "-q", "-f", base_format, "-O", "raw", "-S", "4k",
              base_path, tmp], f"qemu-img convert {base_path} to raw {path}")
        if size_bytes > os.path.getsize(tmp):
            os.truncate(tmp, size_bytes)


def flatten_to_raw(path: str, dest: str, fmt: str | None = None) -> None:
    """Write the guest-visible content of ``path`` to ``dest`` as one sparse raw file.

    The result needs no backing file, so it can be uploaded and rebuilt on a
    host that has never seen the original base image.
    """
    if not os.path.exists(path):
        raise exception.DiskError(reason=f"no disk at {path}")
    with _Creating(dest) as tmp:
        _run([QEMU_IMG, "convert", "-q", *_fmt_args(fmt), "-O", "raw", "-S", "4k", path, tmp],
             f"qemu-img convert {path} to raw {dest}")


def resize(path: str, size_bytes: int, fmt: str | None = None) -> None:
    """Grow the disk; shrinking would cut off guest data, so it is refused."""
    current = info(path, fmt)
    fmt = fmt or current["format"]
    size = int(current["virtual-size"])
    if size_bytes < size:
        raise exception.DiskError(
            reason=f"cannot shrink {path} from {size} to {size_bytes} bytes")
    if size_bytes == size:
        return
    _run([QEMU_IMG, "resize", "-q", "-f", fmt, path, str(size_bytes)],
         f"qemu-img resize {path}")


# -- the guest's view -------------------------------------------------------

def _check_range(path: str, offset: int, length: int, size: int) -> None:
    if offset < 0 or length < 0 or offset + length > size:
        raise exception.DiskError(
            reason=f"range {offset}+{length} is outside {path} (virtual size {size})")


def guest_read(path: str, offset: int, length: int, fmt: str | None = None) -> bytes:
    """Bytes the guest would read at ``offset``, wherever they physically live.

    For qcow2 a sector-aligned window is extracted with qemu-img through the
    raw driver's offset/size options (so backing-file regions resolve as the
    guest sees them), then trimmed to the requested bytes.
    """
    meta = info(path, fmt)
    fmt = fmt or meta["format"]
    size = int(meta["virtual-size"])
    _check_range(path, offset, length, size)
    if length == 0:
        return b""
    if fmt == "raw":
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        return data + bytes(length - len(data))
    start = offset - offset % SECTOR
    end = min(-(-(offset + length) // SECTOR) * SECTOR, size)
    spec = {"driver": "raw", "offset": start, "size": end - start,
            "file": {"driver": fmt,
                     "file": {"driver": "file", "filename": os.path.abspath(path)}}}
    with tempfile.TemporaryDirectory(prefix="transcell-read-") as tmpdir:
        out = os.path.join(tmpdir, "window")
        _run([QEMU_IMG, "convert", "-q", "-U", "-O", "raw", "json:" + json.dumps(spec), out],
             f"read {length} bytes at {offset} of {path}")
        with open(out, "rb") as f:
            f.seek(offset - start)
            data = f.read(length)
    if len(data) != length:
        raise exception.DiskError(reason=f"short read at {offset} of {path}")
    return data


def allocation_map(path: str, fmt: str) -> list[dict]:
    """Extents of the guest's view and where each lives (``depth`` 0 = this file).

    ``qemu-img map`` reports, for an overlay, which ranges the guest wrote
    (depth 0) and which still read through to the backing file; a move uses
    it to send only what the guest changed since its base image.
    """
    out = _run([QEMU_IMG, "map", "--output=json", "-U", "-f", fmt, os.path.abspath(path)],
               f"qemu-img map {path}")
    return json.loads(out)


def read_window(path: str, fmt: str, start: int, length: int) -> bytes:
    """The guest's bytes in [start, start + length), sector-aligned, in one qemu-img run."""
    spec = {"driver": "raw", "offset": start, "size": length,
            "file": {"driver": fmt,
                     "file": {"driver": "file", "filename": os.path.abspath(path)}}}
    # the window is read once and dropped: keep it in memory-backed storage if the
    # host has some, so reading a changed region does not also write it to disk
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
        else None
    with tempfile.TemporaryDirectory(prefix="transcell-window-", dir=scratch) as tmpdir:
        out = os.path.join(tmpdir, "window")
        _run([QEMU_IMG, "convert", "-q", "-U", "-O", "raw", "json:" + json.dumps(spec), out],
             f"read {length} bytes at {start} of {path}")
        with open(out, "rb") as f:
            data = f.read()
    if len(data) < length:
        data += bytes(length - len(data))
    return data


@contextlib.contextmanager
def writer_lock(path: str) -> Iterator[None]:
    """Hold the lock a disk's writer and a swap of its top layer share.

    A running guest's disk may have its top layer frozen under it (pre-copy,
    ``disk_chain.freeze``); a write that opened the old top must finish before
    the swap, or it would land in a layer already read. An ``flock`` on the
    disk file itself serialises them across processes as well as threads (qemu's
    own locks are byte-range locks, which ``flock`` does not touch); a waiter
    that finds a new file under the name once it holds the lock takes that one's.
    """
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (
                    mine.st_ino, mine.st_dev):
                yield
                return
        finally:
            os.close(fd)


def guest_write(path: str, offset: int, data: bytes, fmt: str | None = None) -> None:
    """Write as the guest would: for qcow2 the data lands in the overlay, never the base."""
    if not os.path.exists(path):
        raise exception.DiskError(reason=f"no disk at {path}")
    with writer_lock(path):
        _guest_write(path, offset, data, fmt)


def _guest_write(path: str, offset: int, data: bytes, fmt: str | None) -> None:
    meta = info(path, fmt)
    fmt = fmt or meta["format"]
    _check_range(path, offset, len(data), int(meta["virtual-size"]))
    if not data:
        return
    if fmt == "raw":
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return
    # qemu-io splits its command line on spaces, so the pattern file gets a
    # fixed relative name inside a private working directory.
    with tempfile.TemporaryDirectory(prefix="transcell-write-") as tmpdir:
        with open(os.path.join(tmpdir, "data"), "wb") as f:
            f.write(data)
        out = _run([QEMU_IO, "-f", fmt, "-c", f"write -s data {offset} {len(data)}",
                    os.path.abspath(path)],
                   f"write {len(data)} bytes at {offset} of {path}", cwd=tmpdir)
    if "failed" in out:
        raise exception.DiskError(reason=f"write at {offset} of {path}: {out.strip()}")


def _file_regions(f) -> Iterator[tuple[bool, int, int]]:
    """(is_data, start, end) runs of a file, so holes are hashed without reading them."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    pos = 0
    while pos < size:
        try:
            data_start = os.lseek(fd, pos, os.SEEK_DATA)
            data_end = os.lseek(fd, data_start, os.SEEK_HOLE)
        except OSError as e:
            if e.errno != errno.ENXIO:  # no hole support here: read the rest
                yield True, pos, size
                return
            data_start = data_end = size  # only a hole is left
        if data_start > pos:
            yield False, pos, data_start
        if data_start < size:
            yield True, data_start, data_end
        pos = data_end


def _sha256_raw_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for is_data, start, end in _file_regions(f):
            if not is_data:
                remaining = end - start
                while remaining:
                    n = min(remaining, _CHUNK)
                    digest.update(memoryview(_ZEROS)[:n])
                    remaining -= n
                continue
            f.seek(start)
            remaining = end - start
            while remaining:
                block = f.read(min(remaining, _CHUNK))
                if not block:
                    raise exception.DiskError(reason=f"{path} shrank while hashing")
                digest.update(block)
                remaining -= len(block)
    return digest.hexdigest()


def guest_checksum(path: str, fmt: str | None = None) -> str:
    """sha256 of every byte the guest can see, from 0 to the virtual size.

    Identical guest content gives the same digest whether it is a raw file or
    a qcow2 overlay on a base, which is what lets a source and a target host
    in different cells compare disks built in different ways.
    """
    meta = info(path, fmt)
    fmt = fmt or meta["format"]
    if fmt == "raw":
        return _sha256_raw_file(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = temp_path_for(os.path.join(directory, "checksum"))
    try:
        _run([QEMU_IMG, "convert", "-q", "-U", "-f", fmt, "-O", "raw", "-S", "4k", path, tmp],
             f"qemu-img convert {path} for checksum")
        return _sha256_raw_file(tmp)
    finally:
        _unlink_quietly(tmp)
