"""A compute host fetching images into its cache on request (2.81): the real fake
driver's cache directory, filled through the image service's download path."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from transcell import exception
from transcell.cell import Cell
from transcell.compute.manager import ComputeManager
from transcell.compute.virt.fake import FakeDriver
from transcell.context import RequestContext
from transcell.registry import services

MiB = 1024 * 1024
RAW = "0f2ac8f4-5b8c-4b5e-9a77-6f1b1e0d7c11"
QCOW = "1c8b4f4e-2d6f-4a0e-8b5c-3e9d7a6f5b42"
ISO = "7d3e2a1b-9c8f-4e6d-a5b4-c3d2e1f0a9b8"
MISSING = "9e8d7c6b-5a4f-4e3d-b2c1-a0f9e8d7c6b5"
CTX = RequestContext(user_id="admin", project_id="admin-project", roles=["admin"])


class Images:
    """The image service as a host sees it: records, and downloads written to a path."""

    def __init__(self, tmp_path):
        self.content = {RAW: random.Random(3).randbytes(2 * MiB)}
        qcow = tmp_path / "source.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"],
                       check=True)
        self.content[QCOW] = qcow.read_bytes()
        self.content[ISO] = b"\0" * 4096
        self.formats = {RAW: "raw", QCOW: "qcow2", ISO: "iso"}
        self.downloads: list[str] = []

    def get(self, ctx, image_id: str) -> dict:
        if image_id not in self.content:
            raise exception.ImageNotFound(image_id=image_id)
        return {"id": image_id, "disk_format": self.formats[image_id], "status": "active"}

    def download_to_file(self, ctx, image_id: str, dest: str) -> dict:
        self.downloads.append(image_id)
        with open(dest, "wb") as fh:
            fh.write(self.content[image_id])
        return {"size": len(self.content[image_id])}


@pytest.fixture
def host(tmp_path, monkeypatch) -> tuple[ComputeManager, Images]:
    images = Images(tmp_path)
    monkeypatch.setattr(services, "image", images)
    driver = FakeDriver("host1", str(tmp_path / "instances"), str(tmp_path / "cache"))
    driver.init_host()
    cell = Cell(1, "cell-uuid", "cell1", "sqlite://", "inproc://cell1")
    return ComputeManager("host1", cell, driver, []), images


def test_images_are_fetched_once_into_the_hosts_cache(host):
    manager, images = host
    cache = manager.driver.image_cache_dir
    assert manager.cache_images(CTX, [RAW, QCOW]) == {RAW: "cached", QCOW: "cached"}
    with open(os.path.join(cache, RAW), "rb") as fh:
        assert fh.read() == images.content[RAW]
    assert os.path.getsize(os.path.join(cache, QCOW)) == len(images.content[QCOW])
    # asked again: already there, nothing downloaded
    assert manager.cache_images(CTX, [RAW, QCOW]) == {RAW: "existing", QCOW: "existing"}
    assert images.downloads == [RAW, QCOW]


def test_a_failing_image_does_not_stop_the_others(host):
    manager, images = host
    results = manager.cache_images(CTX, [MISSING, ISO, RAW])
    assert results == {MISSING: "error", ISO: "error", RAW: "cached"}
    assert os.path.exists(os.path.join(manager.driver.image_cache_dir, RAW))
    assert not os.path.exists(os.path.join(manager.driver.image_cache_dir, MISSING))


def test_a_cached_image_is_the_base_a_later_server_builds_on(host, tmp_path):
    manager, images = host
    manager.cache_images(CTX, [RAW])
    manager.driver.spawn({"uuid": "5f1d3c2b-0a9e-4d8c-b7a6-f5e4d3c2b1a0", "vcpus": 1,
                          "memory_mb": 512}, images.get(CTX, RAW),
                         lambda image_id, dest: images.download_to_file(CTX, image_id, dest),
                         disk_gb=1)
    assert images.downloads == [RAW]


def test_a_driver_without_a_cache_says_so(host):
    manager, images = host

    class NoCache:
        pass

    manager.driver = NoCache()  # type: ignore[assignment]
    assert manager.cache_images(CTX, [RAW]) == {RAW: "unsupported"}
    assert images.downloads == []


def test_a_fault_file_fails_one_cache_request(host):
    manager, images = host
    faults = os.path.join(os.path.dirname(manager.driver.instances_dir), "faults")
    os.makedirs(faults, exist_ok=True)
    with open(os.path.join(faults, "cache_image"), "w") as fh:
        fh.write("disk full")
    assert manager.cache_images(CTX, [RAW, QCOW]) == {RAW: "error", QCOW: "cached"}
    assert manager.cache_images(CTX, [RAW]) == {RAW: "cached"}
