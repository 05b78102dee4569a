"""Volume bytes through an image service reached over HTTP, as in the distributed layout.

The volume service then holds an ``HTTPImageClient``: the same functions must
create the hidden images, send only the chunks the store lacks (counted here
as PUTs reaching the image API) and clean up, over the wire.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from volume_files import CHUNK, pattern, sparse_volume

from transcell import exception
from transcell.api.identity import make_app as identity_app
from transcell.api.image import make_app as image_app
from transcell.api.image.app import glance_error
from transcell.api.image.chunks import body_limits
from transcell.context import RequestContext
from transcell.identity.auth import Authenticator
from transcell.identity.catalog import default_catalog
from transcell.identity.store import bootstrap
from transcell.image.http_client import HTTPImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore
from transcell.registry import services
from transcell.volume import data, data_store
from transcell.wsgi.server import HTTPService, PrefixDispatcher
from transcell.wsgi.sizelimit import BodySizeLimit

CTX = RequestContext.admin()


class ChunkPuts:
    """Counts the chunk PUTs that reach the image API: the bytes a copy really sent."""

    def __init__(self, app):
        self.app, self.count, self.lock = app, 0, threading.Lock()

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "PUT" and "/chunks/" in environ.get("PATH_INFO", ""):
            with self.lock:
                self.count += 1
        return self.app(environ, start_response)

    def take(self) -> int:
        with self.lock:
            count, self.count = self.count, 0
        return count


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[tuple[ImageService, ChunkPuts]]:
    root = tmp_path_factory.mktemp("volume-http")
    identity = bootstrap(str(root / "identity"))
    service = ImageService(ChunkStore(str(root / "store"), CHUNK))
    puts = ChunkPuts(image_app(service, Authenticator(identity)))
    app = BodySizeLimit(PrefixDispatcher({
        "/identity": identity_app(identity, default_catalog), "/image": puts}),
        1024 * 1024, {"/image": glance_error}, exempt=body_limits("/image", CHUNK))
    http = HTTPService(app, "127.0.0.1", 0, threads=4)
    http.start()
    base = f"http://127.0.0.1:{http.port}"
    auth = v3.Password(auth_url=f"{base}/identity/v3", username="admin",
                       password=identity.user_by_name("admin").password,
                       project_name="admin", user_domain_name="Default",
                       project_domain_name="Default")
    before = services.image
    services.image = HTTPImageClient(ks_session.Session(auth=auth), f"{base}/image",
                                     workers=3, window=4)
    try:
        yield service, puts
    finally:
        services.image = before
        http.stop()




def test_send_over_http_puts_only_missing_chunks(cloud, tmp_path):
    service, puts = cloud
    puts.take()
    src = sparse_volume(tmp_path / "cell1" / "volume-9", 40,
                  {0: pattern("a"), 3: bytes(CHUNK), 20: pattern("b"), 39: pattern("c")})
    dst = str(tmp_path / "cell2" / "volume-9")
    keep, transfer = str(uuid.uuid4()), str(uuid.uuid4())
    got = data.send_through_store(CTX, src, dst, transfer, keep_image_id=keep)
    assert got["bytes_sent"] == 3 * CHUNK and puts.take() == 3  # the zero chunk stays home
    assert data.checksum(dst) == got["checksum"] == data.checksum(src)
    with pytest.raises(exception.ImageNotFound):
        services.image.get(CTX, transfer)
    kept = services.image.get(CTX, keep)
    assert kept["os_hidden"] is True and kept[data_store.KEPT_MARKER] == "volume-9"
    # hidden: an ordinary listing does not show it
    assert keep not in {i["id"] for i in services.image.list(CTX)}

    with open(src, "r+b") as f:
        f.seek(20 * CHUNK)
        f.write(b"changed")
    back = str(tmp_path / "cell1b" / "volume-9")
    again = data.send_through_store(CTX, src, back, str(uuid.uuid4()), keep_image_id=keep)
    assert again["bytes_sent"] == CHUNK and puts.take() == 1
    assert data.checksum(back) == data.checksum(src)
    data_store.drop_kept(CTX, keep)
    assert list(service.store.iter_digests()) == []


def test_image_round_trip_over_http(cloud, tmp_path):
    _, puts = cloud
    src = sparse_volume(tmp_path / "v", 16, {1: pattern("x"), 15: pattern("y")})
    image_id = services.image.create(CTX, disk_format="raw", container_format="bare")["id"]
    puts.take()
    assert data.to_image(CTX, src, image_id)["bytes_sent"] == 2 * CHUNK
    assert puts.take() == 2
    path = str(tmp_path / "backend" / "volume-1")
    data.from_image(CTX, image_id, path, 1)
    assert os.path.getsize(path) == data.GiB
    with open(path, "rb") as f, open(src, "rb") as g:
        assert f.read(16 * CHUNK) == g.read()
    # the client reads as the service user, but a user gets only the images they may see
    alice = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])
    other = str(tmp_path / "backend" / "volume-2")
    with pytest.raises(exception.ImageNotFound):
        data.from_image(alice, image_id, other, 1)
    assert not os.path.exists(other)
    services.image.update(CTX, image_id, {"visibility": "public"})
    data.from_image(alice, image_id, other, 1)
    services.image.delete(CTX, image_id)
