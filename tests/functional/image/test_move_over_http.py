"""A cross-cell resize whose hosts reach the image service only through its URL.

The cloud is ``transcell up`` with ``services.image`` swapped for the HTTP client
(``http_image_cloud.py``): the source host sends the guest's disk as chunks over
HTTP, the target rebuilds it from chunks it reads over HTTP, and the guest's bytes
arrive intact.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell.compute.virt import disk

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "moves"))
import movehelpers as mh  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), "http_image_cloud.py")
MiB = 1024 * 1024
CHUNK = 4 * MiB  # [image] chunk_size's default, which the cloud runs with


def _chunk_requests(state_dir: str) -> list[tuple[str, str]]:
    with open(os.path.join(state_dir, "chunk-requests.log")) as fh:
        return [tuple(line.split()) for line in fh if line.strip()]  # type: ignore[misc]


@pytest.fixture
def cloud(tmp_path):
    state = str(tmp_path / "cloud")
    os.makedirs(state)
    # a guest this quiet would not be pre-copied at the default threshold; at 0 its
    # chunks take one round through the image API while it runs
    with open(os.path.join(state, "transcell.conf"), "w") as fh:
        fh.write("[conductor]\nprecopy_stop_mib = 0\n")
    # this cloud's hosts use the HTTP image client: embedded layout only
    proc = start_cloud(state, layout="embedded", program=(sys.executable, SCRIPT))
    try:
        yield CloudProcess(state, proc.port)
    finally:
        stop_cloud(proc)


def test_cross_cell_resize_moves_the_disk_through_the_image_api(cloud):
    srv = mh.boot(cloud, "over-http")
    sid, src = srv["id"], mh.host_of(srv)
    # booting fetched the base image into the host's cache through the chunk routes
    assert any(m == "GET" and "/chunks/" in p for m, p in _chunk_requests(cloud.state_dir))
    path = mh.root_disk(cloud, sid, src)
    written = {offset: os.urandom(4096) for offset in (0, 3 * MiB + 512, 9 * MiB)}
    for offset, data in written.items():
        disk.guest_write(path, offset, data)
    seen = len(_chunk_requests(cloud.state_dir))

    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dst = mh.host_of(found)
    assert mh.cell_of_host(dst) != mh.cell_of_host(src)
    moved = _chunk_requests(cloud.state_dir)[seen:]
    puts = sorted(int(p.rsplit("/", 1)[1]) for m, p in moved if m == "PUT" and "/chunks/" in p)
    # only the chunks the guest changed crossed the wire, nothing of the base image
    assert puts == sorted({offset // CHUNK for offset in written}) == [0, 2], moved
    # one chunk list per image: each pre-copy round's while the guest ran, then the one
    # after the stop, which sends no chunk when nothing was written since the last round
    show = cloud.transcell("migration", "show", mh.migrations(cloud, sid)[0]["uuid"], "--json")
    rounds = json.loads(show.stdout)["precopy_rounds"]
    assert len(rounds) == 1, rounds
    assert sum(1 for m, p in moved if m == "POST" and p.endswith("/chunk-upload/commit")) == 2
    assert any(m == "GET" and "/chunks/" in p for m, p in moved), moved
    target = mh.root_disk(cloud, sid, dst)
    for offset, data in written.items():
        assert disk.guest_read(target, offset, len(data)) == data, offset

    mh.action(cloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    assert mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) == dst


def test_a_disk_of_mostly_new_data_is_spooled_once_and_taken_over_by_rename(cloud):
    """The image API and both hosts share this machine's filesystem: the store lays the
    new chunks out as the disk, and the target takes that file over instead of
    fetching and writing each chunk again."""
    srv = mh.boot(cloud, "over-http-spooled")
    sid, src = srv["id"], mh.host_of(srv)
    path = mh.root_disk(cloud, sid, src)
    written = {16 * MiB: os.urandom(6 * CHUNK), 40 * MiB + 100: os.urandom(5000)}
    for offset, data in written.items():
        disk.guest_write(path, offset, data)
    seen = len(_chunk_requests(cloud.state_dir))

    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}}, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dst = mh.host_of(found)
    moved = _chunk_requests(cloud.state_dir)[seen:]
    posts = [p.rsplit("/", 2)[-2:] for m, p in moved if m == "POST"]
    assert ["spool", "lend"] in posts and ["spool", "confirm"] in posts, moved
    assert ["spool", "return"] not in posts, moved
    # the seven new chunks crossed the wire once, to the store, and were never read back
    puts = {int(p.rsplit("/", 1)[1]) for m, p in moved if m == "PUT" and "/chunks/" in p}
    assert puts == {4, 5, 6, 7, 8, 9, 10}, moved
    sent_to = {p.split("/")[-3] for m, p in moved if m == "PUT"}
    read_back = {int(p.split("/")[-1]) for m, p in moved if m == "GET"
                 and p.split("/")[-1].isdigit() and p.split("/")[-3] in sent_to}
    assert read_back == {0, 1, 2, 3}, moved  # only the image's chunks, filled in
    rounds = json.loads(cloud.transcell("migration", "show", mh.migrations(cloud, sid)[0][
        "uuid"], "--json").stdout)["precopy_rounds"]
    assert rounds[0]["bytes_taken_at_target"] == 7 * CHUNK, rounds
    target = mh.root_disk(cloud, sid, dst)
    for offset, data in written.items():
        assert disk.guest_read(target, offset, len(data)) == data, offset
    mh.action(cloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    mh.wait_status(cloud, sid, "ACTIVE")
    mh.assert_audit_clean(cloud)
