"""A moving disk described against its base image: only changed chunks are read,
and the result names exactly the bytes a full flatten would."""

from __future__ import annotations

import os

import pytest

from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.context import RequestContext
from transcell.image import sparse
from transcell.image.service import ImageService, zero_digest
from transcell.image.store import ChunkStore

MiB = 1024 * 1024
CHUNK = 4 * MiB


@pytest.fixture
def store(tmp_path):
    return ImageService(ChunkStore(str(tmp_path / "store"), CHUNK))


def _base(tmp_path, service: ImageService) -> tuple[str, dict]:
    path = str(tmp_path / "base.raw")
    with open(path, "wb") as f:
        f.write(os.urandom(16 * MiB))
    ctx = RequestContext.admin()
    image = service.create(ctx, disk_format="raw", container_format="bare")
    service.upload_file(ctx, image["id"], path)
    return path, service.get(ctx, image["id"])


def test_only_changed_chunks_are_read_and_the_digest_matches_a_flatten(tmp_path, store):
    base_path, base = _base(tmp_path, store)
    overlay = str(tmp_path / "disk.qcow2")
    disk.create_qcow2_overlay(base_path, overlay, 32 * MiB, "raw")
    disk.guest_write(overlay, 5 * MiB, b"changed" * 100, "qcow2")
    disk.guest_write(overlay, 20 * MiB + 3, os.urandom(5000), "qcow2")
    size, items, counters = snapshot.delta_items(overlay, "qcow2", base, CHUNK)
    assert size == 32 * MiB
    assert counters == {"chunks": 8, "read": 2, "base": 3, "zero": 3}
    ctx = RequestContext.admin()
    image = store.create(ctx, disk_format="raw", container_format="bare")
    stats = store.upload_chunks(ctx, image["id"], items, size)
    assert stats["bytes_sent"] == 2 * CHUNK
    flat = str(tmp_path / "flat.raw")
    disk.flatten_to_raw(overlay, flat, "qcow2")
    assert stats["os_hash_value"] == sparse.file_tree_digest(flat, CHUNK, zero_digest)
    out = str(tmp_path / "rebuilt.raw")
    got = store.download_to_file(ctx, image["id"], out)
    assert got["written_digest"] == stats["os_hash_value"]
    with open(out, "rb") as a, open(flat, "rb") as b:
        assert a.read() == b.read()


def test_a_disk_that_does_not_line_up_is_not_a_delta(tmp_path, store):
    base_path, base = _base(tmp_path, store)
    overlay = str(tmp_path / "disk.qcow2")
    disk.create_qcow2_overlay(base_path, overlay, 32 * MiB, "raw")
    with pytest.raises(snapshot.NotADelta):
        snapshot.delta_items(overlay, "qcow2", dict(base, chunk_size=CHUNK * 2), CHUNK)
    with pytest.raises(snapshot.NotADelta):
        snapshot.delta_items(overlay, "qcow2", dict(base, disk_format="qcow2"), CHUNK)
    with pytest.raises(snapshot.NotADelta):
        snapshot.delta_items(base_path, "raw", base, CHUNK)
