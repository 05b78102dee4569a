"""The chunk-list digest moves rely on: same bytes, same digest, however stored."""

from __future__ import annotations

import os

from transcell.context import RequestContext
from transcell.image import sparse
from transcell.image.service import ImageService, zero_digest
from transcell.image.store import ChunkStore

CHUNK = 64 * 1024


def _write(path: str, size: int, pieces: dict[int, bytes], dense: bool) -> None:
    with open(path, "wb") as f:
        if dense:
            f.write(bytes(size))
        f.truncate(size)
        for offset, data in pieces.items():
            f.seek(offset)
            f.write(data)


def test_sparse_and_dense_files_with_equal_bytes_have_equal_digests(tmp_path):
    pieces = {0: b"boot" * 100, 5 * CHUNK + 17: os.urandom(3000)}
    _write(tmp_path / "sparse", 40 * CHUNK + 5, pieces, dense=False)
    _write(tmp_path / "dense", 40 * CHUNK + 5, pieces, dense=True)
    a = sparse.file_tree_digest(str(tmp_path / "sparse"), CHUNK, zero_digest)
    b = sparse.file_tree_digest(str(tmp_path / "dense"), CHUNK, zero_digest)
    assert a == b


def test_one_changed_byte_changes_the_digest(tmp_path):
    path = tmp_path / "disk"
    _write(path, 10 * CHUNK, {3 * CHUNK: b"x" * 10}, dense=False)
    before = sparse.file_tree_digest(str(path), CHUNK, zero_digest)
    with open(path, "r+b") as f:
        f.seek(9 * CHUNK + 1)
        f.write(b"\x01")
    assert sparse.file_tree_digest(str(path), CHUNK, zero_digest) != before


def test_holes_are_reported_as_lengths_not_read(tmp_path):
    path = tmp_path / "disk"
    _write(path, 8 * CHUNK, {2 * CHUNK: b"data"}, dense=False)
    kinds = ["hole" if isinstance(c, int) else "data"
             for c in sparse.chunks_of_sparse_file(str(path), CHUNK)]
    assert kinds[2] == "data"
    assert kinds.count("data") == 1


def test_upload_with_chunk_digest_round_trips_and_matches_the_file(tmp_path):
    service = ImageService(ChunkStore(str(tmp_path / "store"), CHUNK))
    ctx = RequestContext.admin()
    path = tmp_path / "disk"
    _write(path, 12 * CHUNK + 100, {CHUNK: os.urandom(CHUNK), 7 * CHUNK: b"end"}, dense=False)
    image = service.create(ctx, disk_format="raw", container_format="bare")
    stats = service.upload_file(ctx, image["id"], str(path), hash_algo=sparse.TREE_ALGO)
    record = service.get(ctx, image["id"])
    assert record["os_hash_algo"] == sparse.TREE_ALGO
    assert stats["os_hash_value"] == sparse.file_tree_digest(str(path), CHUNK, zero_digest)
    # only the two chunks holding data count as sent; zero chunks are named by length
    assert stats["bytes_sent"] == 2 * CHUNK
    out = tmp_path / "out"
    service.download_to_file(ctx, image["id"], str(out))
    assert out.read_bytes() == path.read_bytes()


def test_download_refuses_a_damaged_chunk(tmp_path):
    store = ChunkStore(str(tmp_path / "store"), CHUNK)
    service = ImageService(store)
    ctx = RequestContext.admin()
    path = tmp_path / "disk"
    _write(path, 4 * CHUNK, {0: os.urandom(CHUNK)}, dense=False)
    image = service.create(ctx, disk_format="raw", container_format="bare")
    service.upload_file(ctx, image["id"], str(path), hash_algo=sparse.TREE_ALGO)
    digest = service.get(ctx, image["id"])["chunks"][0]
    with open(store.chunk_path(digest), "r+b") as f:
        first = f.read(1)[0]
        f.seek(0)
        f.write(bytes([first ^ 0xFF]))  # always a change (writing a fixed byte is not, 1 in 256)
    import pytest

    from transcell import exception
    with pytest.raises(exception.ChecksumMismatch):
        service.download_to_file(ctx, image["id"], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
