"""The fake driver: simulated guests whose disks and state survive on disk."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid as uuidlib

import pytest

from transcell import exception
from transcell.compute.virt import disk, power_state
from transcell.compute.virt.driver import ComputeDriver
from transcell.compute.virt.fake import FakeDriver, GiB

MiB = 1024 * 1024
IMAGE_ID = "0f2ac8f4-5b8c-4b5e-9a77-6f1b1e0d7c11"
IMAGE = random.Random(7).randbytes(3 * MiB)


class ImageSource:
    """Stands in for the image service; counts downloads."""

    def __init__(self, content: bytes = IMAGE, delay: float = 0.0):
        self.content = content
        self.delay = delay
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, image_id: str, dest_path: str) -> None:
        with self._lock:
            self.calls.append(image_id)
        with open(dest_path, "wb") as f:
            half = len(self.content) // 2
            f.write(self.content[:half])
            time.sleep(self.delay)  # a slow download widens any race
            f.write(self.content[half:])


def _driver(tmp_path, disk_format: str = "qcow2") -> FakeDriver:
    drv = FakeDriver("host1", str(tmp_path / "instances"), str(tmp_path / "cache"),
                     disk_format=disk_format, vcpus=8, memory_mb=4096, disk_gb=50)
    drv.init_host()
    return drv


def _instance(**kw) -> dict:
    inst = {"uuid": str(uuidlib.uuid4()), "display_name": "vm", "vcpus": 1,
            "memory_mb": 512}
    inst.update(kw)
    return inst


META = {"id": IMAGE_ID, "disk_format": "raw"}


def test_is_a_compute_driver_reporting_configured_totals(tmp_path):
    drv = _driver(tmp_path)
    assert isinstance(drv, ComputeDriver)
    assert drv.get_available_resource() == {
        "vcpus": 8, "memory_mb": 4096, "local_gb": 50, "hypervisor_type": "fake",
        "hypervisor_version": 1000, "hypervisor_hostname": "host1"}


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_spawn_builds_a_real_root_disk_from_the_image(tmp_path, fmt):
    drv = _driver(tmp_path, fmt)
    inst = _instance()
    drv.spawn(inst, META, ImageSource(), disk_gb=1)

    root = drv.root_disk_path(inst["uuid"])
    assert root == os.path.join(drv.instances_dir, inst["uuid"], "disk")
    assert drv.get_disk_paths(inst["uuid"]) == {"root": root}
    assert drv.root_disk_format(inst["uuid"]) == fmt
    details = disk.info(root, fmt)
    assert details["format"] == fmt
    assert details["virtual-size"] == GiB
    assert disk.guest_read(root, 0, len(IMAGE), fmt) == IMAGE
    assert os.stat(root).st_blocks * 512 < 64 * MiB
    assert drv.list_instances() == [inst["uuid"]]
    assert drv.instance_exists(inst["uuid"])
    assert drv.get_power_state(inst["uuid"]) == power_state.RUNNING


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_zero_disk_gb_takes_the_image_size(tmp_path, fmt):
    drv = _driver(tmp_path, fmt)
    inst = _instance()
    drv.spawn(inst, META, ImageSource(), disk_gb=0, power_on=False)
    assert disk.virtual_size(drv.root_disk_path(inst["uuid"]), fmt) == len(IMAGE)
    assert drv.get_power_state(inst["uuid"]) == power_state.SHUTDOWN


def test_power_state_survives_a_new_driver_on_the_same_dirs(tmp_path):
    drv = _driver(tmp_path)
    a, b = _instance(display_name="a"), _instance(display_name="b")
    drv.spawn(a, META, ImageSource(), disk_gb=1)
    drv.spawn(b, META, ImageSource(), disk_gb=1)
    drv.power_off(a["uuid"])
    drv.power_off(a["uuid"])  # already off: fine

    restarted = _driver(tmp_path)
    assert restarted.list_instances() == sorted([a["uuid"], b["uuid"]])
    assert restarted.get_power_state(a["uuid"]) == power_state.SHUTDOWN
    assert restarted.get_power_state(b["uuid"]) == power_state.RUNNING
    restarted.power_on(a["uuid"])
    assert _driver(tmp_path).get_power_state(a["uuid"]) == power_state.RUNNING


def test_unknown_guest_is_instance_not_found(tmp_path):
    drv = _driver(tmp_path)
    missing = str(uuidlib.uuid4())
    for call in (drv.power_off, drv.power_on, drv.get_power_state):
        with pytest.raises(exception.InstanceNotFound):
            call(missing)
    assert not drv.instance_exists(missing)
    assert drv.get_disk_paths(missing) == {}
    with pytest.raises(exception.DiskError, match="no root disk"):
        drv.root_disk_path(missing)


def test_destroy_keeping_disks_then_destroying_them(tmp_path):
    drv = _driver(tmp_path)
    inst = _instance()
    drv.spawn(inst, META, ImageSource(), disk_gb=1)
    root = drv.root_disk_path(inst["uuid"])

    drv.destroy(inst["uuid"], destroy_disks=False)
    drv.destroy(inst["uuid"], destroy_disks=False)
    assert not drv.instance_exists(inst["uuid"])
    assert drv.list_instances() == []
    assert drv.get_disk_paths(inst["uuid"]) == {"root": root}
    assert disk.guest_read(root, 0, 16, "qcow2") == IMAGE[:16]
    with pytest.raises(exception.InstanceNotFound):
        drv.get_power_state(inst["uuid"])

    drv.destroy(inst["uuid"])
    drv.destroy(inst["uuid"])
    assert not os.path.exists(os.path.dirname(root))
    assert drv.get_disk_paths(inst["uuid"]) == {}


def test_spawn_again_reuses_kept_disk(tmp_path):
    drv = _driver(tmp_path)
    inst = _instance()
    images = ImageSource()
    drv.spawn(inst, META, images, disk_gb=1)
    root = drv.root_disk_path(inst["uuid"])
    disk.guest_write(root, 5 * MiB, b"guest data that must survive", "qcow2")
    drv.destroy(inst["uuid"], destroy_disks=False)

    drv.spawn(inst, META, images, disk_gb=1)
    assert drv.get_power_state(inst["uuid"]) == power_state.RUNNING
    assert disk.guest_read(root, 5 * MiB, 28, "qcow2") == b"guest data that must survive"
    assert images.calls == [IMAGE_ID]

    other = {"id": "another-image", "disk_format": "raw"}
    with pytest.raises(exception.DiskError, match="already has a root disk"):
        drv.spawn(inst, other, images, disk_gb=1)


def test_concurrent_spawns_fetch_the_image_once(tmp_path):
    drv = _driver(tmp_path)
    images = ImageSource(delay=0.2)
    instances = [_instance() for _ in range(6)]
    errors: list[BaseException] = []

    def spawn(inst):
        try:
            drv.spawn(inst, META, images, disk_gb=1)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=spawn, args=(i,)) for i in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert images.calls == [IMAGE_ID]
    assert len(drv.list_instances()) == 6
    for inst in instances:
        root = drv.root_disk_path(inst["uuid"])
        assert disk.guest_read(root, len(IMAGE) - 8, 8, "qcow2") == IMAGE[-8:]
    assert sorted(n for n in os.listdir(drv.image_cache_dir) if not n.endswith(".lock")) \
        == [IMAGE_ID]


def test_failed_fetch_leaves_nothing_cached(tmp_path):
    drv = _driver(tmp_path)

    def broken(image_id, dest_path):
        with open(dest_path, "wb") as f:
            f.write(b"partial")
        raise exception.ImageNotFound(image_id=image_id)

    inst = _instance()
    with pytest.raises(exception.ImageNotFound):
        drv.spawn(inst, META, broken, disk_gb=1)
    assert [n for n in os.listdir(drv.image_cache_dir) if not n.endswith(".lock")] == []
    assert drv.get_disk_paths(inst["uuid"]) == {}

    images = ImageSource()
    drv.spawn(inst, META, images, disk_gb=1)
    assert images.calls == [IMAGE_ID]
    assert disk.guest_read(drv.root_disk_path(inst["uuid"]), 0, 32, "qcow2") == IMAGE[:32]


def test_injected_failure_is_raised_once(tmp_path):
    drv = _driver(tmp_path)
    inst = _instance()
    drv.inject_failure("spawn", exception.DiskError(reason="injected"))
    with pytest.raises(exception.DiskError, match="injected"):
        drv.spawn(inst, META, ImageSource(), disk_gb=1)
    assert not drv.instance_exists(inst["uuid"])

    drv.spawn(inst, META, ImageSource(), disk_gb=1)
    assert drv.instance_exists(inst["uuid"])

    drv.inject_failure("power_off", RuntimeError("hypervisor hiccup"))
    with pytest.raises(RuntimeError):
        drv.power_off(inst["uuid"])
    assert drv.get_power_state(inst["uuid"]) == power_state.RUNNING
    drv.power_off(inst["uuid"])
    assert drv.get_power_state(inst["uuid"]) == power_state.SHUTDOWN

    with pytest.raises(ValueError):
        drv.inject_failure("no_such_method", RuntimeError())


def test_unsafe_identifiers_are_refused(tmp_path):
    drv = _driver(tmp_path)
    with pytest.raises(exception.Invalid):
        drv.spawn(_instance(uuid="../escape"), META, ImageSource(), disk_gb=1)
    with pytest.raises(exception.Invalid):
        drv.spawn(_instance(), {"id": "../../etc/passwd"}, ImageSource(), disk_gb=1)
    with pytest.raises(exception.Invalid):
        drv.spawn(_instance(), {"id": IMAGE_ID, "disk_format": "vmdk"}, ImageSource(),
                  disk_gb=1)


def test_qcow2_image_with_a_backing_file_is_refused(tmp_path):
    base = tmp_path / "secret"
    base.write_bytes(b"host data")

    def sneaky(image_id, dest_path):
        disk.create_qcow2_overlay(str(base), dest_path, MiB)

    drv = _driver(tmp_path)
    with pytest.raises(exception.DiskError, match="backing file"):
        drv.spawn(_instance(), {"id": "img2", "disk_format": "qcow2"}, sneaky, disk_gb=1)


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_spawn_without_image_makes_a_blank_disk(tmp_path, fmt):
    drv = _driver(tmp_path, fmt)
    inst = _instance()
    drv.spawn(inst, {}, ImageSource(), disk_gb=1)
    root = drv.root_disk_path(inst["uuid"])
    assert disk.virtual_size(root, fmt) == GiB
    assert disk.guest_read(root, 0, 16, fmt) == bytes(16)


def test_init_host_sweeps_partials_of_dead_processes(tmp_path):
    drv = _driver(tmp_path)
    stale = os.path.join(drv.image_cache_dir, f".{IMAGE_ID}.{2 ** 22 + 1}.{'a' * 32}.part")
    with open(stale, "wb") as f:
        f.write(b"half an image")
    drv.init_host()
    assert not os.path.exists(stale)


def test_power_state_names():
    assert power_state.name(power_state.SHUTDOWN) == "shutdown"
    assert power_state.name(99) == "unknown(99)"
    assert (power_state.RUNNING, power_state.PAUSED, power_state.SUSPENDED) == (1, 3, 7)
