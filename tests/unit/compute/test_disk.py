"""The qemu-img helpers, on real files: what the guest sees must not depend on the format."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from transcell import exception
from transcell.compute.virt import disk

MiB = 1024 * 1024
BASE_SIZE = 4 * MiB
DISK_SIZE = 64 * MiB


@pytest.fixture(scope="module")
def base_content() -> bytes:
    return random.Random(20240601).randbytes(BASE_SIZE)


@pytest.fixture
def base(tmp_path, base_content) -> str:
    path = tmp_path / "base.raw"
    path.write_bytes(base_content)
    return str(path)


def _build(kind: str, base: str, path: str, size: int = DISK_SIZE) -> None:
    if kind == "qcow2":
        disk.create_qcow2_overlay(base, path, size)
    else:
        disk.create_raw_copy(base, path, size)


def test_overlay_is_qcow2_backed_by_base_with_requested_size(tmp_path, base):
    path = str(tmp_path / "disk")
    disk.create_qcow2_overlay(base, path, DISK_SIZE)
    details = disk.info(path, "qcow2")
    assert details["format"] == "qcow2"
    assert details["virtual-size"] == DISK_SIZE
    assert details["backing-filename"] == base
    assert details["backing-filename-format"] == "raw"
    # the overlay holds metadata only; the data stays in the base
    assert os.path.getsize(path) < MiB


@pytest.mark.parametrize("kind", ["qcow2", "raw"])
def test_disk_is_never_smaller_than_its_base(tmp_path, base, kind):
    path = str(tmp_path / "disk")
    _build(kind, base, path, size=MiB)
    assert disk.virtual_size(path, kind) == BASE_SIZE


@pytest.mark.parametrize("kind", ["qcow2", "raw"])
def test_guest_sees_base_content_then_zeros(tmp_path, base, base_content, kind):
    path = str(tmp_path / "disk")
    _build(kind, base, path)
    assert disk.guest_read(path, 0, 4096, kind) == base_content[:4096]
    assert disk.guest_read(path, 1_000_003, 777, kind) == base_content[1_000_003:1_000_780]
    # a read straddling the end of the base: base bytes, then the grown zeros
    straddle = disk.guest_read(path, BASE_SIZE - 100, 300, kind)
    assert straddle == base_content[-100:] + bytes(200)
    assert disk.guest_read(path, DISK_SIZE - 10, 10, kind) == bytes(10)


def test_raw_copy_is_sparse_with_requested_size(tmp_path, base):
    path = str(tmp_path / "disk")
    disk.create_raw_copy(base, path, DISK_SIZE)
    st = os.stat(path)
    assert st.st_size == DISK_SIZE
    assert disk.info(path, "raw")["format"] == "raw"
    allocated = st.st_blocks * 512
    assert allocated < DISK_SIZE / 4
    assert allocated >= BASE_SIZE // 2  # the base's data really was copied


@pytest.mark.parametrize("kind", ["qcow2", "raw"])
def test_guest_write_read_round_trip(tmp_path, base, base_content, kind):
    path = str(tmp_path / "disk")
    _build(kind, base, path)
    writes = {
        0: b"boot sector!",
        1001: b"unaligned inside the base region",
        2 * MiB - 7: os.urandom(70_000),           # crosses cluster boundaries in the base
        BASE_SIZE - 5: b"straddles the end of the base",
        40 * MiB + 123: b"past the base, in grown space",
        DISK_SIZE - 4: b"last",
    }
    for offset, data in writes.items():
        disk.guest_write(path, offset, data, kind)
    for offset, data in writes.items():
        assert disk.guest_read(path, offset, len(data), kind) == data
    # untouched neighbours keep base content
    assert disk.guest_read(path, 1001 + 32, 16, kind) == base_content[1033:1049]
    assert disk.guest_read(path, 12, 4, kind) == base_content[12:16]


def test_overlay_writes_leave_the_base_untouched(tmp_path, base, base_content):
    path = str(tmp_path / "disk")
    disk.create_qcow2_overlay(base, path, DISK_SIZE)
    disk.guest_write(path, 4096, b"\xff" * 8192, "qcow2")
    with open(base, "rb") as f:
        assert f.read() == base_content


@pytest.mark.parametrize("kind", ["qcow2", "raw"])
def test_access_outside_the_virtual_size_is_refused(tmp_path, base, kind):
    path = str(tmp_path / "disk")
    _build(kind, base, path)
    with pytest.raises(exception.DiskError, match="outside"):
        disk.guest_write(path, DISK_SIZE - 2, b"abc", kind)
    with pytest.raises(exception.DiskError, match="outside"):
        disk.guest_read(path, DISK_SIZE, 1, kind)
    with pytest.raises(exception.DiskError):
        disk.guest_read(path, -1, 1, kind)


def test_checksum_is_the_same_for_raw_and_qcow2(tmp_path, base, base_content):
    raw, qcow = str(tmp_path / "a.raw"), str(tmp_path / "b.qcow2")
    disk.create_raw_copy(base, raw, DISK_SIZE)
    disk.create_qcow2_overlay(base, qcow, DISK_SIZE)
    expected = hashlib.sha256(base_content + bytes(DISK_SIZE - BASE_SIZE)).hexdigest()
    assert disk.guest_checksum(raw, "raw") == expected
    assert disk.guest_checksum(qcow, "qcow2") == expected

    for path, kind in ((raw, "raw"), (qcow, "qcow2")):
        disk.guest_write(path, 3 * MiB + 5, b"changed", kind)
    assert disk.guest_checksum(raw, "raw") == disk.guest_checksum(qcow, "qcow2") != expected

    disk.guest_write(qcow, 50 * MiB, b"x", "qcow2")
    assert disk.guest_checksum(raw, "raw") != disk.guest_checksum(qcow, "qcow2")
    # nothing left behind by the qcow2 checksum's scratch copy
    assert sorted(os.listdir(tmp_path)) == ["a.raw", "b.qcow2", "base.raw"]


def test_checksum_of_a_file_that_ends_in_a_hole(tmp_path):
    path = tmp_path / "holey"
    with open(path, "wb") as f:
        f.seek(MiB)
        f.write(b"data in the middle")
        f.truncate(3 * MiB)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert disk.guest_checksum(str(path), "raw") == expected


def test_flatten_overlay_to_raw_keeps_guest_content(tmp_path, base):
    qcow, flat = str(tmp_path / "disk"), str(tmp_path / "flat.raw")
    disk.create_qcow2_overlay(base, qcow, DISK_SIZE)
    disk.guest_write(qcow, 777, b"written by the guest", "qcow2")
    disk.flatten_to_raw(qcow, flat, "qcow2")
    details = disk.info(flat, "raw")
    assert details["backing-filename"] is None
    assert details["virtual-size"] == DISK_SIZE
    assert disk.guest_checksum(flat, "raw") == disk.guest_checksum(qcow, "qcow2")
    assert os.stat(flat).st_blocks * 512 < DISK_SIZE / 4
    # self-contained: the base can go away
    os.unlink(base)
    assert disk.guest_read(flat, 777, 20, "raw") == b"written by the guest"


@pytest.mark.parametrize("kind", ["qcow2", "raw"])
def test_resize_grows_and_refuses_to_shrink(tmp_path, base, base_content, kind):
    path = str(tmp_path / "disk")
    _build(kind, base, path)
    disk.resize(path, 2 * DISK_SIZE, kind)
    assert disk.virtual_size(path, kind) == 2 * DISK_SIZE
    assert disk.guest_read(path, 0, 64, kind) == base_content[:64]
    disk.resize(path, 2 * DISK_SIZE, kind)  # same size again: nothing to do
    with pytest.raises(exception.DiskError, match="shrink"):
        disk.resize(path, DISK_SIZE, kind)
    assert disk.virtual_size(path, kind) == 2 * DISK_SIZE


def test_blank_disks(tmp_path):
    raw, qcow = str(tmp_path / "r"), str(tmp_path / "q")
    disk.create_blank(raw, DISK_SIZE, "raw")
    disk.create_blank(qcow, DISK_SIZE, "qcow2")
    assert disk.guest_checksum(raw, "raw") == disk.guest_checksum(qcow, "qcow2")
    assert os.stat(raw).st_blocks * 512 < MiB


def test_failures_are_disk_errors_and_leave_no_partial_file(tmp_path, base):
    with pytest.raises(exception.DiskError, match="no disk"):
        disk.info(str(tmp_path / "missing"))
    not_qcow = str(tmp_path / "plain")
    open(not_qcow, "wb").close()
    with pytest.raises(exception.DiskError, match="qemu-img"):
        disk.create_qcow2_overlay(not_qcow, str(tmp_path / "disk"), MiB, base_format="qcow2")
    assert not os.path.exists(tmp_path / "disk")
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]


def test_stale_partials_of_dead_processes_are_swept(tmp_path):
    mine = disk.temp_path_for(str(tmp_path / "disk"))
    open(mine, "wb").close()
    dead = tmp_path / f".disk.{2 ** 22 + 12345}.{'0' * 32}.part"
    dead.write_bytes(b"x")
    keep = tmp_path / "disk.part"
    keep.write_bytes(b"not ours")
    assert disk.remove_stale_partials(str(tmp_path)) == [dead.name]
    assert os.path.exists(mine) and keep.exists() and not dead.exists()


@pytest.mark.parametrize("kind,size", [("qcow2", 5 * 2**30 + 65536), ("raw", 3 * 2**20),
                                        ("raw", 1000), ("qcow2", 1000)])
def test_virtual_size_read_from_the_file_agrees_with_qemu_img(tmp_path, kind, size):
    path = str(tmp_path / f"d.{kind}")
    if kind == "raw":
        with open(path, "wb") as fh:
            fh.write(os.urandom(size))
    else:
        disk._run([disk.QEMU_IMG, "create", "-q", "-f", kind, path, str(size)], "create")
    assert disk.virtual_size(path, kind) == int(disk.info(path, kind)["virtual-size"])


def test_qcow2_header_says_what_qemu_img_info_says(tmp_path, base):
    backed = str(tmp_path / "backed.qcow2")
    disk.create_qcow2_overlay(base, backed, 3 * 2**20 + 4096, "raw")
    alone = str(tmp_path / "alone.qcow2")
    disk._run([disk.QEMU_IMG, "create", "-q", "-f", "qcow2", alone, str(2**20)], "create")
    for path in (backed, alone):
        info = disk.info(path, "qcow2")
        assert disk.qcow2_header(path) == (int(info["virtual-size"]),
                                           bool(info["backing-filename"]))
    assert disk.qcow2_header(base) is None  # raw: not a qcow2 header
