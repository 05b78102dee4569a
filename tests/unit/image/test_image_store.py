"""The chunk store: content addressing, verification and garbage collection."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

import pytest

from transcell import exception
from transcell.image.store import ChunkMissing, ChunkStore


@pytest.fixture
def store(tmp_path):
    return ChunkStore(str(tmp_path / "store"), chunk_size=4096)


def _all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def test_put_is_content_addressed_and_deduplicated(store):
    digest = store.put(b"hello chunk")
    assert digest == hashlib.sha256(b"hello chunk").hexdigest()
    assert store.put(b"hello chunk") == digest
    assert os.path.isfile(os.path.join(store.root, "chunks", digest[:2], digest))
    assert list(store.iter_digests()) == [digest]
    assert store.get(digest) == b"hello chunk"
    assert store.has(digest)


def test_missing_names_only_absent_chunks(store):
    present = store.put(b"a")
    absent = hashlib.sha256(b"b").hexdigest()
    assert store.missing([present, absent, absent]) == {absent}
    store.delete(present)
    assert store.missing([present]) == {present}


def test_corrupted_chunk_is_refused(store):
    digest = store.put(b"x" * 5000)
    with open(store.chunk_path(digest), "r+b") as f:
        f.seek(100)
        f.write(b"y")
    with pytest.raises(exception.ChecksumMismatch) as err:
        store.get(digest)
    assert digest in err.value.message
    assert store.check(deep=True)["corrupt"] == [digest]


def test_absent_chunk_raises_chunk_missing(store):
    with pytest.raises(ChunkMissing):
        store.get(hashlib.sha256(b"never stored").hexdigest())


def test_bad_digests_and_ids_never_touch_the_filesystem(store):
    with pytest.raises(ValueError):
        store.has("../../etc/passwd")
    with pytest.raises(ValueError):
        store.read_manifest("../escape")
    with pytest.raises(ValueError):
        store.read_manifest(str(uuid.uuid4()).upper())


def test_concurrent_puts_of_shared_and_distinct_data(store):
    shared = os.urandom(20000)
    errors = []
    digests = set()

    def worker(n):
        try:
            for i in range(20):
                digests.add(store.put(shared))
                digests.add(store.put(f"{n}-{i}".encode() * 100))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(store.iter_digests()) == digests
    assert len(digests) == 1 + 8 * 20
    assert not [f for f in _all_files(store.root) if ".tmp-" in f]
    assert store.get(hashlib.sha256(shared).hexdigest()) == shared


def test_manifest_updates_do_not_lose_concurrent_changes(store):
    image_id = str(uuid.uuid4())
    assert store.create_manifest({"id": image_id, "count": 0, "chunks": []})
    assert not store.create_manifest({"id": image_id, "count": 99, "chunks": []})

    def bump():
        for _ in range(25):
            store.update_manifest(image_id, lambda r: r.update(count=r["count"] + 1))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read_manifest(image_id)["count"] == 200


def test_failed_manifest_change_writes_nothing(store):
    image_id = str(uuid.uuid4())
    store.create_manifest({"id": image_id, "name": "a", "chunks": []})

    def bad(record):
        record["name"] = "b"
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        store.update_manifest(image_id, bad)
    assert store.read_manifest(image_id)["name"] == "a"
    assert store.update_manifest(str(uuid.uuid4()), lambda r: None) is None


def test_removing_a_manifest_collects_only_unshared_chunks(store):
    shared, own_a, own_b = store.put(b"shared"), store.put(b"only a"), store.put(b"only b")
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    store.create_manifest({"id": a, "chunks": [shared, own_a]})
    store.create_manifest({"id": b, "chunks": [shared, own_b]})
    store.remove_manifest(a)
    assert set(store.iter_digests()) == {shared, own_b}
    store.remove_manifest(b)
    assert list(store.iter_digests()) == []
    assert store.check() == {"missing": [], "orphans": [], "corrupt": [],
                                     "orphan_spools": []}


def test_pinned_chunks_survive_collection(store):
    with store.pinned() as pin:
        digest = hashlib.sha256(b"in flight").hexdigest()
        assert pin.claim([digest]) == {digest}
        store.put(b"in flight")
        assert store.collect() == 0
        assert store.has(digest)
    assert store.collect() == 1
    assert not store.has(digest)


def test_check_reports_missing_and_orphaned_chunks(store):
    orphan = store.put(b"orphan")
    lost = hashlib.sha256(b"lost").hexdigest()
    store.create_manifest({"id": str(uuid.uuid4()), "chunks": [lost]})
    report = store.check()
    assert report["missing"] == [lost]
    assert report["orphans"] == [orphan]


def test_stats_count_chunks_and_images(store):
    store.put(b"a" * 100)
    store.put(b"b" * 50)
    store.create_manifest({"id": str(uuid.uuid4()), "chunks": []})
    stats = store.stats()
    assert (stats["chunks"], stats["bytes_stored"], stats["images"]) == (2, 150, 1)
    assert stats["free_bytes"] > 0
