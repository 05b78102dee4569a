"""A driver whose guests are simulated but whose disks are real files.

Moving a server between cells is about its bytes: a root disk flattened,
chunked through the image store and rebuilt elsewhere. The fake driver keeps
that data path real (qcow2 overlays on a cached base, or sparse raw copies,
made by qemu-img) while the guest itself is a small JSON file, so tests run
fast and still prove that what arrives is what left.

Layout, all of it on disk so a restarted agent sees the same host::

    image_cache_dir/<image_id>           base images, fetched once each
    instances_dir/<uuid>/disk            the root disk
    instances_dir/<uuid>/disk.json       how the root disk was built (format, image)
    instances_dir/<uuid>/guest.json      the simulated guest: power state, name, size
    instances_dir/<uuid>/volumes.json    its volumes: id -> device path (from the
                                         connection info) and device name; root volume
    instances_dir/<uuid>/events.json     the external events it was told of, newest last
    instances_dir/<uuid>/volume_snapshots.json  assisted snapshots of its volumes

A guest and its disks live apart: destroying the guest with
``destroy_disks=False`` leaves ``disk``, ``disk.json`` and ``volumes.json`` in
place. A volume-backed guest has no ``disk``: its root disk is its boot
volume's file, wherever the volume service keeps it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from transcell import exception, statefiles
from transcell.compute.virt import disk, disk_chain, power_state, qcow2_meta
from transcell.compute.virt.driver import (
    BlockDeviceInfo,
    ComputeDriver,
    FetchImage,
    HostResources,
)
from transcell.compute.virt.fake_guest import FakeGuestOperations
from transcell.compute.virt.fake_images import FakeImageOperations

GiB = 1024 ** 3
DISK_FORMATS = ("qcow2", "raw")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")

F = TypeVar("F", bound=Callable[..., Any])


def _safe_name(value: Any, what: str) -> str:
    """Uuids and image ids become path components; refuse anything that could escape."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise exception.Invalid(reason=f"{what} {value!r} is not a valid identifier")
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json_atomically(path: str, data: dict) -> None:
    """Readers see the old file or the new one, never half of either, even across a crash."""
    statefiles.write_atomic(path, json.dumps(data, sort_keys=True),
                            tmp_path=disk.temp_path_for(path))


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _injectable(func: F) -> F:
    """Let tests make the next call of this method raise (see ``inject_failure``)."""

    @functools.wraps(func)
    def wrapper(self: FakeDriver, *args: Any, **kwargs: Any) -> Any:
        self._raise_injected(func.__name__)
        return func(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class FakeDriver(FakeGuestOperations, FakeImageOperations, ComputeDriver):
    """Simulated guests on real disks; see the module docstring for the layout."""

    hypervisor_type = "fake"
    hypervisor_version = 1000

    @classmethod
    def for_host(cls, host: str) -> FakeDriver:
        """The driver of ``host`` as configured: its disks under STATE/hosts/HOST/."""
        from transcell import conf
        options = conf.CONF.compute
        return cls(host, conf.state_path("hosts", host, "instances"),
                   conf.state_path("hosts", host, "image-cache"),
                   disk_format=options.disk_format, vcpus=options.vcpus,
                   memory_mb=options.memory_mb, disk_gb=options.disk_gb)

    def __init__(self, host: str, instances_dir: str, image_cache_dir: str,
                 disk_format: str = "qcow2", vcpus: int = 16, memory_mb: int = 32768,
                 disk_gb: int = 1000):
        if disk_format not in DISK_FORMATS:
            raise ValueError(f"disk_format must be one of {DISK_FORMATS}, not {disk_format!r}")
        self.host = host
        self.instances_dir = os.path.abspath(instances_dir)
        self.image_cache_dir = os.path.abspath(image_cache_dir)
        self.disk_format = disk_format
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.disk_gb = disk_gb
        self.fail_next: dict[str, BaseException] = {}
        self._guard = threading.Lock()
        self._instance_locks: dict[str, threading.Lock] = {}
        statefiles.private_dir(self.instances_dir)
        statefiles.private_dir(self.image_cache_dir)

    # -- fault injection ----------------------------------------------------

    def inject_failure(self, method: str, exc: BaseException) -> None:
        """Make the next call of ``method`` raise ``exc`` before doing anything."""
        if not callable(getattr(ComputeDriver, method, None)):
            raise ValueError(f"{method!r} is not a driver method")
        with self._guard:
            self.fail_next[method] = exc

    def _raise_injected(self, method: str) -> None:
        with self._guard:
            exc = self.fail_next.pop(method, None)
            if exc is None:
                exc = self._fault_file(method)
        if exc is not None:
            raise exc

    def _fault_file(self, method: str) -> BaseException | None:
        """A fault armed from outside the process: ``<instances_dir>/../faults/<method>``.

        Consumed on use, so a running cloud (``transcell up``) can be made to fail
        one driver call, as failure-injection tests of builds and moves need.
        """
        path = os.path.join(os.path.dirname(self.instances_dir), "faults", method)
        try:
            with open(path) as fh:
                message = fh.read().strip() or f"injected failure in {method}"
            os.unlink(path)
        except FileNotFoundError:
            return None
        return exception.TranscellError(message)

    # -- paths and locks ----------------------------------------------------

    def _instance_dir(self, uuid: str) -> str:
        return os.path.join(self.instances_dir, _safe_name(uuid, "instance uuid"))

    def _guest_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "guest.json")

    def _root_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "disk")

    def _disk_meta_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "disk.json")

    def _volumes_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "volumes.json")

    def _lock_for(self, uuid: str) -> threading.Lock:
        with self._guard:
            return self._instance_locks.setdefault(uuid, threading.Lock())

    @contextlib.contextmanager
    def _image_lock(self, image_id: str) -> Iterator[None]:
        # flock on a fresh open file serialises threads of this process as well
        # as other processes sharing the cache, so each image is fetched once.
        lock_path = os.path.join(self.image_cache_dir, f".{image_id}.lock")
        with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                          statefiles.FILE_MODE), "ab") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # -- host ---------------------------------------------------------------

    @_injectable
    def init_host(self) -> None:
        statefiles.private_dir(self.instances_dir)
        statefiles.private_dir(self.image_cache_dir)
        disk.remove_stale_partials(self.image_cache_dir)
        for entry in os.scandir(self.instances_dir):
            if entry.is_dir() and not entry.name.startswith("."):
                disk.remove_stale_partials(entry.path)

    @_injectable
    def get_available_resource(self) -> HostResources:
        return {
            "vcpus": self.vcpus,
            "memory_mb": self.memory_mb,
            "local_gb": self.disk_gb,
            "hypervisor_type": self.hypervisor_type,
            "hypervisor_version": self.hypervisor_version,
            "hypervisor_hostname": self.host,
        }

    @_injectable
    def list_instances(self) -> list[str]:
        return sorted(
            entry.name for entry in os.scandir(self.instances_dir)
            if entry.is_dir() and _SAFE_NAME.match(entry.name)
            and os.path.exists(os.path.join(entry.path, "guest.json")))

    @_injectable
    def instance_exists(self, uuid: str) -> bool:
        return os.path.exists(self._guest_path(uuid))

    # -- image cache ----------------------------------------------------------

    def _cached_image(self, image_meta: dict, fetch_image: FetchImage) -> tuple[str, str]:
        """Path and format of the base image, fetching it on first use."""
        image_id = _safe_name(image_meta.get("id"), "image id")
        path = os.path.join(self.image_cache_dir, image_id)
        if not os.path.exists(path):
            with self._image_lock(image_id):
                if not os.path.exists(path):
                    self._fetch(image_id, path, fetch_image)
        fmt = image_meta.get("disk_format") or disk.info(path)["format"]
        if fmt not in DISK_FORMATS:
            raise exception.Invalid(
                reason=f"image {image_id} has disk_format {fmt!r}; "
                       f"supported: {', '.join(DISK_FORMATS)}")
        # read as raw, a file names no backing file whatever it holds: nothing to ask
        if fmt != "raw" and disk.info(path, fmt)["backing-filename"]:
            raise exception.DiskError(
                reason=f"image {image_id} depends on a backing file and cannot be used as a base")
        return path, fmt

    @_injectable
    def cache_image(self, image_meta: dict, fetch_image: FetchImage) -> bool:
        """Fetch an image into this host's cache ahead of any server (2.81): True if it
        was fetched now, False if it was there already. It is then the base a later
        spawn or move uses, and is checked exactly as that use checks it."""
        image_id = _safe_name(image_meta.get("id"), "image id")
        present = os.path.exists(os.path.join(self.image_cache_dir, image_id))
        self._cached_image(image_meta, fetch_image)
        return not present

    @staticmethod
    def _fetch(image_id: str, path: str, fetch_image: FetchImage) -> None:
        tmp = disk.temp_path_for(path)
        try:
            fetch_image(image_id, tmp)
            if not os.path.isfile(tmp):
                raise exception.DiskError(reason=f"fetching image {image_id} wrote no file")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, statefiles.FILE_MODE)  # whoever fetched it, the image stays private
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- guests ---------------------------------------------------------------

    @_injectable
    def spawn(self, instance: dict, image_meta: dict, fetch_image: FetchImage,
              disk_gb: int, power_on: bool = True,
              block_device_info: BlockDeviceInfo | None = None) -> None:
        uuid = _safe_name(instance.get("uuid"), "instance uuid")
        info = block_device_info or {"root_volume": None, "volumes": []}
        root = info.get("root_volume")
        with self._lock_for(uuid):
            statefiles.private_dir(self._instance_dir(uuid))
            for entry in info.get("volumes") or []:
                self._record_volume(uuid, entry["connection_info"], entry["device_name"],
                                    root=bool(root) and entry["volume_id"] == root["volume_id"])
            if root is None:
                self._ensure_root_disk(uuid, image_meta or {}, fetch_image, disk_gb)
                self.ensure_ephemeral(uuid, instance.get("ephemeral_gb") or 0)
            self._write_guest(uuid, instance, None if root else (image_meta or {}).get("id"),
                              power_on)

    def _write_guest(self, uuid: str, instance: dict, image_id: str | None,
                     power_on: bool) -> None:
        """Define the guest; a redefined guest keeps its creation time."""
        previous = _read_json(self._guest_path(uuid)) or {}
        guest = {
            "uuid": uuid,
            "host": self.host,
            "display_name": instance.get("display_name"),
            "vcpus": instance.get("vcpus"),
            "memory_mb": instance.get("memory_mb"),
            "image_id": image_id,
            "power_state": power_state.RUNNING if power_on else power_state.SHUTDOWN,
            "created_at": previous.get("created_at") or _now(),
            "updated_at": _now(),
        }
        _write_json_atomically(self._guest_path(uuid), guest)
        if power_on:
            self.console_boot(uuid, guest)

    def _ensure_root_disk(self, uuid: str, image_meta: dict, fetch_image: FetchImage,
                          disk_gb: int) -> None:
        root = self._root_path(uuid)
        image_id = image_meta.get("id")
        if os.path.exists(root):
            self._check_reusable(uuid, image_meta, fetch_image)
            return
        size = int(disk_gb) * GiB
        # Recorded before the disk appears (disk helpers rename into place last),
        # so an existing disk always has its record.
        _write_json_atomically(self._disk_meta_path(uuid),
                               {"format": self.disk_format, "image_id": image_id})
        if image_id is None:
            if size <= 0:
                raise exception.Invalid(reason="a server without an image needs a root disk size")
            disk.create_blank(root, size, self.disk_format)
            return
        base, base_fmt = self._cached_image(image_meta, fetch_image)
        if self.disk_format == "qcow2":
            disk.create_qcow2_overlay(base, root, size, base_fmt)
        else:
            disk.create_raw_copy(base, root, size, base_fmt)

    def _check_reusable(self, uuid: str, image_meta: dict, fetch_image: FetchImage) -> None:
        """A disk left by an earlier spawn or a kept source is reused only if it is ours."""
        record = _read_json(self._disk_meta_path(uuid)) or {}
        image_id = image_meta.get("id")
        if "image_id" in record and record["image_id"] != image_id:
            raise exception.DiskError(
                reason=f"instance {uuid} on host {self.host} already has a root disk built "
                       f"from image {record['image_id']}, not {image_id}")
        if record.get("format", self.disk_format) == "qcow2" and image_id is not None:
            self._cached_image(image_meta, fetch_image)  # the overlay needs its base

    def _load_guest(self, uuid: str) -> dict:
        guest = _read_json(self._guest_path(uuid))
        if guest is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        return guest

    def _set_power_state(self, uuid: str, state: int) -> None:
        with self._lock_for(uuid):
            guest = self._load_guest(uuid)
            if guest.get("power_state") == state:
                return
            guest["power_state"] = state
            guest["updated_at"] = _now()
            _write_json_atomically(self._guest_path(uuid), guest)

    @_injectable
    def power_off(self, uuid: str) -> None:
        self._set_power_state(uuid, power_state.SHUTDOWN)

    @_injectable
    def power_on(self, uuid: str) -> None:
        self._set_power_state(uuid, power_state.RUNNING)

    @_injectable
    def get_power_state(self, uuid: str) -> int:
        return int(self._load_guest(uuid).get("power_state", power_state.NOSTATE))

    @_injectable
    def destroy(self, uuid: str, destroy_disks: bool = True) -> None:
        with self._lock_for(uuid):
            if destroy_disks:
                shutil.rmtree(self._instance_dir(uuid), ignore_errors=True)
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._guest_path(uuid))

    # -- disks ----------------------------------------------------------------

    @_injectable
    def get_disk_paths(self, uuid: str) -> dict[str, str]:
        root = self._root_path(uuid)
        return {"root": root} if os.path.exists(root) else {}

    def _existing_root(self, uuid: str) -> str:
        root = self._root_path(uuid)
        if not os.path.exists(root):
            raise exception.DiskError(
                reason=f"instance {uuid} has no root disk on host {self.host}")
        return root

    @_injectable
    def root_disk_path(self, uuid: str) -> str:
        return self._existing_root(uuid)

    def root_disk_image(self, uuid: str) -> str | None:
        record = _read_json(self._disk_meta_path(uuid)) or {}
        if record.get("format") != "qcow2":
            return None
        return record.get("image_id")

    @_injectable
    def root_disk_format(self, uuid: str) -> str:
        root = self._existing_root(uuid)
        if disk_chain.chained(root):
            return "qcow2"  # the top of a chain a pre-copy froze
        return self._own_format(uuid)

    def _own_format(self, uuid: str) -> str:
        """The root disk's format as built, whatever pre-copy layered over it since."""
        record = _read_json(self._disk_meta_path(uuid)) or {}
        return record.get("format", self.disk_format)

    # -- pre-copy -------------------------------------------------------------

    @_injectable
    def freeze_root_disk(self, uuid: str) -> dict[str, str]:
        """Freeze the running guest's root disk as it is now (``disk_chain.freeze``)."""
        root = self._existing_root(uuid)
        fmt = self.root_disk_format(uuid)
        path, fmt = disk_chain.freeze(root, fmt)
        return {"path": path, "format": fmt}

    @_injectable
    def settle_root_disk(self, uuid: str) -> bool:
        """Fold a pre-copy's frozen layers back into the disk; False if there were none."""
        return disk_chain.collapse(self._existing_root(uuid), self._own_format(uuid))

    @_injectable
    def root_disk_own_extents(self, uuid: str) -> list[dict] | None:
        """Read from the overlay's cluster tables in-process, since ``qemu-img
        map`` would start a process for every measure; qemu-img only when the
        reader does not understand the file.

        The tables are read while the guest may be writing. That is trusted
        only because this is an estimate of whether to pre-copy: a torn read
        misjudges it, no more; what is sent after the stop comes from that
        moment's own ``qemu-img map``.
        """
        root = self._existing_root(uuid)
        if self.root_disk_image(uuid) is None or disk_chain.frozen_layers(root):
            return None  # no image under it, or a pre-copy's layers: cannot tell
        own = qcow2_meta.own_extents(root)
        return own if own is not None else disk.allocation_map(root, "qcow2")

    # -- moves ----------------------------------------------------------------

    @_injectable
    def import_root_disk(self, uuid: str, path: str, disk_gb: int, fmt: str = "raw",
                         base_image_id: str | None = None) -> None:
        uuid = _safe_name(uuid, "instance uuid")
        if fmt not in DISK_FORMATS:
            raise exception.Invalid(reason=f"cannot import a {fmt!r} disk")
        with self._lock_for(uuid):
            statefiles.private_dir(self._instance_dir(uuid))
            root = self._root_path(uuid)
            # The record first, as for a new disk: an existing disk always has one.
            _write_json_atomically(self._disk_meta_path(uuid),
                                   {"format": fmt,
                                    "image_id": base_image_id if fmt == "qcow2" else None})
            os.replace(path, root)
            wanted = int(disk_gb) * GiB
            if wanted > disk.virtual_size(root, fmt):
                disk.resize(root, wanted, fmt)

    def cached_image(self, image_meta: dict, fetch_image: FetchImage) -> str | None:
        path, fmt = self._cached_image(image_meta, fetch_image)
        return path if fmt == "raw" else None

    @_injectable
    def restore_guest(self, instance: dict, power_on: bool) -> None:
        uuid = _safe_name(instance.get("uuid"), "instance uuid")
        with self._lock_for(uuid):
            if self.root_volume(uuid) is None:
                self._existing_root(uuid)
                self.settle_root_disk(uuid)
            record = _read_json(self._disk_meta_path(uuid)) or {}
            self._write_guest(uuid, instance, record.get("image_id"), power_on)

    # -- volumes --------------------------------------------------------------

    def _read_volumes(self, uuid: str) -> dict:
        return _read_json(self._volumes_path(uuid)) or {"root": None, "volumes": {}}

    def _record_volume(self, uuid: str, connection_info: dict, device_name: str,
                       root: bool = False) -> None:
        data = (connection_info or {}).get("data") or {}
        volume_id = _safe_name(data.get("volume_id"), "volume id")
        path = data.get("device_path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise exception.DiskError(
                reason=f"the connection info of volume {volume_id} names no device path")
        if not os.path.exists(path):
            raise exception.DiskError(
                reason=f"volume {volume_id}'s device {path} does not exist on host {self.host}")
        record = self._read_volumes(uuid)
        record["volumes"][volume_id] = {"device_path": path, "device_name": device_name,
                                        "backend": data.get("backend"),
                                        "access_mode": data.get("access_mode", "rw")}
        if root:
            record["root"] = volume_id
        _write_json_atomically(self._volumes_path(uuid), record)

    @_injectable
    def attach_volume(self, uuid: str, connection_info: dict, device_name: str) -> None:
        uuid = _safe_name(uuid, "instance uuid")
        with self._lock_for(uuid):
            self._load_guest(uuid)
            self._record_volume(uuid, connection_info, device_name)

    @_injectable
    def detach_volume(self, uuid: str, volume_id: str) -> None:
        with self._lock_for(uuid):
            record = self._read_volumes(uuid)
            if record["volumes"].pop(volume_id, None) is None:
                return
            if record.get("root") == volume_id:
                record["root"] = None
            _write_json_atomically(self._volumes_path(uuid), record)

    def get_volumes(self, uuid: str) -> dict[str, dict]:
        record = self._read_volumes(uuid)
        return {vid: dict(entry, root=vid == record.get("root"))
                for vid, entry in record["volumes"].items()}

    def root_volume(self, uuid: str) -> str | None:
        return self._read_volumes(uuid).get("root")

    def _device(self, uuid: str, volume_id: str, writing: bool) -> str:
        entry = self._read_volumes(uuid)["volumes"].get(volume_id)
        if entry is None:
            raise exception.NotFound(f"Volume {volume_id} is not attached to guest {uuid} "
                                     f"on host {self.host}.")
        if writing and entry.get("access_mode") == "ro":
            raise exception.Invalid(reason=f"volume {volume_id} is attached read-only")
        return entry["device_path"]

    @_injectable
    def read_volume(self, uuid: str, volume_id: str, offset: int, length: int) -> bytes:
        with open(self._device(uuid, volume_id, writing=False), "rb") as f:
            f.seek(offset)
            return f.read(length)

    @_injectable
    def write_volume(self, uuid: str, volume_id: str, offset: int, data: bytes) -> None:
        """Write in place (never truncating or growing the file), then fsync, as a guest's
        block device would: the bytes are on the volume when this returns."""
        path = self._device(uuid, volume_id, writing=True)
        size = os.path.getsize(path)
        if offset < 0 or offset + len(data) > size:
            raise exception.Invalid(reason=f"a write of {len(data)} bytes at {offset} does "
                                           f"not fit volume {volume_id} ({size} bytes)")
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- what other services report ------------------------------------------

    #: external events kept per guest (the oldest go first)
    EVENTS_KEPT = 100

    @_injectable
    def record_external_event(self, uuid: str, event: dict) -> None:
        uuid = _safe_name(uuid, "instance uuid")
        with self._lock_for(uuid):
            self._load_guest(uuid)
            path = os.path.join(self._instance_dir(uuid), "events.json")
            events = (_read_json(path) or {}).get("events", [])
            events.append({"name": event.get("name"), "status": event.get("status"),
                           "tag": event.get("tag"), "at": _now()})
            _write_json_atomically(path, {"events": events[-self.EVENTS_KEPT:]})

    def external_events(self, uuid: str) -> list[dict]:
        """What ``record_external_event`` kept for the guest, oldest first."""
        path = os.path.join(self._instance_dir(_safe_name(uuid, "instance uuid")),
                            "events.json")
        return (_read_json(path) or {}).get("events", [])

    def _snapshots_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "volume_snapshots.json")

    @_injectable
    def volume_snapshot_create(self, uuid: str, volume_id: str, create_info: dict) -> None:
        """Record the snapshot: which volume, its file and size now, and the overlay
        file the volume service named. A hypervisor would start writing the guest's
        changes into ``new_file`` from here; the fake guest writes nothing on its own,
        so the record is all the fake driver needs."""
        uuid = _safe_name(uuid, "instance uuid")
        with self._lock_for(uuid):
            self._load_guest(uuid)
            path = self._device(uuid, volume_id, writing=False)
            record = _read_json(self._snapshots_path(uuid)) or {"snapshots": {}}
            snapshot_id = str(create_info.get("snapshot_id"))
            record["snapshots"][snapshot_id] = {
                "volume_id": volume_id, "device_path": path, "size": os.path.getsize(path),
                "type": create_info.get("type"), "new_file": create_info.get("new_file"),
                "id": create_info.get("id"), "created_at": _now()}
            _write_json_atomically(self._snapshots_path(uuid), record)

    @_injectable
    def volume_snapshot_delete(self, uuid: str, volume_id: str, snapshot_id: str,
                               delete_info: dict) -> None:
        """Forget the snapshot (by its snapshot id, or the id it was created with);
        one it never made is nothing to delete."""
        uuid = _safe_name(uuid, "instance uuid")
        with self._lock_for(uuid):
            record = _read_json(self._snapshots_path(uuid)) or {"snapshots": {}}
            snapshots = record["snapshots"]
            for key, entry in list(snapshots.items()):
                if entry["volume_id"] == volume_id and snapshot_id in (key, entry.get("id")):
                    del snapshots[key]
            _write_json_atomically(self._snapshots_path(uuid), record)

    def volume_snapshots(self, uuid: str) -> dict[str, dict]:
        """The snapshots ``volume_snapshot_create`` recorded, by snapshot id."""
        record = _read_json(self._snapshots_path(_safe_name(uuid, "instance uuid")))
        return (record or {"snapshots": {}})["snapshots"]
