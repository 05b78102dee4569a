"""Reading a qcow2 disk through its own extents, and writing changed chunks with qemu-io."""

from __future__ import annotations

import hashlib
import os

import pytest

from transcell import exception
from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.image import pipeline

MiB = 1024 * 1024
CHUNK = 4 * MiB


def _data(seed: str, length: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(length)


@pytest.fixture
def overlay(tmp_path):
    """A 24 MiB qcow2 overlay on an 8 MiB raw base, with writes across chunk edges."""
    base = str(tmp_path / "base.raw")
    with open(base, "wb") as f:
        f.write(_data("base", 8 * MiB))
    path = str(tmp_path / "disk.qcow2")
    disk.create_qcow2_overlay(base, path, 24 * MiB, "raw")
    disk.guest_write(path, 3 * MiB, _data("edge", 2 * MiB), "qcow2")  # chunks 0 and 1
    disk.guest_write(path, 17 * MiB, _data("late", 1000), "qcow2")    # chunk 4
    return path


def test_whole_items_read_the_guest_view_and_skip_zero_chunks(overlay):
    size, items = snapshot.whole_items(overlay, "qcow2", CHUNK)
    items = list(items)
    assert size == 24 * MiB
    # chunks 2 and 3 are past the base and never written: zeros, not read
    assert [isinstance(i, int) for i in items] == [False, False, True, True, False, True]
    for index, item in enumerate(items):
        expected = disk.guest_read(overlay, index * CHUNK, CHUNK, "qcow2")
        got = bytes(CHUNK) if isinstance(item, int) else bytes(item.read())
        assert got == expected, f"chunk {index}"
        if not isinstance(item, int):
            assert item.fallback is None  # read from the files, not through qemu-img


def test_a_reused_buffer_never_leaks_the_last_chunk_into_a_zero_run(overlay):
    _, items = snapshot.whole_items(overlay, "qcow2", CHUNK)
    reads = [i for i in items if not isinstance(i, int)]
    buf = bytearray(_data("stale", CHUNK))
    last = reads[-1]  # chunk 4: 1000 bytes of data in a chunk of zeros
    assert bytes(last.read(buf)) == disk.guest_read(overlay, 4 * CHUNK, CHUNK, "qcow2")


def test_write_changed_uses_sealed_files_and_checks_the_rest(tmp_path, overlay):
    target = str(tmp_path / "target.qcow2")
    disk.create_blank(target, 24 * MiB, "qcow2")
    sealed_file = str(tmp_path / "sealed")
    with open(sealed_file, "wb") as f:
        f.write(_data("one", CHUNK))
    asked: list[list[int]] = []

    def read_chunks(indexes):
        asked.append(list(indexes))
        return [_data(f"chunk{i}", CHUNK) for i in indexes]

    changed = [(1, "d1", CHUNK), (4, "d4", CHUNK)]
    written = snapshot.write_changed(target, "qcow2", CHUNK, changed,
                                     lambda d, n: sealed_file if d == "d1" else None,
                                     read_chunks)
    assert written == 2 * CHUNK
    assert asked == [[4]]  # the sealed chunk was never read through Python
    assert disk.guest_read(target, CHUNK, CHUNK, "qcow2") == _data("one", CHUNK)
    assert disk.guest_read(target, 4 * CHUNK, CHUNK, "qcow2") == _data("chunk4", CHUNK)
    assert disk.guest_read(target, 0, CHUNK, "qcow2") == bytes(CHUNK)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".chunks-")]


def test_write_changed_rewrites_a_sealed_file_that_changed_meanwhile(tmp_path):
    target = str(tmp_path / "target.qcow2")
    disk.create_blank(target, 8 * MiB, "qcow2")
    tampered = str(tmp_path / "tampered")
    with open(tampered, "wb") as f:
        f.write(_data("bad", CHUNK))
    calls = []

    def sealed(digest, length):
        calls.append(digest)
        return tampered if len(calls) == 1 else None  # the seal breaks after the write

    snapshot.write_changed(target, "qcow2", CHUNK, [(0, "d0", CHUNK)], sealed,
                           lambda idx: [_data("good", CHUNK) for _ in idx])
    assert disk.guest_read(target, 0, CHUNK, "qcow2") == _data("good", CHUNK)


def test_write_changed_fails_on_a_chunk_that_does_not_check(tmp_path):
    target = str(tmp_path / "target.qcow2")
    disk.create_blank(target, 8 * MiB, "qcow2")

    def read_chunks(indexes):
        raise exception.ChecksumMismatch(what="chunk", expected="a", actual="b")
        yield  # pragma: no cover

    with pytest.raises(exception.ChecksumMismatch):
        snapshot.write_changed(target, "qcow2", CHUNK, [(0, "d0", CHUNK)],
                               lambda d, n: None, read_chunks)
    assert disk.guest_read(target, 0, CHUNK, "qcow2") == bytes(CHUNK)


def test_pipeline_reads_partial_parts_in_place(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as f:
        f.write(_data("f", 3 * 4096))
    read = pipeline.ChunkRead(3 * 4096, ((path, 8192, 4096), (None, 0, 4096),
                                         (path, 0, 4096)))
    want = _data("f", 3 * 4096)
    assert bytes(read.read()) == want[8192:] + bytes(4096) + want[:4096]


def test_compressed_clusters_are_read_through_qemu_img(tmp_path):
    raw = str(tmp_path / "plain.raw")
    with open(raw, "wb") as f:
        # text compresses, so its clusters are stored compressed, at no plain offset
        f.write(b"".join(b"line %08d of compressible text\n" % i for i in range(200000)))
        f.truncate(6 * MiB)
    packed = str(tmp_path / "packed.qcow2")
    disk._run([disk.QEMU_IMG, "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", raw, packed],
              "compress")
    size, items = snapshot.whole_items(packed, "qcow2", CHUNK)
    items = list(items)
    assert any(not isinstance(i, int) and i.fallback is not None for i in items)
    with open(raw, "rb") as f:
        want = f.read()
    got = b"".join(bytes(i) if isinstance(i, int) else bytes(i.read())
                   for i in items)
    assert size == len(want) and got == want
