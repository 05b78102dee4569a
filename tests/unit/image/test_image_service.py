"""The image service: Glance semantics and the verified, dedup'd data path."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading

import pytest

from transcell import exception
from transcell.context import RequestContext
from transcell.image.default import IMAGE_ID, NAME, content, ensure_default_image
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore

CHUNK = 64 * 1024
ADMIN = RequestContext(user_id="admin", project_id="admin-p", roles=["admin"])
ALICE = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])
BOB = RequestContext(user_id="bob", project_id="proj-b", roles=["member"])


@pytest.fixture
def service(tmp_path):
    return ImageService(ChunkStore(str(tmp_path / "store"), chunk_size=CHUNK))


def _raw(service, ctx=ALICE, **fields):
    return service.create(ctx, disk_format="raw", container_format="bare", **fields)


def _disk(path, size, regions):
    """A sparse file of ``size`` with deterministic data at ``regions`` offsets."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in regions:
            f.seek(offset)
            f.write(hashlib.shake_256(f"{path}{offset}".encode()).digest(length))
    return path


class TrickleStream(io.RawIOBase):
    """Returns at most 1000 bytes per read, like a socket."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def read(self, size=-1):
        return self.data.read(min(size, 1000) if size >= 0 else 1000)


# -- records and visibility -------------------------------------------------------------


def test_create_defaults_and_owner(service):
    image = service.create(ALICE, name="mine", team="blue")
    assert image["status"] == "queued"
    assert image["visibility"] == "private"
    assert image["owner"] == "proj-a"
    assert image["team"] == "blue"
    assert image["created_at"].endswith("Z") and image["protected"] is False
    assert service.get(ALICE, image["id"]) == image


def test_visibility_rules(service):
    private = service.create(ALICE, name="private")
    shared = service.create(ALICE, name="shared", visibility="shared")
    community = service.create(ALICE, name="community", visibility="community")
    public = service.create(ADMIN, name="public", visibility="public")

    # a shared image is seen by its owner and its members only, as in Glance
    for image in (private, shared):
        with pytest.raises(exception.ImageNotFound):
            service.get(BOB, image["id"])
    for image in (community, public):
        assert service.get(BOB, image["id"])["id"] == image["id"]
    assert service.get(ADMIN, private["id"])["id"] == private["id"]

    assert {i["name"] for i in service.list(BOB)} == {"public"}
    assert {i["name"] for i in service.list(BOB, {"visibility": "community"})} == {"community"}
    assert {i["name"] for i in service.list(ALICE)} == {"private", "shared", "community",
                                                       "public"}
    assert len(service.list(ADMIN)) == 4


def test_only_admins_publish(service):
    with pytest.raises(exception.Forbidden):
        service.create(ALICE, name="x", visibility="public")
    image = service.create(ALICE, name="x")
    with pytest.raises(exception.Forbidden):
        service.update(ALICE, image["id"], {"visibility": "public"})
    assert service.update(ADMIN, image["id"], {"visibility": "public"})["visibility"] == "public"


def test_bad_input_is_rejected_and_changes_nothing(service):
    with pytest.raises(exception.Invalid, match="disk_format"):
        service.create(ALICE, name="x", disk_format="floppy")
    with pytest.raises(exception.Forbidden, match="read-only"):
        service.create(ALICE, name="x", status="active")
    with pytest.raises(exception.Forbidden, match="reserved"):
        service.create(ALICE, name="x", chunks=[])
    with pytest.raises(exception.Invalid, match="must be a string"):
        service.create(ALICE, name="x", extra=5)
    assert service.list(ADMIN) == []

    image = service.create(ALICE, name="keep", min_ram=1)
    with pytest.raises(exception.Invalid, match="min_disk"):
        service.update(ALICE, image["id"], {"name": "changed", "min_disk": -1})
    assert service.get(ALICE, image["id"]) == image


def test_update_sets_and_removes_properties(service):
    image = service.create(ALICE, name="a", colour="red", size_hint="big")
    updated = service.update(ALICE, image["id"], {"name": "b", "colour": "green",
                                                  "tags": ["x", "x", "y"]}, remove=["size_hint"])
    assert (updated["name"], updated["colour"], updated["tags"]) == ("b", "green", ["x", "y"])
    assert "size_hint" not in service.get(ALICE, image["id"])
    with pytest.raises(exception.Conflict):
        service.update(ALICE, image["id"], {}, remove=["never_set"])
    with pytest.raises(exception.Forbidden):
        service.update(ALICE, image["id"], {}, remove=["name"])
    with pytest.raises(exception.Forbidden):
        service.update(BOB, service.update(ADMIN, image["id"], {"visibility": "public"})["id"],
                       {"name": "stolen"})


def test_delete_respects_protection_and_ownership(service):
    image = service.create(ALICE, name="p", protected=True, visibility="community")
    with pytest.raises(exception.Forbidden, match="protected"):
        service.delete(ALICE, image["id"])
    service.update(ALICE, image["id"], {"protected": False})
    with pytest.raises(exception.Forbidden):
        service.delete(BOB, image["id"])
    service.delete(ALICE, image["id"])
    with pytest.raises(exception.ImageNotFound):
        service.get(ALICE, image["id"])


def test_get_by_name_or_garbage_is_not_found(service):
    service.create(ALICE, name="cirros")
    for key in ("cirros", "../../etc", ""):
        with pytest.raises(exception.ImageNotFound):
            service.get(ALICE, key)


def test_list_filters_paging_and_sorting(service):
    ids = [service.create(ALICE, name=f"img-{n}", os_distro="cirros" if n % 2 else "fedora")["id"]
           for n in range(5)]
    assert [i["name"] for i in service.list(ALICE, {"name": "img-3"})] == ["img-3"]
    picked = service.list(ALICE, {"id": f"in:{ids[0]},{ids[4]}"})
    assert {i["id"] for i in picked} == {ids[0], ids[4]}
    assert {i["name"] for i in service.list(ALICE, {"os_distro": "cirros"})} == {"img-1", "img-3"}
    assert service.list(ALICE, {"status": "active"}) == []

    by_name = service.list(ALICE, sort_key="name", sort_dir="asc")
    assert [i["name"] for i in by_name] == [f"img-{n}" for n in range(5)]
    page1 = service.list(ALICE, limit=2, sort_key="name", sort_dir="asc")
    page2 = service.list(ALICE, limit=2, marker=page1[-1]["id"], sort_key="name",
                         sort_dir="asc")
    assert [i["name"] for i in page1 + page2] == ["img-0", "img-1", "img-2", "img-3"]
    with pytest.raises(exception.Invalid, match="marker"):
        service.list(ALICE, marker="00000000-0000-0000-0000-000000000000")
    with pytest.raises(exception.Invalid, match="sort key"):
        service.list(ALICE, sort_key="colour")
    with pytest.raises(exception.Invalid, match="limit"):
        service.list(ALICE, limit="many")


# -- streaming upload and download ------------------------------------------------------


def test_upload_stream_then_download(service):
    data = os.urandom(3 * CHUNK + 123)
    image = _raw(service)
    done = []
    active = service.upload(ALICE, image["id"], TrickleStream(data), size=len(data),
                            progress=lambda n, total: done.append((n, total)))
    assert active["status"] == "active"
    assert active["size"] == len(data) == active["virtual_size"]
    assert active["checksum"] == hashlib.md5(data).hexdigest()
    assert active["os_hash_algo"] == "sha256"
    assert active["os_hash_value"] == hashlib.sha256(data).hexdigest()
    assert len(active["chunks"]) == 4
    assert done[-1] == (len(data), len(data))
    assert b"".join(service.download(ALICE, image["id"])) == data


def test_upload_without_size_reads_to_end(service):
    data = b"abc" * 50000
    image = _raw(service)
    active = service.upload(ALICE, image["id"], io.BytesIO(data))
    assert active["size"] == len(data)


def test_short_upload_requeues_and_leaks_no_chunks(service):
    image = _raw(service)
    with pytest.raises(exception.Invalid, match="announced"):
        service.upload(ALICE, image["id"], io.BytesIO(os.urandom(2 * CHUNK)), size=5 * CHUNK)
    assert service.get(ALICE, image["id"])["status"] == "queued"
    assert list(service.store.iter_digests()) == []
    data = os.urandom(CHUNK)
    assert service.upload(ALICE, image["id"], io.BytesIO(data))["status"] == "active"


def test_upload_needs_a_queued_image_with_formats(service):
    bare = service.create(ALICE, name="no formats")
    with pytest.raises(exception.Invalid, match="disk_format"):
        service.upload(ALICE, bare["id"], io.BytesIO(b"x"))
    image = _raw(service)
    service.upload(ALICE, image["id"], io.BytesIO(b"x"))
    with pytest.raises(exception.Conflict):
        service.upload(ALICE, image["id"], io.BytesIO(b"y"))
    with pytest.raises(exception.Forbidden):
        service.upload(BOB, _raw(service, visibility="community")["id"], io.BytesIO(b"y"))
    with pytest.raises(exception.ImageNotFound):  # not a member: not even seen
        service.upload(BOB, _raw(service, visibility="shared")["id"], io.BytesIO(b"y"))


def test_qcow2_virtual_size_is_read_from_the_header(service):
    header = b"QFI\xfb" + bytes(20) + (10 * 2**30).to_bytes(8, "big") + bytes(100)
    image = service.create(ALICE, disk_format="qcow2", container_format="bare")
    assert service.upload(ALICE, image["id"], io.BytesIO(header))["virtual_size"] == 10 * 2**30


# -- file data path ----------------------------------------------------------------------


def test_upload_file_sends_only_missing_chunks(tmp_path):
    service = ImageService(ChunkStore(str(tmp_path / "store"), chunk_size=256 * 1024))
    mib = 1024 * 1024
    path = _disk(str(tmp_path / "disk.raw"), 8 * mib, [(0, 3 * mib), (6 * mib, mib)])

    first = service.upload_file(ALICE, _raw(service)["id"], path)
    assert first["bytes_total"] == 8 * mib
    assert first["chunks_total"] == 32
    # 16 data chunks plus one all-zero chunk shared by the 16 holes.
    assert first["chunks_sent"] == 17
    assert first["checksum"] == hashlib.md5(open(path, "rb").read()).hexdigest()

    again = service.upload_file(ALICE, _raw(service)["id"], path)
    assert (again["bytes_sent"], again["chunks_sent"]) == (0, 0)
    assert again["os_hash_value"] == first["os_hash_value"]

    with open(path, "r+b") as f:
        f.seek(2 * mib)
        f.write(os.urandom(mib))
    changed = service.upload_file(ALICE, _raw(service)["id"], path)
    assert changed["bytes_sent"] == mib
    assert changed["os_hash_value"] != first["os_hash_value"]


def test_download_to_file_is_verified_and_sparse(service, tmp_path):
    size = 4 * 1024 * 1024 + 1000
    path = _disk(str(tmp_path / "disk.raw"), size, [(0, 100), (3 * 1024 * 1024, 70000)])
    image = _raw(service)
    sent = service.upload_file(ALICE, image["id"], path)
    dest = str(tmp_path / "copy.raw")
    seen = []
    got = service.download_to_file(ALICE, image["id"], dest,
                                   progress=lambda n, total: seen.append((n, total)))
    with open(path, "rb") as a, open(dest, "rb") as b:
        assert a.read() == b.read()
    assert os.path.getsize(dest) == size
    assert os.stat(dest).st_blocks * 512 < 512 * 1024
    assert got["os_hash_value"] == sent["os_hash_value"]
    assert got["bytes_written"] < 200 * 1024
    assert seen[-1] == (size, size)


def test_a_chunk_list_image_downloads_through_the_api_path(service, tmp_path):
    """A move's snapshot (sha256-chunks) streams whole, checked against its chunk list."""
    size = 3 * CHUNK + 777
    path = _disk(str(tmp_path / "snap.raw"), size, [(10, 5000), (2 * CHUNK + 5, 900)])
    image = _raw(service)
    service.upload_file(ALICE, image["id"], path, hash_algo="sha256-chunks")
    record = service.get(ALICE, image["id"])
    assert record["os_hash_algo"] == "sha256-chunks"
    with open(path, "rb") as fh:
        assert b"".join(service.download(ALICE, image["id"])) == fh.read()


def _only(names_dir):
    return sorted(os.listdir(names_dir))


def test_corrupted_chunk_fails_download_and_leaves_no_file(service, tmp_path):
    data = os.urandom(3 * CHUNK)
    image = service.upload(ALICE, _raw(service)["id"], io.BytesIO(data))
    with open(service.store.chunk_path(image["chunks"][1]), "r+b") as f:
        f.write(b"\0\1\2")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(exception.ChecksumMismatch):
        service.download_to_file(ALICE, image["id"], str(out / "disk.raw"))
    assert _only(out) == []
    with pytest.raises(exception.ChecksumMismatch):
        b"".join(service.download(ALICE, image["id"]))


def test_whole_image_hash_is_checked(service, tmp_path):
    image = service.upload(ALICE, _raw(service)["id"], io.BytesIO(os.urandom(2 * CHUNK)))
    path = service.store.manifest_path(image["id"])
    record = json.load(open(path))
    record["chunks"].reverse()   # every chunk intact, the image wrong
    with open(path, "w") as f:
        json.dump(record, f)
    with pytest.raises(exception.ChecksumMismatch, match="image"):
        service.download_to_file(ALICE, image["id"], str(tmp_path / "disk.raw"))
    assert not os.path.exists(tmp_path / "disk.raw")
    assert [n for n in os.listdir(tmp_path) if ".part-" in n] == []


def test_download_of_an_empty_image_conflicts(service, tmp_path):
    image = _raw(service)
    with pytest.raises(exception.Conflict):
        service.download_to_file(ALICE, image["id"], str(tmp_path / "x"))


def test_chunks_claimed_by_an_upload_survive_a_concurrent_delete(service, tmp_path):
    data = os.urandom(4 * CHUNK)
    old = service.upload(ALICE, _raw(service)["id"], io.BytesIO(data))
    new = _raw(service)
    deleted = threading.Event()

    def delete_old_midway(done, total):
        if not deleted.is_set():
            service.delete(ALICE, old["id"])
            deleted.set()

    active = service.upload(ALICE, new["id"], io.BytesIO(data), progress=delete_old_midway)
    assert deleted.is_set() and active["status"] == "active"
    assert b"".join(service.download(ALICE, new["id"])) == data
    assert service.store.check() == {"missing": [], "orphans": [], "corrupt": [],
                                     "orphan_spools": []}
    service.delete(ALICE, new["id"])
    assert list(service.store.iter_digests()) == []


def test_stats(service):
    service.upload(ALICE, _raw(service)["id"], io.BytesIO(b"z" * 10))
    _raw(service)
    stats = service.stats()
    assert stats["images_by_status"] == {"active": 1, "queued": 1}
    assert stats["bytes_logical"] == 10 and stats["chunks"] == 1


# -- default image ------------------------------------------------------------------------


def test_default_image_is_idempotent_public_and_disk_like(service, tmp_path):
    first = ensure_default_image(service, ADMIN)
    again = ensure_default_image(service, ADMIN)
    assert first["id"] == again["id"] == IMAGE_ID
    assert first["updated_at"] == again["updated_at"]
    assert (first["name"], first["status"], first["visibility"]) == (NAME, "active", "public")
    assert (first["disk_format"], first["container_format"], first["min_disk"]) == (
        "raw", "bare", 1)
    assert first["size"] == 16 * 1024 * 1024
    assert len(service.list(ADMIN, {"name": NAME})) == 1
    assert service.get(BOB, IMAGE_ID)["id"] == IMAGE_ID

    data = content()
    assert data == content()
    assert data[510:512] == b"\x55\xaa"
    assert len(set(data[512:1024 * 1024])) == 256
    assert data.count(0) > len(data) * 0.8
    assert first["os_hash_value"] == hashlib.sha256(data).hexdigest()

    dest = str(tmp_path / "base.raw")
    service.download_to_file(BOB, IMAGE_ID, dest)
    assert open(dest, "rb").read() == data
    assert os.stat(dest).st_blocks * 512 < 4 * 1024 * 1024


def test_a_chunk_list_names_its_zero_chunks_without_storing_them(service, tmp_path):
    """A move's image: holes, zero data and a zero chunk named as known are never
    written to the store, yet the image reads back whole and the store's check finds
    nothing missing; a real chunk named as known still has to be held."""
    from transcell.image.pipeline import zero_digest

    data = os.urandom(CHUNK)
    tail = 777
    items = [data, CHUNK, bytes(CHUNK), ("known", zero_digest(CHUNK), CHUNK), tail]
    image = _raw(service)
    stats = service.upload_chunks(ALICE, image["id"], iter(items), 4 * CHUNK + tail)
    assert stats["bytes_sent"] == CHUNK and stats["chunks_sent"] == 1
    store = service.store
    assert not store.has(zero_digest(CHUNK)) and not store.has(zero_digest(tail))
    assert store.check() == {"missing": [], "orphans": [], "corrupt": [],
                                     "orphan_spools": []}
    assert b"".join(service.download(ALICE, image["id"])) == data + bytes(3 * CHUNK + tail)
    unheld = _raw(service)
    with pytest.raises(exception.TranscellError):
        service.upload_chunks(ALICE, unheld["id"],
                              iter([("known", "ab" * 32, CHUNK)]), CHUNK)
    assert service.get(ALICE, unheld["id"])["status"] == "queued"
