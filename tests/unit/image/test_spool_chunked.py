"""A spool over the chunk protocol: chunks put by a host into the store's spool, and a
target in another process that takes it over by rename after the store lends it."""

from __future__ import annotations

import hashlib
import os

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.image import sparse
from transcell.image.chunked import ChunkUploads
from transcell.image.service import ImageService
from transcell.image.store import ChunkMissing, ChunkStore, digest_of

CHUNK = 64 * 1024
ADMIN = RequestContext(user_id="admin", project_id="admin-p", roles=["admin"])
ALICE = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])


@pytest.fixture
def service(tmp_path):
    return ImageService(ChunkStore(str(tmp_path / "store"), chunk_size=CHUNK))


@pytest.fixture
def uploads(service):
    return ChunkUploads(service)


def _image(service) -> str:
    return service.create(ALICE, disk_format="raw", container_format="bare")["id"]


def _data(label: str, length: int = CHUNK) -> bytes:
    return hashlib.shake_256(label.encode()).digest(length)


def _commit(uploads, image_id, digests, size):
    lengths = [min(CHUNK, size - i * CHUNK) for i in range(len(digests))]
    return uploads.commit(ADMIN, image_id, size, digests, sparse.TREE_ALGO,
                          sparse.tree_digest(zip(digests, lengths, strict=True)))


def _spooled(service, uploads, chunks: list[bytes]) -> dict:
    """Chunks put as a host sends them: each new digest once, at its first index."""
    image_id = _image(service)
    uploads.begin(ADMIN, image_id, spool=True)
    digests = [digest_of(c) for c in chunks]
    sent = set()
    for index, (data, digest) in enumerate(zip(chunks, digests, strict=True)):
        if digest not in sent:
            sent.add(digest)
            uploads.put(ADMIN, image_id, index, digest, data)
    return _commit(uploads, image_id, digests, sum(len(c) for c in chunks))


def test_a_spooled_chunk_upload_lays_every_occurrence_out(service, uploads):
    a, b, tail = _data("a"), _data("b"), _data("tail", 1000)
    record = _spooled(service, uploads, [a, b, a, tail])
    # a was sent once, at index 0: the commit copied it to index 2 as well
    assert record["spool"] == [0, 1, 2, 3]
    assert set(service.store.iter_digests()) == set()
    with open(service.store.spools.path(record["id"]), "rb") as f:
        assert f.read() == a + b + a + tail
    assert service.store.get(digest_of(b)) == b
    assert service.store.check()["missing"] == []


def test_a_spooled_chunk_of_the_wrong_length_fails_the_commit(service, uploads):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id, spool=True)
    short = _data("short", 1000)
    uploads.put(ADMIN, image_id, 0, digest_of(short), short)
    with pytest.raises(exception.Invalid, match="needs 65536"):
        _commit(uploads, image_id, [digest_of(short), digest_of(_data("x"))], 2 * CHUNK)
    assert service.get(ADMIN, image_id)["status"] == "queued"
    assert os.listdir(service.store.spools.dir) == []  # the failed upload's spool went


def test_a_chunk_put_far_past_any_image_is_refused(service, uploads):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id, spool=True)
    data = _data("far")
    with pytest.raises(exception.Invalid):
        uploads.put(ADMIN, image_id, 10 ** 9, digest_of(data), data)
    uploads.abort(ADMIN, image_id)
    assert os.listdir(service.store.spools.dir) == []


def test_a_lent_spool_renamed_away_and_confirmed_is_taken(service, uploads, tmp_path):
    a, b = _data("a"), _data("b")
    record = _spooled(service, uploads, [a, b])
    offered = uploads.lend_spool(ADMIN, record["id"])
    st = os.stat(offered["path"])
    assert offered["signature"] == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                    st.st_ctime_ns]
    assert offered["indexes"] == [0, 1]
    # lent: no upload may start relying on its chunks, and it is not offered twice
    assert not service.store.has(digest_of(a))
    assert uploads.lend_spool(ADMIN, record["id"]) is None
    with pytest.raises(exception.Conflict, match="still in the image store"):
        uploads.confirm_spool(ADMIN, record["id"])
    dest = str(tmp_path / "disk")
    os.rename(offered["path"], dest)
    taken = uploads.confirm_spool(ADMIN, record["id"])
    assert taken["taken"] == [0, 1] and "spool" not in taken
    assert open(dest, "rb").read() == a + b
    assert service.store.check()["missing"] == []
    with pytest.raises(exception.Conflict):
        list(service.read_chunks(ADMIN, record["id"], [1]))


def test_a_lent_spool_the_target_could_not_take_is_the_stores_again(service, uploads):
    a = _data("a")
    record = _spooled(service, uploads, [a])
    uploads.lend_spool(ADMIN, record["id"])
    assert not service.store.has(digest_of(a))
    uploads.return_spool(ADMIN, record["id"])
    assert service.store.has(digest_of(a))
    assert list(service.read_chunks(ADMIN, record["id"], [0])) == [a]
    assert uploads.lend_spool(ADMIN, record["id"]) is not None  # and may be lent again


def test_a_lend_nobody_confirms_expires(service, uploads, monkeypatch):
    from transcell.image import spool
    a = _data("a")
    record = _spooled(service, uploads, [a])
    uploads.lend_spool(ADMIN, record["id"])
    monkeypatch.setattr(spool, "LEND_SECONDS", -1.0)
    # the next lend finds the old one stale, gives it back, and lends afresh
    assert uploads.lend_spool(ADMIN, record["id"]) is not None


def test_a_later_upload_names_the_taken_chunks_through_their_image(service, uploads,
                                                                    tmp_path):
    a, b, c = _data("a"), _data("b"), _data("c")
    first = _spooled(service, uploads, [a, b])
    offered = uploads.lend_spool(ADMIN, first["id"])
    os.rename(offered["path"], str(tmp_path / "disk"))
    uploads.confirm_spool(ADMIN, first["id"])

    second = _image(service)
    uploads.begin(ADMIN, second, taken_from=first["id"])
    uploads.put(ADMIN, second, 1, digest_of(c), c)
    record = _commit(uploads, second, [digest_of(a), digest_of(c)], 2 * CHUNK)
    assert record["taken"] == [0]
    # without the image that took it, the store cannot vouch for chunk 0
    third = _image(service)
    uploads.begin(ADMIN, third)
    with pytest.raises(ChunkMissing):
        _commit(uploads, third, [digest_of(a), digest_of(c)], 2 * CHUNK)


def test_a_chunk_put_once_the_commit_began_is_refused(service, uploads):
    """A chunk landing after the commit checked the spool would be sealed unchecked."""
    a, b = _data("a"), _data("b")
    image_id = _image(service)
    uploads.begin(ADMIN, image_id, spool=True)
    uploads.put(ADMIN, image_id, 0, digest_of(a), a)
    record = _commit(uploads, image_id, [digest_of(a)], CHUNK)
    with pytest.raises(exception.Conflict):
        uploads.put(ADMIN, image_id, 0, digest_of(b), b)
    with open(service.store.spools.path(record["id"]), "rb") as f:
        assert f.read() == a
    writer_image = _image(service)
    uploads.begin(ADMIN, writer_image, spool=True)
    upload = uploads._uploads[writer_image]
    upload.writer.freeze()
    with pytest.raises(exception.Invalid):
        uploads.put(ADMIN, writer_image, 0, digest_of(b), b)
    uploads.abort(ADMIN, writer_image)


def test_a_taker_that_died_after_the_rename_leaves_missing_chunks_the_audit_sees(
        service, uploads, tmp_path, monkeypatch):
    """Killed between its rename and its confirm: the store cannot get the file back.
    The image's chunks are reported missing until the move that made it is undone and
    deletes it; nothing else named them (they were copied out at the lend)."""
    from transcell.image import spool
    a = _data("a")
    record = _spooled(service, uploads, [a])
    offered = uploads.lend_spool(ADMIN, record["id"])
    os.rename(offered["path"], str(tmp_path / "disk"))
    monkeypatch.setattr(spool, "LEND_SECONDS", -1.0)
    assert uploads.lend_spool(ADMIN, record["id"]) is None  # expired, nothing to give back
    assert service.store.check()["missing"] == [digest_of(a)]
    service.delete(ADMIN, record["id"])
    assert service.store.check() == {"missing": [], "orphans": [], "corrupt": [],
                                     "orphan_spools": []}
