"""A move's image written once as its disk, and a target that takes it over by rename."""

from __future__ import annotations

import hashlib
import os

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.image import spool as spool_mod
from transcell.image.service import ImageService
from transcell.image.spool import ChunksTaken
from transcell.image.store import ChunkMissing, ChunkStore

CHUNK = 64 * 1024
ALICE = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])


@pytest.fixture
def service(tmp_path):
    return ImageService(ChunkStore(str(tmp_path / "store"), chunk_size=CHUNK))


def _data(tag: str, length: int = CHUNK) -> bytes:
    return hashlib.shake_256(tag.encode()).digest(length)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _image(service):
    return service.create(ALICE, disk_format="raw", container_format="bare")


def _chunk_files(store: ChunkStore) -> set[str]:
    return set(store.iter_digests())


def _spooled(service, chunks, spool=True, taken_from=None):
    """An image of ``chunks`` (bytes, an int for zeros, or a ("known", ...) tuple)."""
    image = _image(service)
    size = sum(c if isinstance(c, int) else c[2] if isinstance(c, tuple) else len(c)
               for c in chunks)
    stats = service.upload_chunks(ALICE, image["id"], iter(chunks), size, spool=spool,
                                  taken_from=taken_from)
    return service.get(ALICE, image["id"]), stats


def _expected(chunks, service) -> bytes:
    out = b""
    for c in chunks:
        if isinstance(c, int):
            out += bytes(c)
        elif isinstance(c, tuple):
            out += service.store.get(c[1])
        else:
            out += c
    return out


def test_a_spooled_upload_writes_new_chunks_once_laid_out_as_the_disk(service):
    a, b = _data("a"), _data("b")
    record, stats = _spooled(service, [a, CHUNK, b, a])
    assert record["spool"] == [0, 2, 3]  # a twice: a spool is the disk's layout
    assert stats["bytes_sent"] == 3 * CHUNK
    # nothing went to chunk files; the store still holds and serves both chunks
    assert _chunk_files(service.store) == set()
    assert service.store.has(_digest(a)) and service.store.get(_digest(b)) == b
    with open(service.store.spools.path(record["id"]), "rb") as f:
        assert f.read() == a + bytes(CHUNK) + b + a
    assert service.store.check()["missing"] == []
    assert service.store.check()["orphan_spools"] == []


def test_a_target_takes_the_spool_by_rename_and_fills_in_the_rest(service, tmp_path):
    base = _data("base")
    service.store.put(base)  # held before the upload: named, not spooled
    new = _data("new")
    chunks = [new, ("known", _digest(base), CHUNK), CHUNK, _data("tail", 1000)]
    record, _ = _spooled(service, chunks)
    spool_path = service.store.spools.path(record["id"])
    inode = os.stat(spool_path).st_ino
    dest = str(tmp_path / "disk.incoming")

    got = service.download_to_file(ALICE, record["id"], dest, take=True)

    with open(dest, "rb") as f:
        assert f.read() == _expected(chunks, service)
    assert os.stat(dest).st_ino == inode  # the store's file itself: nothing copied
    assert not os.path.exists(spool_path)
    assert got["bytes_taken"] == CHUNK + 1000
    assert got["bytes_written"] == CHUNK  # only the base chunk was copied in
    assert got["written_digest"] == record["os_hash_value"]
    after = service.get(ALICE, record["id"])
    assert after["taken"] == [0, 3] and "spool" not in after
    # the taken chunks are the target's now: the store neither holds nor misses them
    assert not service.store.has(_digest(new))
    report = service.store.check()
    assert report["missing"] == [] and report["orphan_spools"] == []
    with pytest.raises(ChunksTaken):
        list(service.read_chunks(ALICE, record["id"], [0]))
    assert list(service.read_chunks(ALICE, record["id"], [1])) == [base]
    with pytest.raises(ChunksTaken):
        service.download(ALICE, record["id"])
    with pytest.raises(ChunksTaken):
        service.download_to_file(ALICE, record["id"], str(tmp_path / "again"), take=True)
    assert not os.path.exists(tmp_path / "again")


def test_chunks_another_image_names_are_copied_out_before_the_take(service, tmp_path):
    shared, own = _data("shared"), _data("own")
    record, _ = _spooled(service, [shared, own])
    # a plain image uploaded since finds ``shared`` in the spool and does not store it
    other = _image(service)
    service.upload(ALICE, other["id"], __import__("io").BytesIO(shared), CHUNK)
    assert _chunk_files(service.store) == set()

    service.download_to_file(ALICE, record["id"], str(tmp_path / "disk"), take=True)

    assert _chunk_files(service.store) == {_digest(shared)}
    assert b"".join(service.download(ALICE, other["id"])) == shared
    assert service.store.check()["missing"] == []


def test_deleting_a_spooled_image_keeps_what_others_name(service):
    shared, own = _data("shared"), _data("own")
    record, _ = _spooled(service, [shared, own])
    other = _image(service)
    service.upload(ALICE, other["id"], __import__("io").BytesIO(shared), CHUNK)

    service.delete(ALICE, record["id"])

    assert not os.path.exists(service.store.spools.path(record["id"]))
    assert _chunk_files(service.store) == {_digest(shared)}
    assert not service.store.has(_digest(own))
    assert b"".join(service.download(ALICE, other["id"])) == shared
    report = service.store.check()
    assert report == {"missing": [], "orphans": [], "corrupt": [], "orphan_spools": []}


def test_a_spool_changed_since_its_upload_is_not_taken(service, tmp_path):
    a = _data("a")
    record, _ = _spooled(service, [a, _data("b")])
    path = service.store.spools.path(record["id"])
    with open(path, "r+b") as f:  # one byte of chunk 1 flipped behind the store's back
        f.seek(CHUNK + 7)
        byte = f.read(1)
        f.seek(CHUNK + 7)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(exception.ChecksumMismatch):
        service.download_to_file(ALICE, record["id"], str(tmp_path / "disk"), take=True)
    # not taken: the spool and the manifest are as they were, and nothing was left behind
    assert os.path.exists(path) and service.get(ALICE, record["id"])["spool"] == [0, 1]
    assert os.listdir(tmp_path) == ["store"]


def test_after_a_restart_spooled_chunks_are_served_and_rebuilt_not_taken(service, tmp_path):
    chunks = [_data("a"), _data("b")]
    record, _ = _spooled(service, chunks)
    again = ImageService(ChunkStore(service.store.root, chunk_size=CHUNK))
    assert again.store.get(_digest(chunks[1])) == chunks[1]
    dest = str(tmp_path / "disk")
    got = again.download_to_file(ALICE, record["id"], dest, take=True)
    # no seal from this process: every chunk read back and re-hashed instead
    assert got["bytes_taken"] == 0 and got["bytes_written"] == 2 * CHUNK
    assert open(dest, "rb").read() == b"".join(chunks)
    assert os.path.exists(again.store.spools.path(record["id"]))


def test_a_later_round_names_taken_chunks_only_through_their_image(service, tmp_path):
    a, b, c = _data("a"), _data("b"), _data("c")
    first, _ = _spooled(service, [a, b])
    service.download_to_file(ALICE, first["id"], str(tmp_path / "disk"), take=True)
    later = [("known", _digest(a), CHUNK), c]  # chunk 0 unchanged, chunk 1 written again

    # without the image that took them, the store cannot vouch for taken chunks
    blind = _image(service)
    with pytest.raises(ChunkMissing):
        service.upload_chunks(ALICE, blind["id"], iter(later), 2 * CHUNK)
    assert service.get(ALICE, blind["id"])["status"] == "queued"

    second, _ = _spooled(service, later, spool=False, taken_from=first["id"])
    assert second["taken"] == [0] and second["chunks"] == [_digest(a), _digest(c)]
    assert list(service.read_chunks(ALICE, second["id"], [1])) == [c]
    with pytest.raises(ChunksTaken):
        list(service.read_chunks(ALICE, second["id"], [0]))
    assert service.store.check()["missing"] == []
    # a chunk named "taken" at another index than the one the target took is not
    moved = [c, ("known", _digest(a), CHUNK)]
    wrong = _image(service)
    with pytest.raises(ChunkMissing):
        service.upload_chunks(ALICE, wrong["id"], iter(moved), 2 * CHUNK,
                              taken_from=first["id"])


def test_a_failed_rename_gives_the_spool_back(service, tmp_path, monkeypatch):
    chunks = [_data("a"), _data("b")]
    record, _ = _spooled(service, chunks)

    def cross_device(src, dst):
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(spool_mod.os, "rename", cross_device)
    dest = str(tmp_path / "disk")
    got = service.download_to_file(ALICE, record["id"], dest, take=True)
    assert got["bytes_taken"] == 0 and open(dest, "rb").read() == b"".join(chunks)
    assert service.get(ALICE, record["id"])["spool"] == [0, 1]
    assert "taken" not in service.get(ALICE, record["id"])
    assert service.store.has(_digest(chunks[0]))
    monkeypatch.undo()
    taken = service.download_to_file(ALICE, record["id"], str(tmp_path / "disk2"), take=True)
    assert taken["bytes_taken"] == 2 * CHUNK  # the seal still holds: taken after all


def test_orphan_spools_are_reported_and_removed_but_not_a_running_uploads(service):
    record, _ = _spooled(service, [_data("a")])
    # a kill between the take's manifest write and its rename leaves the file behind
    service.store.update_manifest(record["id"], lambda r: r.update(
        taken=r.pop("spool")) and None)
    running = _image(service)
    service._begin_upload(ALICE, running["id"])
    writer = service.store.spools.start(running["id"], CHUNK)
    try:
        assert service.store.check()["orphan_spools"] == [record["id"]]
        # one just written may be a running upload's, seen from another process
        assert service.store.spools.remove_orphans([record["id"]]) == 0
        assert service.store.spools.remove_orphans([record["id"], running["id"]],
                                                   min_age=0) == 1
        assert not os.path.exists(service.store.spools.path(record["id"]))
        assert os.path.exists(writer.path)
    finally:
        writer.discard()


def test_a_failed_spooled_upload_leaves_no_spool(service):
    image = _image(service)

    def items():
        yield _data("a")
        raise OSError("the disk went away")
    with pytest.raises(OSError):
        service.upload_chunks(ALICE, image["id"], items(), 2 * CHUNK, spool=True)
    assert os.listdir(service.store.spools.dir) == []
    assert service.get(ALICE, image["id"])["status"] == "queued"
    assert service.store.check()["orphan_spools"] == []


def test_deleting_an_image_whose_spooled_upload_was_cut_short_removes_its_spool(service):
    image = _image(service)
    service._begin_upload(ALICE, image["id"])  # as a host killed mid-upload left it
    writer = service.store.spools.start(image["id"], CHUNK)
    writer.put(0, _digest(_data("a")), _data("a"))
    writer.close()
    assert service.store.check()["orphan_spools"] == []  # still saving: not an orphan
    service.delete(ALICE, image["id"])
    assert os.listdir(service.store.spools.dir) == []


def test_a_chunk_a_running_upload_holds_is_copied_out_before_the_take(service, tmp_path):
    """Another upload found a spooled chunk present (and pinned it) but has not
    committed yet when the target takes the spool: its image must still be whole."""
    shared, own = _data("shared"), _data("own")
    record, _ = _spooled(service, [shared, own])
    other = _image(service)
    with service.store.pinned() as pin:
        assert pin.claim([_digest(shared)]) == set()  # present: in the spool
        service.download_to_file(ALICE, record["id"], str(tmp_path / "disk"), take=True)
        assert _chunk_files(service.store) == {_digest(shared)}
        # the other upload goes on naming the chunk it was told is there
        service.upload_chunks(ALICE, other["id"], iter([("known", _digest(shared), CHUNK)]),
                              CHUNK)
    assert b"".join(service.download(ALICE, other["id"])) == shared
    assert service.store.check()["missing"] == []
