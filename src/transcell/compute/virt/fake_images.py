"""The fake driver's rebuild and ephemeral disks: real files, as for its root disks.

A rebuild gives the guest a new root disk made from another image, in place:
the guest keeps its definition, its volumes and, when asked, its ephemeral
disk (``disk.eph0`` beside ``disk``: a blank raw file of the flavor's
``ephemeral_gb``, which a rebuild otherwise recreates empty).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from transcell import exception
from transcell.compute.virt import disk
from transcell.compute.virt.driver import FetchImage

GiB = 1024 ** 3
EPHEMERAL = "disk.eph0"


class FakeImageOperations:
    """Mixed into FakeDriver, whose paths, locks and root-disk builder it uses."""

    _instance_dir: Any
    _root_path: Any
    _disk_meta_path: Any
    _lock_for: Any
    _load_guest: Any
    _ensure_root_disk: Any
    _write_guest: Any

    def ephemeral_disk_path(self, uuid: str) -> str | None:
        """Path of the guest's ephemeral disk, or None when it has none."""
        path = os.path.join(self._instance_dir(uuid), EPHEMERAL)
        return path if os.path.exists(path) else None

    def ensure_ephemeral(self, uuid: str, ephemeral_gb: int) -> None:
        """A blank ephemeral disk of ``ephemeral_gb`` GiB, unless one is there already."""
        path = os.path.join(self._instance_dir(uuid), EPHEMERAL)
        if int(ephemeral_gb or 0) > 0 and not os.path.exists(path):
            disk.create_blank(path, int(ephemeral_gb) * GiB, "raw")

    def rebuild_root_disk(self, instance: dict, image_meta: dict, fetch_image: FetchImage,
                          disk_gb: int, preserve_ephemeral: bool = False,
                          power_on: bool = True) -> None:
        uuid = instance["uuid"]
        with self._lock_for(uuid):
            self._load_guest(uuid)  # the guest must be on this host
            for path in (self._root_path(uuid), self._disk_meta_path(uuid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            if not preserve_ephemeral:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._instance_dir(uuid), EPHEMERAL))
            if not image_meta.get("id"):
                raise exception.Invalid(reason="a rebuild needs an image")
            self._ensure_root_disk(uuid, image_meta, fetch_image, disk_gb)
            self.ensure_ephemeral(uuid, instance.get("ephemeral_gb") or 0)
            self._write_guest(uuid, instance, image_meta["id"], power_on)
