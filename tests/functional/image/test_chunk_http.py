"""The chunk protocol over real HTTP: waitress, builtin identity tokens, keystoneauth.

A host's disk crosses cells only through these routes, so the tests look at
what travels (PUTs counted at the server), what is refused (bad digests,
non-service callers) and that what comes back is bit for bit what left.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from transcell import exception, policy
from transcell.api.identity import make_app as identity_app
from transcell.api.image import make_app as image_app
from transcell.api.image.app import glance_error
from transcell.api.image.chunks import body_limits
from transcell.context import RequestContext
from transcell.identity.auth import Authenticator
from transcell.identity.catalog import default_catalog
from transcell.identity.store import IdentityStore, bootstrap
from transcell.image import sparse
from transcell.image.chunked import DIGEST_HEADER, uploads_for
from transcell.image.http_client import HTTPImageClient
from transcell.image.service import ImageService, zero_digest
from transcell.image.store import ChunkMissing, ChunkStore, digest_of
from transcell.policies.image import target
from transcell.wsgi.server import HTTPService, PrefixDispatcher
from transcell.wsgi.sizelimit import BodySizeLimit

CHUNK = 64 * 1024
CTX = RequestContext.admin()  # ignored by the HTTP client: the session's user acts


class Counter:
    """Counts requests by (method, kind) as they reach the image API; with ``tamper``
    set, flips a byte of every chunk read, as a broken network or proxy would."""

    def __init__(self, app):
        self.app = app
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.tamper = False

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        kind = "chunk" if "/chunks/" in path else path.rsplit("/", 1)[-1]
        with self.lock:
            key = (environ["REQUEST_METHOD"], kind)
            self.counts[key] = self.counts.get(key, 0) + 1
        body = self.app(environ, start_response)
        if self.tamper and key == ("GET", "chunk"):
            data = bytearray(b"".join(body))
            data[len(data) // 2] ^= 0xFF
            return [bytes(data)]
        return body

    def take(self, method: str, kind: str = "chunk") -> int:
        with self.lock:
            return self.counts.pop((method, kind), 0)


class Cloud:
    def __init__(self, identity: IdentityStore, service: ImageService, base: str,
                 counter: Counter):
        self.identity, self.service, self.base, self.counter = identity, service, base, counter

    def session(self, user: str, project: str) -> ks_session.Session:
        auth = v3.Password(auth_url=f"{self.base}/identity/v3", username=user,
                           password=self.identity.user_by_name(user).password,
                           project_name=project, user_domain_name="Default",
                           project_domain_name="Default")
        return ks_session.Session(auth=auth)

    def url(self, path: str) -> str:
        return f"{self.base}/image{path}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("chunk-http")
    identity = bootstrap(str(root / "identity"))
    service = ImageService(ChunkStore(str(root / "store"), CHUNK))
    counter = Counter(image_app(service, Authenticator(identity)))
    app = BodySizeLimit(PrefixDispatcher({
        "/identity": identity_app(identity, default_catalog), "/image": counter}),
        1024 * 1024, {"/image": glance_error}, exempt=body_limits("/image", CHUNK))
    http = HTTPService(app, "127.0.0.1", 0, threads=4)
    http.start()
    try:
        yield Cloud(identity, service, f"http://127.0.0.1:{http.port}", counter)
    finally:
        http.stop()


@pytest.fixture(scope="module")
def admin(cloud) -> ks_session.Session:
    return cloud.session("admin", "admin")


@pytest.fixture
def client(cloud, admin) -> HTTPImageClient:
    cloud.counter.counts.clear()
    return HTTPImageClient(admin, f"{cloud.base}/image", workers=3, window=4)


def _data(label: str, length: int = CHUNK) -> bytes:
    return hashlib.shake_256(label.encode()).digest(length)


def _sparse_file(path, chunks: int, data_at: dict[int, bytes], tail: int = 1000) -> None:
    """A file of ``chunks`` whole chunks plus a short tail, holes everywhere but ``data_at``."""
    with open(path, "wb") as f:
        f.truncate(chunks * CHUNK + tail)
        for index, data in data_at.items():
            f.seek(index * CHUNK)
            f.write(data)


def _new_image(client: HTTPImageClient, **fields) -> str:
    return client.create(CTX, disk_format="raw", container_format="bare", **fields)["id"]


def _store_chunks(cloud: Cloud) -> set[str]:
    return set(cloud.service.store.iter_digests())


def test_sparse_upload_sends_each_data_chunk_once_and_downloads_bit_for_bit(
        cloud, client, tmp_path):
    src = tmp_path / "disk.raw"
    dup = _data("dup")
    data_at = {0: _data("boot"), 3: dup, 4: bytes(CHUNK), 7: dup, 9: _data("end")[:CHUNK]}
    _sparse_file(src, 12, data_at, tail=1000)
    with open(src, "r+b") as f:  # the tail chunk holds data too
        f.seek(12 * CHUNK)
        f.write(_data("tail", 1000))
    image_id = _new_image(client, name="sparse")
    seen: list[tuple[int, int | None]] = []
    stats = client.upload_file(CTX, image_id, str(src), lambda d, t: seen.append((d, t)),
                               hash_algo=sparse.TREE_ALGO)
    # boot, dup (twice in the file, sent once), end, tail; zeros and holes never sent
    assert cloud.counter.take("PUT") == 4
    assert stats["chunks_sent"] == 4 and stats["bytes_sent"] == 3 * CHUNK + 1000
    size = os.path.getsize(src)
    assert stats["bytes_total"] == size and stats["chunks_total"] == 13
    assert seen[-1] == (size, size) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    expected = sparse.file_tree_digest(str(src), CHUNK, zero_digest)
    assert stats["os_hash_value"] == expected

    record = client.get(CTX, image_id)
    assert record["status"] == "active" and record["size"] == size
    assert record["os_hash_algo"] == sparse.TREE_ALGO and record["os_hash_value"] == expected
    assert record["chunks"][4] == zero_digest(CHUNK) == record["chunks"][5]

    dest = tmp_path / "copy.raw"
    got = client.download_to_file(CTX, image_id, str(dest))
    assert dest.read_bytes() == src.read_bytes()
    assert got["written_digest"] == expected and got["bytes_total"] == size
    # holes stay holes: only the data chunks were written
    assert got["bytes_written"] == 4 * CHUNK + 1000
    assert os.stat(dest).st_blocks * 512 < size
    assert cloud.counter.take("GET") == 5  # chunk 3 and 7 are fetched separately

    chunks = list(client.read_chunks(CTX, image_id, [7, 4, 12]))
    assert chunks == [dup, bytes(CHUNK), _data("tail", 1000)]


def test_second_disk_sends_only_the_chunks_the_store_lacks(cloud, client, tmp_path):
    base = {i: _data(f"base-{i}") for i in range(6)}
    first, second = tmp_path / "first.raw", tmp_path / "second.raw"
    _sparse_file(first, 8, base, tail=0)
    changed = dict(base)
    changed[2] = _data("changed-2")
    changed[7] = _data("new-7")
    _sparse_file(second, 8, changed, tail=0)

    one = _new_image(client, name="first")
    client.upload_file(CTX, one, str(first), hash_algo=sparse.TREE_ALGO)
    assert cloud.counter.take("PUT") == 6
    two = _new_image(client, name="second")
    stats = client.upload_file(CTX, two, str(second), hash_algo=sparse.TREE_ALGO)
    assert cloud.counter.take("PUT") == 2
    assert stats["chunks_sent"] == 2 and stats["bytes_sent"] == 2 * CHUNK
    dest = tmp_path / "back.raw"
    client.download_to_file(CTX, two, str(dest))
    assert dest.read_bytes() == second.read_bytes()


def test_whole_sha256_upload_has_glance_checksums(client, tmp_path):
    src = tmp_path / "image.raw"
    payload = _data("a", 3 * CHUNK) + bytes(CHUNK) + _data("b", 5000)
    src.write_bytes(payload)
    image_id = _new_image(client, name="dense")
    stats = client.upload_file(CTX, image_id, str(src))
    record = client.get(CTX, image_id)
    assert record["os_hash_algo"] == "sha256"
    assert record["os_hash_value"] == stats["os_hash_value"] == hashlib.sha256(
        payload).hexdigest()
    assert record["checksum"] == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    assert record["virtual_size"] == len(payload)
    dest = tmp_path / "dense.out"
    got = client.download_to_file(CTX, image_id, str(dest))
    assert dest.read_bytes() == payload and got["written_digest"] is None


def test_upload_chunks_references_known_chunks_without_sending_them(cloud, client):
    base_id = _new_image(client, name="base")
    base_chunks = [_data(f"k{i}") for i in range(3)]
    client.upload_chunks(CTX, base_id, iter(base_chunks), 3 * CHUNK)
    assert cloud.counter.take("PUT") == 3
    known = [("known", digest_of(c), CHUNK) for c in base_chunks]
    snap = _new_image(client, name="delta")
    new = _data("fresh")
    stats = client.upload_chunks(CTX, snap, iter([known[0], new, CHUNK, known[2]]),
                                 4 * CHUNK)
    assert cloud.counter.take("PUT") == 1 and stats["chunks_sent"] == 1
    assert b"".join(client.read_chunks(CTX, snap, range(4))) == (
        base_chunks[0] + new + bytes(CHUNK) + base_chunks[2])

    # a chunk named as held that the store lacks fails the upload, image queued again
    bad = _new_image(client, name="bad-delta")
    with pytest.raises(ChunkMissing):
        client.upload_chunks(CTX, bad, iter([_data("x"), ("known", "ab" * 32, CHUNK)]),
                             2 * CHUNK)
    assert client.get(CTX, bad)["status"] == "queued"
    assert digest_of(_data("x")) not in _store_chunks(cloud)
    assert bad not in uploads_for(cloud.service).open_uploads()


def test_a_failed_upload_is_undone(cloud, client, tmp_path):
    src = tmp_path / "fails.raw"
    _sparse_file(src, 10, {i: _data(f"fail-{i}") for i in range(10)}, tail=0)
    image_id = _new_image(client, name="fails")
    before = _store_chunks(cloud)

    def stop_half_way(done: int, total: int | None) -> None:
        if done > 5 * CHUNK:
            raise RuntimeError("host went away")

    with pytest.raises(RuntimeError):
        client.upload_file(CTX, image_id, str(src), stop_half_way, hash_algo=sparse.TREE_ALGO)
    assert client.get(CTX, image_id)["status"] == "queued"
    assert _store_chunks(cloud) == before
    assert uploads_for(cloud.service).open_uploads() == []
    client.upload_file(CTX, image_id, str(src), hash_algo=sparse.TREE_ALGO)
    assert client.get(CTX, image_id)["status"] == "active"


def test_a_chunk_whose_bytes_do_not_match_its_digest_is_refused(cloud, client, admin):
    image_id = _new_image(client, name="corrupt")
    resp = admin.post(cloud.url(f"/v2/images/{image_id}/chunk-upload"), raise_exc=False)
    assert resp.status_code == 200, resp.text
    claimed, sent = _data("claimed"), _data("sent-instead")
    before = _store_chunks(cloud)
    resp = admin.put(cloud.url(f"/v2/images/{image_id}/chunks/0"), data=sent,
                     headers={"Content-Type": "application/octet-stream",
                              DIGEST_HEADER: digest_of(claimed)}, raise_exc=False)
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "400 Bad Request" and "does not match its digest" in body["message"]
    assert _store_chunks(cloud) == before
    # the commit that names it finds it missing, and ends the upload
    resp = admin.post(cloud.url(f"/v2/images/{image_id}/chunk-upload/commit"),
                      json={"size": CHUNK, "chunks": [digest_of(claimed)]}, raise_exc=False)
    assert resp.status_code == 409 and resp.json()["missing_chunks"] == [digest_of(claimed)]
    assert client.get(CTX, image_id)["status"] == "queued"


def test_a_chunk_larger_than_the_chunk_size_is_413(cloud, client, admin):
    image_id = _new_image(client, name="big")
    admin.post(cloud.url(f"/v2/images/{image_id}/chunk-upload"))
    data = _data("big", CHUNK + 1)
    resp = admin.put(cloud.url(f"/v2/images/{image_id}/chunks/0"), data=data,
                     headers={"Content-Type": "application/octet-stream",
                              DIGEST_HEADER: digest_of(data)}, raise_exc=False)
    assert resp.status_code == 413 and resp.json()["code"].startswith("413")
    client._abort(image_id)
    assert client.get(CTX, image_id)["status"] == "queued"


def test_a_commit_larger_than_the_json_limit_is_accepted(cloud, client, admin):
    """A big disk's chunk list passes 1 MiB; the commit has its own, larger bound."""
    image_id = _new_image(client, name="huge-sparse")
    admin.post(cloud.url(f"/v2/images/{image_id}/chunk-upload"))
    count = 20000  # ~1.3 MB of JSON; 1.2 GiB of zeros, nothing sent
    resp = admin.post(cloud.url(f"/v2/images/{image_id}/chunk-upload/commit"),
                      json={"size": count * CHUNK, "chunks": [zero_digest(CHUNK)] * count,
                            "os_hash_algo": sparse.TREE_ALGO}, raise_exc=False)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["status"] == "active" and resp.json()["size"] == count * CHUNK
    client.delete(CTX, image_id)


def test_a_corrupted_stored_chunk_is_never_written_out(cloud, client, tmp_path):
    src = tmp_path / "rot.raw"
    payload = _data("rot-0") + _data("rot-1")
    src.write_bytes(payload)
    image_id = _new_image(client, name="rot")
    client.upload_file(CTX, image_id, str(src), hash_algo=sparse.TREE_ALGO)
    path = cloud.service.store.chunk_path(digest_of(_data("rot-1")))
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.write(b"\x00rot")
    dest = tmp_path / "rot.out"
    with pytest.raises(exception.ChecksumMismatch):
        client.download_to_file(CTX, image_id, str(dest))
    assert not dest.exists() and os.listdir(tmp_path) == ["rot.raw"]


def test_a_chunk_changed_on_the_wire_is_caught_by_the_client(cloud, client, tmp_path):
    src = tmp_path / "wire.raw"
    src.write_bytes(_data("wire-0") + _data("wire-1"))
    image_id = _new_image(client, name="wire")
    client.upload_file(CTX, image_id, str(src), hash_algo=sparse.TREE_ALGO)
    dest = tmp_path / "wire.out"
    cloud.counter.tamper = True
    try:
        with pytest.raises(exception.ChecksumMismatch):
            client.download_to_file(CTX, image_id, str(dest))
        with pytest.raises(exception.ChecksumMismatch):
            list(client.read_chunks(CTX, image_id, [1]))
    finally:
        cloud.counter.tamper = False
    assert not dest.exists() and os.listdir(tmp_path) == ["wire.raw"]
    client.download_to_file(CTX, image_id, str(dest))
    assert dest.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("user,project", [("demo", "demo"), ("reader", "demo")])
def test_members_and_readers_are_refused_every_chunk_route(cloud, client, user, project):
    image_id = _new_image(client, name="guarded")
    sess = cloud.session(user, project)
    digest = digest_of(b"x")
    calls = [
        ("GET", f"/v2/images/{image_id}/chunks", {}),
        ("GET", f"/v2/images/{image_id}/chunks/0", {}),
        ("POST", f"/v2/images/{image_id}/chunk-upload", {}),
        ("POST", f"/v2/images/{image_id}/chunk-upload/missing", {"json": {"digests": []}}),
        ("PUT", f"/v2/images/{image_id}/chunks/0",
         {"data": b"x", "headers": {"Content-Type": "application/octet-stream",
                                    DIGEST_HEADER: digest}}),
        ("POST", f"/v2/images/{image_id}/chunk-upload/commit",
         {"json": {"size": 0, "chunks": []}}),
        ("DELETE", f"/v2/images/{image_id}/chunk-upload", {}),
        ("POST", f"/v2/images/{image_id}/spool/lend", {}),
        ("POST", f"/v2/images/{image_id}/spool/confirm", {}),
        ("POST", f"/v2/images/{image_id}/spool/return", {}),
    ]
    for method, path, kwargs in calls:
        resp = sess.request(cloud.url(path), method, raise_exc=False, **kwargs)
        assert resp.status_code == 403, (method, path, resp.status_code, resp.text)
        assert resp.json()["message"] == ("You are not authorized to complete "
                                          f"{'get' if method == 'GET' else 'upload'}"
                                          "_image_chunks action.")
    assert client.get(CTX, image_id)["status"] == "queued"
    # the same user still reaches the ordinary Image API
    assert sess.get(cloud.url("/v2/images"), raise_exc=False).status_code == 200


def test_the_service_role_may_use_the_chunk_routes():
    service = RequestContext(user_id="nova", project_id="service", roles=["service"])
    member = RequestContext(user_id="u", project_id="p", roles=["member", "reader"])
    wanted = target({"owner": "p", "visibility": "private"}, "p")
    for rule in ("get_image_chunks", "upload_image_chunks"):
        assert policy.check(service, rule, wanted)
        assert policy.check(RequestContext.admin(), rule, wanted)
        assert not policy.check(member, rule, wanted)


def test_a_missing_image_is_404(cloud, client, admin):
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in (("GET", "/chunks"), ("GET", "/chunks/0"), ("POST", "/chunk-upload")):
        resp = admin.request(cloud.url(f"/v2/images/{missing}{path}"), method,
                             raise_exc=False)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["code"] == "404 Not Found"
    with pytest.raises(exception.ImageNotFound):
        client.get(CTX, missing)
    with pytest.raises(exception.ImageNotFound):
        client.download_to_file(CTX, missing, "/nonexistent/never")


def test_records_through_the_image_api(client):
    image_id = _new_image(client, name="rec", os_hidden=True, transcell_migration="m-1")
    record = client.get(CTX, image_id)
    assert record["chunks"] == [] and record["chunk_size"] == CHUNK
    assert record["transcell_migration"] == "m-1" and record["os_hidden"] is True
    updated = client.update(CTX, image_id, {"name": "renamed", "note/x": "y"},
                            remove=("transcell_migration",))
    assert updated["name"] == "renamed" and updated["note/x"] == "y"
    assert "transcell_migration" not in updated
    names = {i["name"] for i in client.list(CTX, {"os_hidden": True})}
    assert "renamed" in names
    assert all("chunks" not in i and "self" not in i for i in client.list(CTX, limit=2))
    assert len(client.list(CTX, limit=2)) == 2
    with pytest.raises(exception.Conflict):
        client.download_to_file(CTX, image_id, "/nonexistent/never")
    client.delete(CTX, image_id)
    with pytest.raises(exception.ImageNotFound):
        client.get(CTX, image_id)
    with pytest.raises(exception.ImageNotFound):
        client.delete(CTX, image_id)


def _spooled_upload(client, cloud, tmp_path, label: str) -> tuple[str, bytes]:
    src = tmp_path / f"{label}.raw"
    data = _data(f"{label}-0") + _data(f"{label}-1") + _data(f"{label}-2", 1000)
    src.write_bytes(data)
    image_id = _new_image(client, name=label)
    client.upload_file(CTX, image_id, str(src), hash_algo=sparse.TREE_ALGO, spool=True)
    assert cloud.counter.take("POST", "chunk-upload") == 1
    assert client.get(CTX, image_id)["spool"] == [0, 1, 2]
    return image_id, data


def test_a_host_on_the_stores_filesystem_takes_the_spool_by_rename(cloud, client, tmp_path):
    image_id, data = _spooled_upload(client, cloud, tmp_path, "taken")
    cloud.counter.take("GET")
    dest = tmp_path / "disk"
    got = client.download_to_file(CTX, image_id, str(dest), take=True)
    assert dest.read_bytes() == data
    assert got["bytes_taken"] == len(data) and got["bytes_written"] == 0
    assert cloud.counter.take("POST", "lend") == cloud.counter.take("POST", "confirm") == 1
    assert cloud.counter.take("GET") == 0  # no chunk fetched
    assert client.get(CTX, image_id)["taken"] == [0, 1, 2]
    assert cloud.service.store.check()["missing"] == []


def test_a_host_that_cannot_rename_the_spool_returns_it_and_fetches(cloud, client, tmp_path,
                                                                   monkeypatch):
    image_id, data = _spooled_upload(client, cloud, tmp_path, "returned")
    from transcell.image import http_client

    def elsewhere(src, dst):  # as a host on another filesystem meets the store's path
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(http_client.os, "rename", elsewhere)
    dest = tmp_path / "disk"
    got = client.download_to_file(CTX, image_id, str(dest), take=True)
    assert dest.read_bytes() == data
    assert got["bytes_taken"] == 0 and got["bytes_written"] == len(data)
    assert cloud.counter.take("POST", "return") == 1
    assert cloud.counter.take("POST", "confirm") == 0
    record = client.get(CTX, image_id)
    assert record["spool"] == [0, 1, 2] and "taken" not in record


def test_a_later_round_names_taken_chunks_through_the_image_that_gave_them(cloud, client,
                                                                          tmp_path):
    first, data = _spooled_upload(client, cloud, tmp_path, "round-1")
    client.download_to_file(CTX, first, str(tmp_path / "disk"), take=True)
    changed = _data("round-2-1")
    items = [("known", digest_of(data[:CHUNK]), CHUNK), changed,
             ("known", digest_of(data[2 * CHUNK:]), 1000)]
    second = _new_image(client, name="round-2")
    client.upload_chunks(CTX, second, iter(items), 2 * CHUNK + 1000, taken_from=first)
    record = client.get(CTX, second)
    assert record["taken"] == [0, 2]
    assert record["chunks"][1] == digest_of(changed)
    assert list(client.read_chunks(CTX, second, [1])) == [changed]
    # without naming the image that gave them, the same chunks are missing
    third = _new_image(client, name="round-2-blind")
    with pytest.raises(ChunkMissing):
        client.upload_chunks(CTX, third, iter(items), 2 * CHUNK + 1000)
    assert cloud.service.store.check()["missing"] == []


def test_a_confirm_that_fails_puts_the_spool_back(cloud, client, tmp_path, monkeypatch):
    """The image API unreachable after the rename: the file goes back to the store's
    path, so the store (or the store restarted) still holds the chunks."""
    image_id, data = _spooled_upload(client, cloud, tmp_path, "unconfirmed")
    real = client._call

    def confirm_fails(method, url, *args, **kwargs):
        if url.endswith("/spool/confirm"):
            raise ConnectionError("the image API went away")
        return real(method, url, *args, **kwargs)
    monkeypatch.setattr(client, "_call", confirm_fails)
    with pytest.raises(ConnectionError):
        client.download_to_file(CTX, image_id, str(tmp_path / "disk"), take=True)
    monkeypatch.undo()
    assert not (tmp_path / "disk").exists()
    assert os.path.exists(cloud.service.store.spools.path(image_id))
    client._call("POST", client._url(image_id, "spool", "return"), image_id)
    assert list(client.read_chunks(CTX, image_id, [1])) == [data[CHUNK:2 * CHUNK]]
