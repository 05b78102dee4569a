"""Volume bytes: sparse files made, grown and copied, and volumes carried through the store.

The image service here is a real one (a chunk store in a temp dir) reached
through the in-process client set as ``services.image``, so what a copy
sends, what the store holds afterwards and what a damaged chunk does are
the real thing, only smaller (64 KiB chunks).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import uuid

import pytest
from volume_files import CHUNK, pattern, sparse_volume

from transcell import exception
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.image.client import ImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore
from transcell.registry import services
from transcell.volume import data, data_store

GiB = 1024 ** 3
ADMIN = RequestContext.admin()
ALICE = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])


@pytest.fixture
def image(tmp_path):
    """A real image service over its own store, as ``services.image`` for the test."""
    service = ImageService(ChunkStore(str(tmp_path / "store"), CHUNK))
    before = services.image
    services.image = ImageClient(service)
    try:
        yield service
    finally:
        services.image = before




def _allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def _leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(".")]


def _new_image(ctx=ADMIN, disk_format="raw", **fields) -> str:
    return services.image.create(ctx, disk_format=disk_format, container_format="bare",
                                 **fields)["id"]


# -- local files ------------------------------------------------------------------------


def test_create_blank_is_sparse_private_and_never_replaces_another_size(tmp_path):
    path = str(tmp_path / "backend" / "deep" / "volume-1")
    data.create_blank(path, 1)
    assert os.path.getsize(path) == GiB and _allocated(path) == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, "r+b") as f:
        f.write(b"guest data")
    data.create_blank(path, 1)  # the same size again: nothing happens
    with open(path, "rb") as f:
        assert f.read(10) == b"guest data"
    with pytest.raises(FileExistsError, match="will not replace"):
        data.create_blank(path, 2)
    assert os.path.getsize(path) == GiB
    for bad in (0, -1, 1.5, "1", True):
        with pytest.raises(ValueError):
            data.create_blank(str(tmp_path / "other"), bad)
    assert _leftovers(os.path.dirname(path)) == [] and not os.path.exists(tmp_path / "other")


def test_resize_grows_with_a_hole_and_refuses_to_shrink(tmp_path):
    path = str(tmp_path / "volume")
    data.create_blank(path, 1)
    with open(path, "r+b") as f:
        f.seek(GiB - 5)
        f.write(b"tail!")
    data.resize(path, 3)
    assert os.path.getsize(path) == 3 * GiB and _allocated(path) <= 64 * 1024
    with open(path, "rb") as f:
        f.seek(GiB - 5)
        assert f.read(5) == b"tail!"
    data.resize(path, 3)
    with pytest.raises(ValueError, match="cannot shrink"):
        data.resize(path, 2)
    assert os.path.getsize(path) == 3 * GiB


def test_checksum_reads_holes_as_zeros(tmp_path):
    path = sparse_volume(tmp_path / "v", 40, {1: pattern("a"), 39: pattern("b")})
    with open(path, "rb") as f:
        assert data.checksum(path) == hashlib.sha256(f.read()).hexdigest()
    assert data.allocated_bytes(path) == 2 * CHUNK


def test_clone_keeps_holes_and_bytes_and_can_be_repeated(tmp_path):
    src = sparse_volume(tmp_path / "a" / "v", 200, {0: pattern("boot"), 150: pattern("x")})
    dst = str(tmp_path / "b" / "v")
    assert data.clone(src, dst) in (0, 2 * CHUNK)  # 0 where the filesystem reflinks
    assert data.checksum(dst) == data.checksum(src)
    assert os.path.getsize(dst) == os.path.getsize(src)
    assert _allocated(dst) <= _allocated(src) + 2 * CHUNK < os.path.getsize(src)
    data.clone(src, dst)
    assert data.checksum(dst) == data.checksum(src)
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o600
    assert _leftovers(os.path.dirname(dst)) == []


def test_clone_that_dies_half_way_leaves_the_old_dst_and_no_partial(tmp_path, monkeypatch):
    src = sparse_volume(tmp_path / "v", 20, {i: pattern(str(i)) for i in range(0, 20, 2)})
    dst = sparse_volume(tmp_path / "old" / "v", 3, {0: b"previous copy"})
    before = data.checksum(dst)
    calls = []

    def dies(*args):
        calls.append(args)
        if len(calls) > 2:
            raise OSError(5, "disk on fire")
        return os.pwrite(args[1], os.pread(args[0], args[2], args[3]), args[4])

    monkeypatch.setattr(data.fcntl, "ioctl", _no_reflink)
    monkeypatch.setattr(data.os, "copy_file_range", dies)
    with pytest.raises(OSError, match="disk on fire"):
        data.clone(src, dst)
    assert data.checksum(dst) == before
    assert _leftovers(os.path.dirname(dst)) == []
    monkeypatch.undo()
    data.clone(src, dst)
    assert data.checksum(dst) == data.checksum(src)


def _no_reflink(*args):
    raise OSError(95, "Operation not supported")


def test_clone_copies_through_memory_where_the_kernel_cannot(tmp_path, monkeypatch):
    src = sparse_volume(tmp_path / "v", 30, {3: pattern("p"), 29: pattern("q")})
    monkeypatch.setattr(data.fcntl, "ioctl", _no_reflink)

    def cross_device(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(data.os, "copy_file_range", cross_device)
    assert data.clone(src, str(tmp_path / "c")) == 2 * CHUNK
    assert data.checksum(str(tmp_path / "c")) == data.checksum(src)
    assert _allocated(tmp_path / "c") <= 4 * CHUNK


def test_copy_direct_verifies_and_a_repeat_sends_nothing(tmp_path):
    src = sparse_volume(tmp_path / "a" / "v", 50, {7: pattern("seven")})
    dst = str(tmp_path / "b" / "v")
    got = data.copy_direct(src, dst)
    assert got == {"checksum": data.checksum(src), "bytes_sent": got["bytes_sent"],
                   "bytes": 50 * CHUNK}
    assert got["bytes_sent"] in (0, CHUNK)
    assert data.checksum(dst) == got["checksum"]
    assert data.copy_direct(src, dst)["bytes_sent"] == 0
    with open(src, "r+b") as f:  # an old copy of other bytes is replaced
        f.seek(7 * CHUNK)
        f.write(b"new")
    again = data.copy_direct(src, dst)
    assert again["checksum"] == data.checksum(dst) == data.checksum(src) != got["checksum"]


def test_copy_direct_refuses_a_copy_that_differs(tmp_path, monkeypatch):
    src = sparse_volume(tmp_path / "v", 4, {0: pattern("z")})
    dst = str(tmp_path / "b" / "v")
    real = data._copy_into

    def flips(source, tmp):
        copied = real(source, tmp)
        with open(tmp, "r+b") as f:
            f.write(b"\xff")
        return copied

    monkeypatch.setattr(data, "_copy_into", flips)
    with pytest.raises(exception.ChecksumMismatch):
        data.copy_direct(src, dst)
    assert not os.path.exists(dst) and _leftovers(tmp_path / "b") == []


# -- images into volumes and back ---------------------------------------------------------


def test_from_raw_image_grows_to_the_volume_and_stays_sparse(image, tmp_path):
    content = pattern("image", 3 * CHUNK + 100)
    source = tmp_path / "image.raw"
    source.write_bytes(content)
    image_id = _new_image(ALICE)
    services.image.upload_file(ALICE, image_id, str(source))
    path = str(tmp_path / "backend" / "volume-1")
    got = data.from_image(ALICE, image_id, path, 1)
    assert got["bytes"] == GiB and got["image_bytes"] == len(content)
    assert os.path.getsize(path) == GiB and _allocated(path) < 1024 * 1024
    with open(path, "rb") as f:
        assert f.read(len(content) + 10) == content + bytes(10)
    assert _leftovers(tmp_path / "backend") == []


def test_from_image_too_big_or_unusable_leaves_nothing(image, tmp_path):
    big = tmp_path / "big.raw"
    with open(big, "wb") as f:
        f.truncate(GiB + CHUNK)
        f.write(b"x")
    big_id = _new_image()
    services.image.upload_file(ADMIN, big_id, str(big), hash_algo="sha256-chunks")
    path = str(tmp_path / "backend" / "volume-2")
    with pytest.raises(ValueError, match="more than"):
        data.from_image(ADMIN, big_id, path, 1)
    with pytest.raises(ValueError, match="not active"):
        data.from_image(ADMIN, _new_image(), path, 1)
    with pytest.raises(ValueError, match="raw or qcow2"):
        data.from_image(ADMIN, _new_image(disk_format="vmdk"), path, 1)
    small = tmp_path / "small.raw"
    small.write_bytes(b"boot")
    needs_5 = _new_image(min_disk=5)
    services.image.upload_file(ADMIN, needs_5, str(small))
    with pytest.raises(ValueError, match="needs a disk of 5"):
        data.from_image(ADMIN, needs_5, path, 1)
    with pytest.raises(exception.ImageNotFound):
        data.from_image(ALICE, big_id, path, 2)  # another project's private image
    assert not os.path.exists(path)


def _qcow2(path, size: int, writes: dict[int, bytes], backing: str | None = None) -> str:
    if backing:
        disk.create_qcow2_overlay(backing, str(path), size, "raw")
    else:
        disk.create_blank(str(path), size, "qcow2")
    for offset, content in writes.items():
        disk.guest_write(str(path), offset, content, "qcow2")
    return str(path)


def test_from_qcow2_image_is_converted_to_raw(image, tmp_path):
    writes = {0: pattern("boot", 4096), 3 * 1024 * 1024: pattern("later", 5000)}
    qcow = _qcow2(tmp_path / "image.qcow2", 4 * 1024 * 1024, writes)
    image_id = _new_image(disk_format="qcow2")
    services.image.upload_file(ADMIN, image_id, qcow)
    path = str(tmp_path / "backend" / "volume-3")
    data.from_image(ADMIN, image_id, path, 1)
    assert os.path.getsize(path) == GiB
    with open(path, "rb") as f:
        for offset, content in writes.items():
            f.seek(offset)
            assert f.read(len(content)) == content
    assert disk.info(path)["format"] == "raw"
    assert _leftovers(tmp_path / "backend") == []


def test_qcow2_image_naming_a_host_file_is_refused(image, tmp_path):
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(b"not yours" * 1000)
    qcow = _qcow2(tmp_path / "evil.qcow2", 1024 * 1024, {}, backing=str(secret))
    image_id = _new_image(disk_format="qcow2")
    services.image.upload_file(ADMIN, image_id, qcow)
    path = str(tmp_path / "backend" / "volume-4")
    with pytest.raises(ValueError, match="outside itself"):
        data.from_image(ADMIN, image_id, path, 1)
    assert not os.path.exists(path) and _leftovers(tmp_path / "backend") == []


def test_to_image_sends_only_data_and_reads_back(image, tmp_path):
    path = sparse_volume(tmp_path / "v", 64, {0: pattern("a"), 9: bytes(CHUNK), 40: pattern("b")})
    image_id = _new_image(ALICE)
    stats = data.to_image(ALICE, path, image_id)
    assert stats["bytes_sent"] == 2 * CHUNK  # holes and the chunk of zeros never sent
    record = services.image.get(ALICE, image_id)
    assert record["status"] == "active" and record["size"] == 64 * CHUNK
    back = str(tmp_path / "back")
    services.image.download_to_file(ALICE, image_id, back)
    assert data.checksum(back) == data.checksum(path)
    # a second image of the same volume needs no chunk sent
    assert data.to_image(ALICE, path, _new_image(ALICE))["bytes_sent"] == 0


def test_to_image_as_qcow2(image, tmp_path):
    path = sparse_volume(tmp_path / "v", 16, {2: pattern("q")})
    image_id = _new_image(disk_format="qcow2")
    data.to_image(ADMIN, path, image_id, "qcow2")
    back = str(tmp_path / "back.qcow2")
    services.image.download_to_file(ADMIN, image_id, back)
    assert disk.guest_checksum(back, "qcow2") == data.checksum(path)
    with pytest.raises(ValueError):
        data.to_image(ADMIN, path, _new_image(), "vmdk")
    with pytest.raises(ValueError, match="not qcow2"):
        data.to_image(ADMIN, path, _new_image(), "qcow2")


# -- volumes through the store -------------------------------------------------------------


def _transfer_images(service) -> list[dict]:
    return [r for r in service.store.iter_manifests()
            if data_store.TRANSFER_MARKER in r]


def test_send_through_store_copies_bit_for_bit_and_cleans_up(image, tmp_path):
    src = sparse_volume(tmp_path / "cell1" / "volume-1", 100,
                  {0: pattern("boot"), 5: bytes(CHUNK), 50: pattern("mid"), 99: pattern("end")})
    dst = str(tmp_path / "cell2" / "volume-1")
    transfer = str(uuid.uuid4())
    got = data.send_through_store(ALICE, src, dst, transfer)
    assert got == {"checksum": data.checksum(src), "bytes_sent": 3 * CHUNK,
                   "bytes": 100 * CHUNK}
    assert data.checksum(dst) == got["checksum"]
    assert _allocated(dst) <= 4 * CHUNK  # holes stay holes
    with pytest.raises(exception.ImageNotFound):
        services.image.get(ADMIN, transfer)
    # nothing left in the store: the transfer image and its chunks are gone
    assert _transfer_images(image) == [] and list(image.store.iter_digests()) == []
    assert _leftovers(tmp_path / "cell2") == []
    # repeated (a conductor retrying after it lost the answer): the copy is there already
    again = data.send_through_store(ALICE, src, dst, transfer)
    assert again == dict(got, bytes_sent=0)


def test_kept_chunks_make_the_next_send_cost_what_changed(image, tmp_path):
    src = sparse_volume(tmp_path / "cell1" / "volume-1", 30,
                        {i: pattern(str(i)) for i in range(10)})
    keep = str(uuid.uuid4())
    dst = str(tmp_path / "cell2" / "volume-1")
    first = data.send_through_store(ADMIN, src, dst, str(uuid.uuid4()), keep_image_id=keep)
    assert first["bytes_sent"] == 10 * CHUNK
    kept = services.image.get(ADMIN, keep)
    assert kept["os_hidden"] is True and kept[data_store.KEPT_MARKER] == "volume-1"
    # the same data again, to a new place: the store holds every chunk
    back = str(tmp_path / "cell1b" / "volume-1")
    second = data.send_through_store(ADMIN, src, back, str(uuid.uuid4()), keep_image_id=keep)
    assert second["bytes_sent"] == 0 and data.checksum(back) == first["checksum"]
    # one chunk changed and one written where there was a hole
    with open(dst, "r+b") as f:
        f.seek(3 * CHUNK + 10)
        f.write(b"changed")
        f.seek(20 * CHUNK)
        f.write(pattern("new"))
    third = data.send_through_store(ADMIN, dst, back, str(uuid.uuid4()), keep_image_id=keep)
    assert third["bytes_sent"] == 2 * CHUNK
    assert data.checksum(back) == data.checksum(dst) != first["checksum"]
    assert _transfer_images(image) == []
    data_store.drop_kept(ADMIN, keep)
    data_store.drop_kept(ADMIN, keep)
    assert list(image.store.iter_digests()) == []


def test_send_repeated_after_a_crash_sends_nothing_twice(image, tmp_path, monkeypatch):
    src = sparse_volume(tmp_path / "cell1" / "volume-1", 20, {0: pattern("a"), 19: pattern("b")})
    dst = str(tmp_path / "cell2" / "volume-1")
    transfer = str(uuid.uuid4())
    real = ImageClient.download_to_file

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the upload

    monkeypatch.setattr(ImageClient, "download_to_file", crash)
    with pytest.raises(KeyboardInterrupt):
        data.send_through_store(ADMIN, src, dst, transfer)
    assert services.image.get(ADMIN, transfer)["status"] == "active"
    assert not os.path.exists(dst) and _leftovers(tmp_path / "cell2") == []
    monkeypatch.setattr(ImageClient, "download_to_file", real)
    got = data.send_through_store(ADMIN, src, dst, transfer)
    assert got["bytes_sent"] == 0 and data.checksum(dst) == data.checksum(src)
    assert _transfer_images(image) == []


def test_a_transfer_image_of_other_bytes_is_sent_again(image, tmp_path):
    """An earlier attempt's image that does not hold the source is never trusted."""
    src = sparse_volume(tmp_path / "v", 8, {1: pattern("now")})
    stale = sparse_volume(tmp_path / "stale", 8, {1: pattern("then")})
    transfer = _new_image()
    services.image.upload_file(ADMIN, transfer, stale, hash_algo="sha256-chunks")
    dst = str(tmp_path / "cell2" / "v")
    got = data.send_through_store(ADMIN, src, dst, transfer)
    assert got["bytes_sent"] == CHUNK and data.checksum(dst) == data.checksum(src)
    assert _transfer_images(image) == [] and list(image.store.iter_digests()) == []


def test_upload_left_saving_by_a_dead_sender_is_started_again(image, tmp_path):
    src = sparse_volume(tmp_path / "v", 8, {1: pattern("one")})
    transfer = str(uuid.uuid4())
    services.image.create(ADMIN, id=transfer, disk_format="raw", container_format="bare")
    image._begin_upload(ADMIN, transfer)  # a sender died mid-upload
    got = data.send_through_store(ADMIN, src, str(tmp_path / "d"), transfer)
    assert got["bytes_sent"] == CHUNK and data.checksum(str(tmp_path / "d")) == got["checksum"]


def test_a_damaged_chunk_in_the_store_fails_loudly_and_leaves_no_copy(image, tmp_path):
    src = sparse_volume(tmp_path / "cell1" / "volume-1", 12,
                        {2: pattern("two"), 7: pattern("seven")})
    keep = str(uuid.uuid4())
    data.send_through_store(ADMIN, src, str(tmp_path / "first"), str(uuid.uuid4()),
                            keep_image_id=keep)
    damaged = image.store.chunk_path(hashlib.sha256(pattern("seven")).hexdigest())
    with open(damaged, "r+b") as f:
        f.write(b"rot")
    dst = str(tmp_path / "cell2" / "volume-1")
    transfer = str(uuid.uuid4())
    with pytest.raises(exception.ChecksumMismatch):
        data.send_through_store(ADMIN, src, dst, transfer, keep_image_id=keep)
    assert not os.path.exists(dst) and _leftovers(tmp_path / "cell2") == []
    with pytest.raises(exception.ImageNotFound):
        services.image.get(ADMIN, transfer)


def test_a_copy_that_differs_from_its_source_is_refused(image, tmp_path, monkeypatch):
    """Whatever slipped past the per-chunk checks, the whole-file comparison catches."""
    src = sparse_volume(tmp_path / "v", 6, {0: pattern("a")})
    dst = str(tmp_path / "cell2" / "v")
    real = ImageClient.download_to_file

    def bitflip(self, ctx, image_id, dest, progress=None):
        got = real(self, ctx, image_id, dest, progress)
        with open(dest, "r+b") as f:
            f.seek(4 * CHUNK)
            f.write(b"\x01")
        return got

    monkeypatch.setattr(ImageClient, "download_to_file", bitflip)
    with pytest.raises(exception.ChecksumMismatch, match="volume copy"):
        data.send_through_store(ADMIN, src, dst, str(uuid.uuid4()))
    assert not os.path.exists(dst) and _leftovers(tmp_path / "cell2") == []


def test_the_store_functions_are_reachable_from_data():
    assert data.send_through_store is data_store.send_through_store
    assert data.from_image is data_store.from_image
    with pytest.raises(AttributeError):
        data.no_such_function  # noqa: B018


def test_qemu_img_is_there():
    """The qcow2 tests need the real tool; fail rather than pass on a host without it."""
    subprocess.run([disk.QEMU_IMG, "--version"], check=True, capture_output=True)
