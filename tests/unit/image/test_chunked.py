"""The chunk protocol's server half: uploads that end, die, or outlive their image."""

from __future__ import annotations

import hashlib
import time

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.image import chunked, sparse
from transcell.image.chunked import ChunkUploads
from transcell.image.service import ImageService, zero_digest
from transcell.image.store import ChunkStore, digest_of

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


def _data(label: str) -> bytes:
    return hashlib.shake_256(label.encode()).digest(CHUNK)


def _chunks(service) -> set[str]:
    return set(service.store.iter_digests())


def test_commit_checks_the_list_against_the_store_and_names_the_image(service, uploads,
                                                                     tmp_path):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    one, two = _data("one"), _data("two")
    assert uploads.missing(ADMIN, image_id, [digest_of(one), digest_of(two)]) == [
        digest_of(one), digest_of(two)]
    assert uploads.put(ADMIN, image_id, 0, digest_of(one), one) is True
    assert uploads.put(ADMIN, image_id, 2, digest_of(one), one) is False
    with pytest.raises(exception.Invalid, match="has 3 chunks"):
        uploads.commit(ADMIN, image_id, 3 * CHUNK, [digest_of(one)])
    # a failed commit ends the upload: queued again, its chunks collected
    assert service.get(ADMIN, image_id)["status"] == "queued"
    assert digest_of(one) not in _chunks(service)

    uploads.begin(ADMIN, image_id)
    uploads.put(ADMIN, image_id, 0, digest_of(one), one)
    short = two[:100]
    uploads.put(ADMIN, image_id, 2, digest_of(short), short)
    layout = [digest_of(one), zero_digest(CHUNK), digest_of(short)]
    with pytest.raises(exception.Invalid, match="says otherwise"):
        uploads.commit(ADMIN, image_id, 2 * CHUNK + 100, [digest_of(one), zero_digest(CHUNK),
                                                         digest_of(one)])
    uploads.begin(ADMIN, image_id)
    uploads.put(ADMIN, image_id, 0, digest_of(one), one)
    uploads.put(ADMIN, image_id, 2, digest_of(short), short)
    record = uploads.commit(ADMIN, image_id, 2 * CHUNK + 100, layout)
    assert record["status"] == "active" and record["chunks"] == layout
    assert record["os_hash_value"] == sparse.tree_digest(
        zip(layout, [CHUNK, CHUNK, 100], strict=True))
    service.download_to_file(ADMIN, image_id, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == one + bytes(CHUNK) + short
    assert uploads.open_uploads() == []


def test_a_chunk_in_the_wrong_place_is_refused_at_commit(service, uploads):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    short = _data("s")[:10]
    uploads.put(ADMIN, image_id, 0, digest_of(short), short)
    with pytest.raises(exception.Invalid, match="holds 10 bytes"):
        uploads.commit(ADMIN, image_id, CHUNK + 10, [digest_of(short), zero_digest(10)])


def test_a_whole_sha256_commit_is_hashed_by_the_server(service, uploads):
    image_id = _image(service)
    one = _data("whole")
    uploads.begin(ADMIN, image_id)
    uploads.put(ADMIN, image_id, 0, digest_of(one), one)
    with pytest.raises(exception.Invalid, match="not the"):
        uploads.commit(ADMIN, image_id, CHUNK, [digest_of(one)], "sha256", "0" * 64)
    uploads.begin(ADMIN, image_id)
    uploads.put(ADMIN, image_id, 0, digest_of(one), one)
    record = uploads.commit(ADMIN, image_id, CHUNK, [digest_of(one)], "sha256")
    assert record["os_hash_value"] == hashlib.sha256(one).hexdigest()
    assert record["checksum"] == hashlib.md5(one, usedforsecurity=False).hexdigest()


def test_an_upload_nobody_touches_is_taken_over(service, uploads, monkeypatch):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    orphan = _data("orphan")
    uploads.put(ADMIN, image_id, 0, digest_of(orphan), orphan)
    with pytest.raises(exception.Conflict):  # still alive: a second begin is refused
        uploads.begin(ADMIN, image_id)
    monkeypatch.setattr(chunked, "STALE_AFTER", 0.0)
    time.sleep(0.01)
    uploads.begin(ADMIN, image_id)
    assert digest_of(orphan) not in _chunks(service)
    assert service.get(ADMIN, image_id)["status"] == "saving"
    assert uploads.open_uploads() == [image_id]


def test_an_upload_begun_before_a_restart_is_taken_over(service, uploads):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    restarted = ChunkUploads(service)
    with pytest.raises(exception.Conflict):  # no session here: nothing to put into
        restarted.put(ADMIN, image_id, 0, digest_of(_data("x")), _data("x"))
    restarted.abort(ADMIN, image_id)
    assert service.get(ADMIN, image_id)["status"] == "queued"
    uploads.begin(ADMIN, image_id)
    again = ChunkUploads(service)
    again.begin(ADMIN, image_id)
    assert service.get(ADMIN, image_id)["status"] == "saving"
    assert again.open_uploads() == [image_id]


def test_a_streamed_upload_in_progress_is_never_taken_over(service, uploads):
    image_id = _image(service)
    service._begin_upload(ADMIN, image_id)  # what PUT /file does first
    with pytest.raises(exception.Conflict):
        uploads.begin(ADMIN, image_id)
    uploads.abort(ADMIN, image_id)
    assert service.get(ADMIN, image_id)["status"] == "saving"


def test_a_chunk_arriving_after_the_end_is_not_kept(service, uploads, monkeypatch):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    late = _data("late")
    real_put = service.store.put_known

    def abort_meanwhile(digest, data):
        wrote = real_put(digest, data)
        uploads.abort(ADMIN, image_id)
        return wrote

    monkeypatch.setattr(service.store, "put_known", abort_meanwhile)
    with pytest.raises(exception.Conflict, match="has ended"):
        uploads.put(ADMIN, image_id, 0, digest_of(late), late)
    assert digest_of(late) not in _chunks(service)
    assert service.get(ADMIN, image_id)["status"] == "queued"


def test_an_image_deleted_under_its_upload_lets_its_chunks_go(service, uploads):
    image_id = _image(service)
    uploads.begin(ADMIN, image_id)
    gone = _data("gone")
    uploads.put(ADMIN, image_id, 0, digest_of(gone), gone)
    service.delete(ADMIN, image_id)
    with pytest.raises(exception.ImageNotFound):
        uploads.missing(ADMIN, image_id, [digest_of(gone)])
    assert uploads.open_uploads() == []
    assert digest_of(gone) not in _chunks(service)
    assert not service.store._pins


def test_only_the_owner_or_an_admin_uploads(service, uploads):
    image_id = _image(service)
    bob = RequestContext(user_id="bob", project_id="proj-b", roles=["member"])
    with pytest.raises(exception.ImageNotFound):
        uploads.begin(bob, image_id)
    service.update(ALICE, image_id, {"visibility": "community"})
    with pytest.raises(exception.Forbidden):  # seen, but not Bob's to fill
        uploads.begin(bob, image_id)
    uploads.begin(ALICE, image_id)
    with pytest.raises(exception.Forbidden):
        uploads.put(bob, image_id, 0, digest_of(_data("b")), _data("b"))
    with pytest.raises(exception.Invalid, match="does not match"):
        uploads.put(ALICE, image_id, 0, digest_of(_data("b")), _data("c"))
