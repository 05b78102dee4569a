"""The pieces of snapshots and rebuild that need no cloud: the fake driver's rebuild of a
root disk, the order backups rotate in, and the hook a rebuild gives server groups."""

from __future__ import annotations

import os
import random

import pytest

from transcell import exception
from transcell.compute import image_api, image_ops
from transcell.compute.virt import disk, power_state
from transcell.compute.virt.fake import FakeDriver, GiB

OLD = "0f2ac8f4-5b8c-4b5e-9a77-6f1b1e0d7c11"
NEW = "6a1de0d2-3c1c-4c8e-8f55-0e8f1b7a3d22"
CONTENT = {OLD: random.Random(1).randbytes(1 << 20), NEW: random.Random(2).randbytes(1 << 20)}
UUID = "d2f9a4c1-8a52-4f3e-9a0e-4b7c3e1f2a10"


def _fetch(image_id: str, dest: str) -> None:
    with open(dest, "wb") as fh:
        fh.write(CONTENT[image_id])


@pytest.fixture
def driver(tmp_path) -> FakeDriver:
    return FakeDriver("h", str(tmp_path / "instances"), str(tmp_path / "cache"))


def _spawn(driver: FakeDriver, ephemeral_gb: int = 1) -> None:
    driver.spawn({"uuid": UUID, "display_name": "s", "vcpus": 1, "memory_mb": 64,
                  "ephemeral_gb": ephemeral_gb}, {"id": OLD, "disk_format": "raw"}, _fetch, 1)


def test_rebuild_gives_the_new_image_and_keeps_the_ephemeral_disk_only_when_asked(driver):
    _spawn(driver)
    eph = driver.ephemeral_disk_path(UUID)
    assert eph is not None and os.path.getsize(eph) == GiB
    disk.guest_write(eph, 10, b"kept", "raw")
    disk.guest_write(driver.root_disk_path(UUID), 0, b"old root", driver.disk_format)
    instance = {"uuid": UUID, "display_name": "s", "ephemeral_gb": 1}
    driver.rebuild_root_disk(instance, {"id": NEW, "disk_format": "raw"}, _fetch, 1,
                             preserve_ephemeral=True, power_on=False)
    root = driver.root_disk_path(UUID)
    assert disk.guest_read(root, 0, 1 << 20, driver.disk_format) == CONTENT[NEW]
    assert disk.guest_read(eph, 10, 4, "raw") == b"kept"
    assert driver.root_disk_image(UUID) in (NEW, None)
    assert driver.get_power_state(UUID) == power_state.SHUTDOWN
    driver.rebuild_root_disk(instance, {"id": OLD, "disk_format": "raw"}, _fetch, 1)
    assert disk.guest_read(eph, 10, 4, "raw") == bytes(4)
    assert disk.guest_read(driver.root_disk_path(UUID), 0, 1 << 20,
                           driver.disk_format) == CONTENT[OLD]
    assert driver.get_power_state(UUID) == power_state.RUNNING


def test_rebuild_needs_the_guest_on_this_host(driver):
    with pytest.raises(exception.InstanceNotFound):
        driver.rebuild_root_disk({"uuid": UUID}, {"id": NEW}, _fetch, 1)


class _Images:
    """Stands in for the image service's list and delete."""

    def __init__(self, images: list[dict]):
        self.images = images
        self.deleted: list[str] = []

    def list(self, ctx, filters, sort_key="created_at", sort_dir="desc"):
        found = [i for i in self.images if all(i.get(k) == v for k, v in filters.items())]
        return sorted(found, key=lambda i: i["created_at"], reverse=sort_dir == "desc")

    def delete(self, ctx, image_id):
        self.deleted.append(image_id)


def test_backups_rotate_oldest_first_even_within_one_second(monkeypatch):
    same = "2026-12-02T10:00:00Z"
    images = [{"id": f"b{n}", "instance_uuid": UUID, "image_type": "backup",
               "backup_type": "daily", "created_at": same,
               image_ops.BACKUP_ORDER_KEY: f"{1000 + n}.000001"} for n in (2, 0, 3, 1)]
    images.append({"id": "weekly", "instance_uuid": UUID, "image_type": "backup",
                   "backup_type": "weekly", "created_at": "2026-12-01T00:00:00Z"})
    fake = _Images(images)
    monkeypatch.setattr(image_ops.services, "image", fake, raising=False)
    assert image_ops.rotate_backups(None, UUID, "daily", 2, newest="b3") == ["b0", "b1"]
    fake.deleted.clear()
    assert image_ops.rotate_backups(None, UUID, "daily", 0, newest="b3") == \
        ["b0", "b1", "b2", "b3"]


def test_a_rebuild_check_refuses_before_anything_changes(monkeypatch):
    server = {"uuid": UUID, "vm_state": "active", "task_state": None, "locked": False,
              "image_ref": OLD, "flavor": {"memory_mb": 512, "root_gb": 1}}
    monkeypatch.setattr(image_api, "_server", lambda ctx, sid: (object(), server))
    monkeypatch.setattr(image_api, "_rebuild_image",
                        lambda ctx, ref: {"id": NEW, "size": 10, "status": "active"})
    monkeypatch.setattr(image_api, "is_volume_backed", lambda cell, s: False)
    changed = []
    monkeypatch.setattr(image_api.inst, "update", lambda *a, **k: changed.append(k))
    seen = []

    def refuse(ctx, srv, image):
        seen.append((srv["uuid"], image["id"]))
        raise exception.Conflict("the group says no")

    monkeypatch.setattr(image_api, "REBUILD_CHECKS", [refuse])
    with pytest.raises(exception.Conflict, match="the group says no"):
        image_api.rebuild(None, UUID, NEW)
    assert seen == [(UUID, NEW)] and changed == []
