"""The move's data path as a pipeline: order, holes, zero chunks, failures, sealed chunks."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.image import pipeline, sparse
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

CHUNK = 64 * 1024
ADMIN = RequestContext(user_id="admin", project_id="admin-p", roles=["admin"])


@pytest.fixture
def service(tmp_path):
    return ImageService(ChunkStore(str(tmp_path / "store"), chunk_size=CHUNK))


def _data(seed: str, length: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(length)


def _disk(path, chunks: list[str | None]) -> bytes:
    """A file of ``len(chunks)`` chunks: a hole where None, else data seeded by the name."""
    content = b""
    with open(path, "wb") as f:
        f.truncate(len(chunks) * CHUNK)
        for index, seed in enumerate(chunks):
            data = bytes(CHUNK) if seed is None else _data(seed, CHUNK)
            if seed is not None:
                f.seek(index * CHUNK)
                f.write(data)
            content += data
    return content


def _upload(service, path) -> tuple[str, dict]:
    image = service.create(ADMIN, disk_format="raw", container_format="bare")
    stats = service.upload_file(ADMIN, image["id"], path, hash_algo=sparse.TREE_ALGO)
    return image["id"], stats


# -- ordered ---------------------------------------------------------------------------------


def test_results_come_back_in_order_whatever_order_workers_finish_in():
    finished: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        time.sleep(random.Random(n).random() * 0.01)
        with lock:
            finished.append(n)
        return n * n

    got = list(pipeline.ordered(range(40), work, workers=4, in_flight=8))
    assert got == [(n, n * n) for n in range(40)]
    assert finished != sorted(finished)  # they did overlap and finish out of order


def test_inline_items_run_in_the_callers_thread_and_keep_their_place():
    caller = threading.get_ident()
    ran_in: dict[int, int] = {}

    def work(n: int) -> int:
        time.sleep(random.Random(n).random() * 0.005)
        ran_in[n] = threading.get_ident()
        if n == 33:
            raise ValueError("33")
        return -n

    results = []
    with pytest.raises(ValueError, match="33"):
        for item, result in pipeline.ordered(range(40), work, workers=4, in_flight=8,
                                             inline=lambda n: n % 3 == 0):
            results.append((item, result))
    assert results == [(n, -n) for n in range(33)]  # in order, up to the failure
    assert all(ran_in[n] == caller for n in ran_in if n % 3 == 0)
    assert any(ran_in[n] != caller for n in ran_in if n % 3)


def test_chunks_really_run_at_once():
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(n: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    list(pipeline.ordered(range(12), work, workers=4, in_flight=8))
    assert peak >= 3


def test_a_failing_chunk_stops_the_pipeline_after_running_work_ends():
    started: list[int] = []
    ended: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        if n == 3:
            raise ValueError("chunk 3 is bad")
        time.sleep(0.01)
        ended.append(n)
        return n

    seen = []
    with pytest.raises(ValueError, match="chunk 3"):
        for n, _ in pipeline.ordered(range(1000), work, workers=2, in_flight=4):
            seen.append(n)
    assert seen == [0, 1, 2]
    assert len(started) < 20  # the rest was never started
    assert sorted(set(started) - {3}) == sorted(ended)  # nothing still running after the raise


# -- the source ------------------------------------------------------------------------------


def test_holes_are_never_read(tmp_path, monkeypatch):
    path = str(tmp_path / "disk")
    _disk(path, [None, "a", None, None, "b", None])
    items = list(pipeline.sparse_file_items(path, CHUNK))
    assert [isinstance(i, int) for i in items] == [True, False, True, True, False, True]
    assert [i.parts[0][1] for i in items if not isinstance(i, int)] == [CHUNK, 4 * CHUNK]


def test_upload_reads_only_data_and_sends_no_zero_chunk(service, tmp_path, monkeypatch):
    path = str(tmp_path / "disk")
    # chunk 3 is data that happens to be zeros (allocated, read, not sent)
    content = _disk(path, [None, "a", None, None, "b", None])
    with open(path, "r+b") as f:
        f.seek(3 * CHUNK)
        f.write(bytes(CHUNK))
    reads = []
    real = pipeline.ChunkRead.read

    def counting(self, into=None):
        reads.append(self.parts)
        return real(self, into)

    monkeypatch.setattr(pipeline.ChunkRead, "read", counting)
    image_id, stats = _upload(service, path)
    assert len(reads) == 3  # chunks 1, 3 and 4; the holes were never read
    assert stats["bytes_sent"] == 2 * CHUNK and stats["chunks_total"] == 6
    record = service.get(ADMIN, image_id)
    zero = pipeline.zero_digest(CHUNK)
    assert [d == zero for d in record["chunks"]] == [True, False, True, True, False, True]
    assert record["os_hash_value"] == sparse.tree_digest(
        (hashlib.sha256(content[i:i + CHUNK]).hexdigest(), CHUNK)
        for i in range(0, len(content), CHUNK))


def test_a_chunk_repeated_in_one_upload_is_written_once(service, tmp_path, monkeypatch):
    path = str(tmp_path / "disk")
    _disk(path, ["same"] * 8)
    puts = []
    real = service.store.put_known
    monkeypatch.setattr(service.store, "put_known",
                        lambda digest, data: puts.append(digest) or real(digest, data))
    _, stats = _upload(service, path)
    assert len(puts) == 1 and stats["chunks_sent"] == 1


def test_a_failed_read_leaves_the_image_queued_and_no_chunk_behind(service, tmp_path,
                                                                    monkeypatch):
    path = str(tmp_path / "disk")
    _disk(path, [f"c{i}" for i in range(12)])
    real = pipeline.ChunkRead.read

    def failing(self, into=None):
        if self.parts[0][1] == 7 * CHUNK:
            time.sleep(0.02)  # let the other workers store their chunks first
            raise OSError("read error at chunk 7")
        return real(self, into)

    monkeypatch.setattr(pipeline.ChunkRead, "read", failing)
    image = service.create(ADMIN, disk_format="raw", container_format="bare")
    with pytest.raises(OSError, match="chunk 7"):
        service.upload_file(ADMIN, image["id"], path, hash_algo=sparse.TREE_ALGO)
    assert service.get(ADMIN, image["id"])["status"] == "queued"
    assert list(service.store.iter_digests()) == []


# -- the target ------------------------------------------------------------------------------


def test_rebuild_is_the_disk_byte_for_byte_and_keeps_holes(service, tmp_path):
    path = str(tmp_path / "disk")
    content = _disk(path, [None, "a", "b", None, "c", None, None, "d"])
    image_id, _ = _upload(service, path)
    dest = str(tmp_path / "target")
    got = service.download_to_file(ADMIN, image_id, dest)
    with open(dest, "rb") as f:
        assert f.read() == content
    assert os.stat(dest).st_blocks * 512 < len(content)  # the holes stayed holes
    assert got["written_digest"] == service.get(ADMIN, image_id)["os_hash_value"]
    assert set(got["stages"]) <= {"copy", "clone"}  # every data chunk came from a sealed file


def test_parallel_workers_do_not_reorder_writes(service, tmp_path, monkeypatch):
    path = str(tmp_path / "disk")
    content = _disk(path, [f"c{i}" if i % 5 else None for i in range(48)])
    image_id, _ = _upload(service, path)
    service.store._seals.clear()  # every chunk fetched, verified and written by Python
    real = service._chunk

    def slow(digest, length):
        time.sleep(random.random() * 0.005)
        return real(digest, length)

    monkeypatch.setattr(service, "_chunk", slow)
    monkeypatch.setattr(pipeline, "WORKERS", 6)
    dest = str(tmp_path / "target")
    got = service.download_to_file(ADMIN, image_id, dest)
    with open(dest, "rb") as f:
        assert f.read() == content
    assert "fetch+verify" in got["stages"] and "copy" not in got["stages"]


def test_a_chunk_failing_verification_aborts_and_leaves_nothing(service, tmp_path):
    path = str(tmp_path / "disk")
    _disk(path, [f"c{i}" for i in range(16)])
    image_id, _ = _upload(service, path)
    victim = service.get(ADMIN, image_id)["chunks"][9]
    time.sleep(0.05)  # past the timestamp granularity of the store's own write
    with open(service.store.chunk_path(victim), "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    assert service.store.sealed_path(victim, CHUNK) is None  # the seal no longer holds
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(exception.ChecksumMismatch):
        service.download_to_file(ADMIN, image_id, str(target / "disk"))
    assert os.listdir(target) == []


def test_a_seal_holds_only_for_the_file_the_store_wrote(service, tmp_path):
    digest = service.store.put(_data("x", CHUNK))
    path = service.store.chunk_path(digest)
    assert service.store.sealed_path(digest, CHUNK) == path
    assert service.store.sealed_path(digest, CHUNK - 1) is None  # not the chunk's length
    time.sleep(0.05)
    os.replace(path + "", path + ".old")
    with open(path, "wb") as f:  # the same name, another file (other inode)
        f.write(_data("x", CHUNK))
    assert service.store.sealed_path(digest, CHUNK) is None
    os.unlink(path + ".old")
    # a chunk the store found already present (not written, so not hashed) is not sealed
    other = ChunkStore(service.store.root, chunk_size=CHUNK)
    assert other.put_known(digest, _data("x", CHUNK)) is False
    assert other.sealed_path(digest, CHUNK) is None


def test_a_file_changed_during_the_kernel_copy_is_fetched_and_verified(service, tmp_path,
                                                                       monkeypatch):
    path = str(tmp_path / "disk")
    content = _disk(path, ["a", "b", "c"])
    image_id, _ = _upload(service, path)
    real_sealed = service.store.sealed_path
    calls: dict[str, int] = {}

    def flaky(digest, length):
        calls[digest] = calls.get(digest, 0) + 1
        return None if calls[digest] == 2 else real_sealed(digest, length)

    monkeypatch.setattr(service.store, "sealed_path", flaky)
    dest = str(tmp_path / "target")
    got = service.download_to_file(ADMIN, image_id, dest)
    with open(dest, "rb") as f:
        assert f.read() == content
    assert got["stages"]["fetch+verify"]["bytes"] == 3 * CHUNK


def test_a_whole_sha256_image_reads_sealed_chunks_once_and_still_checks_them(service,
                                                                           tmp_path,
                                                                           monkeypatch):
    data = b"".join(_data(f"w{i}", CHUNK) for i in range(4))
    image = service.create(ADMIN, disk_format="raw", container_format="bare")
    path = str(tmp_path / "image.raw")
    with open(path, "wb") as f:
        f.write(data)
    service.upload_file(ADMIN, image["id"], path)  # sha256 of the whole image
    record = service.get(ADMIN, image["id"])
    hashed = []
    real = service.store.get
    monkeypatch.setattr(service.store, "get", lambda d: hashed.append(d) or real(d))
    dest = str(tmp_path / "copy")
    service.download_to_file(ADMIN, image["id"], dest)
    assert hashed == []  # every chunk was sealed: one sha256 pass, the whole image's
    with open(dest, "rb") as f:
        assert f.read() == data
    # a sealed file whose bytes are wrong (the seal's blind spot) still fails the download
    victim = record["chunks"][2]
    sealed = service.store.sealed_path
    assert sealed(victim, CHUNK) is not None
    other = str(tmp_path / "other")
    with open(other, "wb") as f:
        f.write(_data("other", CHUNK))
    monkeypatch.setattr(service.store, "sealed_path",
                        lambda d, n: other if d == victim else sealed(d, n))
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(exception.ChecksumMismatch):
        service.download_to_file(ADMIN, image["id"], str(target / "copy"))
    assert os.listdir(target) == []
