"""The compute API's side of createImage, createBackup and rebuild.

Each request is checked here (state, lock, image, flavor), recorded (the
image record queued in the global store, the server's task state taken by one
conditional update, the instance action), and only then cast to the server's
own compute host, which does the disk work in the server's cell. So what a
202 promises is on record before it leaves, and a request refused here
changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from transcell import cell as cells
from transcell import exception
from transcell import mapping as mappings
from transcell.compute import actions
from transcell.compute import bdm as bdms
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.image_ops import BACKUP_ORDER_KEY, PRESERVE_KEY
from transcell.compute.power_api import check_not_locked
from transcell.compute.rpcapi import ComputeAPI
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.image.service import CORE, RESERVED, RESERVED_PREFIX, extra_properties
from transcell.registry import services

LOG = logging.getLogger(__name__)

CREATE_IMAGE = "createImage"
CREATE_BACKUP = "createBackup"
REBUILD = "rebuild"

#: The states Nova snapshots (and backs up) a server in.
SNAPSHOT_VM_STATES = (vm.ACTIVE, vm.STOPPED, "paused", "suspended")
#: The states Nova rebuilds a server in.
REBUILD_VM_STATES = (vm.ACTIVE, vm.STOPPED, vm.ERROR)

#: Base-image properties a snapshot does not inherit: they describe the base or its
#: server, not the new image (Nova's non-inheritable list, and the ones set here).
NOT_INHERITED = frozenset({"image_type", "instance_uuid", "base_image_ref", "backup_type",
                           "user_id", "block_device_mapping", "bdm_v2", "root_device_name",
                           "cache_in_nova", "bittorrent", "img_signature",
                           "img_signature_hash_method", "img_signature_certificate_uuid",
                           "img_signature_key_type", "transcell_migration"})

#: ``check(ctx, server, image)`` callables run before a rebuild is accepted; one that
#: raises refuses it (server groups add theirs: a rebuild stays on its host, but a
#: policy may still refuse the new image or flavor).
REBUILD_CHECKS: list[Callable[[RequestContext, dict, dict], None]] = []


def _compute() -> ComputeAPI:
    return ComputeAPI()


def _server(ctx: RequestContext, server_id: str) -> tuple[cells.Cell, dict]:
    """The server through its instance mapping (404 for another project's)."""
    from transcell.compute.api import API
    return API().get(ctx, server_id)


def _require(server: dict, action: str, vm_states: tuple[str, ...], ctx: RequestContext
             ) -> None:
    check_not_locked(ctx, server)
    if server["vm_state"] not in vm_states or server["task_state"] is not None:
        attr, state = (("task_state", server["task_state"]) if server["task_state"]
                       else ("vm_state", server["vm_state"]))
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr=attr, state=state)


def is_volume_backed(cell: cells.Cell, server: dict) -> bool:
    return not server.get("image_ref") and bdms.is_volume_backed(
        bdms.list_for(cell, server["uuid"]))


def check_metadata_keys(metadata: dict[str, str]) -> None:
    """User metadata becomes image properties: a key naming an image attribute would
    overwrite it, so it is refused (400) before anything is made."""
    for key in metadata:
        if key in CORE or key in RESERVED or key.startswith(RESERVED_PREFIX):
            raise exception.Invalid(f"Image metadata key {key!r} names an image attribute "
                                    "and cannot be set as a property.")


def snapshot_properties(ctx: RequestContext, server: dict, image_type: str,
                        metadata: dict[str, str] | None = None,
                        extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The image record's fields of a server snapshot, as Nova sets them.

    Inherited from the base image: its extra properties (but not those that
    describe the base itself) and ``min_ram``; ``min_disk`` is at least the
    flavor's root disk, so the image boots only where its disk fits. Then
    ``image_type``, ``instance_uuid``, ``base_image_ref``, ``user_id`` and
    the caller's metadata, which wins over everything inherited.
    """
    base: dict[str, Any] = {}
    if server.get("image_ref"):
        with contextlib.suppress(exception.NotFound):
            base = services.image.get(RequestContext.admin(), server["image_ref"])
    properties = {k: v for k, v in extra_properties(base).items()
                  if k not in NOT_INHERITED and isinstance(v, str)}
    properties.update(image_type=image_type, instance_uuid=server["uuid"],
                      base_image_ref=server.get("image_ref") or "", user_id=ctx.user_id)
    properties.update(extra or {})
    properties.update(metadata or {})
    root_gb = int((server.get("flavor") or {}).get("root_gb") or 0)
    return {**properties, "min_ram": int(base.get("min_ram") or 0),
            "min_disk": max(int(base.get("min_disk") or 0), root_gb),
            "disk_format": "raw", "container_format": "bare", "visibility": "private"}


def create_snapshot_image(ctx: RequestContext, server: dict, name: str, image_type: str,
                          metadata: dict[str, str] | None = None,
                          extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The queued image a host will upload the server's disk into (owner: the caller's
    project, as Nova's)."""
    return services.image.create(ctx, name=name, **snapshot_properties(
        ctx, server, image_type, metadata, extra))


# createImage / createBackup -----------------------------------------------------------

def snapshot(ctx: RequestContext, server_id: str, name: str,
             metadata: dict[str, str] | None = None, image_type: str = "snapshot",
             backup_type: str | None = None, rotation: int | None = None,
             allow_volume_backed: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Accept a snapshot or backup of the server; the image record (queued) is returned.

    ``allow_volume_backed(server)`` is called for a volume-backed server (to
    check the policy that allows imaging one) before anything is made.
    """
    action = CREATE_BACKUP if image_type == "backup" else CREATE_IMAGE
    cell, server = _server(ctx, server_id)
    _require(server, action, SNAPSHOT_VM_STATES, ctx)
    check_metadata_keys(metadata or {})
    if is_volume_backed(cell, server):
        if image_type == "backup":
            raise exception.Invalid("Backup is not supported for volume-backed instances.")
        if allow_volume_backed is not None:
            allow_volume_backed(server)
        return _snapshot_volume_backed(ctx, cell, server, name, metadata or {})
    extra: dict[str, str] = {}
    if image_type == "backup":
        # image times have whole seconds; rotation needs the order of backups made faster
        extra = {"backup_type": backup_type or "", BACKUP_ORDER_KEY: f"{time.time():.6f}"}
    image = create_snapshot_image(ctx, server, name, image_type, metadata, extra)
    first = vm.IMAGE_BACKUP if image_type == "backup" else vm.IMAGE_SNAPSHOT
    try:
        inst.update(cell, server_id, expected_task_state=None,
                    expected_vm_state=SNAPSHOT_VM_STATES, task_state=first)
    except Exception:
        _forget_image(ctx, image["id"])
        raise
    try:
        actions.record_action(ctx, cell, server_id, action)
        _compute().snapshot_instance(ctx, server["host"], server_id, image["id"],
                                     image_type=image_type, backup_type=backup_type,
                                     rotation=rotation)
    except Exception:
        with contextlib.suppress(exception.NotFound, exception.Conflict):
            inst.update(cell, server_id, expected_task_state=first, task_state=None)
        _forget_image(ctx, image["id"])
        raise
    return image


def _forget_image(ctx: RequestContext, image_id: str) -> None:
    with contextlib.suppress(exception.NotFound, exception.Conflict, exception.Forbidden):
        services.image.delete(ctx, image_id)


def _snapshot_volume_backed(ctx: RequestContext, cell: cells.Cell, server: dict, name: str,
                            metadata: dict[str, str]) -> dict[str, Any]:
    """An image with no data whose ``block_device_mapping`` names a snapshot of each volume.

    As Nova: every volume of the server is snapshotted (forced, since it is
    in use) and the image's mappings say to make a volume of each snapshot,
    on the same device with the same size and boot index; booting the image
    then builds new volumes from the snapshots, never touching the server's.
    A failure deletes the snapshots already taken.
    """
    mappings = [m for m in bdms.volumes_of(cell, server["uuid"]) if m["volume_id"]]
    actions.record_action(ctx, cell, server["uuid"], CREATE_IMAGE)
    taken: list[str] = []
    image_bdms = []
    try:
        for mapping in mappings:
            snap = services.volume.create_snapshot(ctx, mapping["volume_id"],
                                                   name=f"snapshot for {name}", force=True)
            taken.append(snap["id"])
            image_bdms.append(image_mapping(mapping, snap))
        root = next((m["device_name"] for m in mappings if m["boot_index"] in (0, "0")), None)
        extra = {"bdm_v2": "True", "block_device_mapping": json.dumps(image_bdms),
                 "root_device_name": root or "/dev/vda"}
        image = create_snapshot_image(ctx, server, name, "snapshot", metadata, extra)
        try:
            image = _finish_empty(ctx, image["id"])
        except Exception:
            _forget_image(ctx, image["id"])
            raise
    except Exception:
        for snapshot_id in taken:
            with contextlib.suppress(Exception):
                services.volume.delete_snapshot(ctx, snapshot_id)
        raise
    return image


def image_mapping(mapping: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """A server's volume mapping as an image keeps it: made from ``snap`` at boot."""
    return {"source_type": "snapshot", "destination_type": "volume",
            "snapshot_id": snap["id"], "volume_id": None, "image_id": None,
            "boot_index": mapping["boot_index"], "device_name": mapping["device_name"],
            "volume_size": snap["size"],
            "delete_on_termination": bool(mapping.get("delete_on_termination")),
            "disk_bus": mapping.get("disk_bus"), "device_type": mapping.get("device_type"),
            "volume_type": mapping.get("volume_type"), "guest_format": None,
            "no_device": None, "tag": None}


def _finish_empty(ctx: RequestContext, image_id: str) -> dict[str, Any]:
    """An image of no bytes is active at once (its data lives in its volume copies)."""
    services.image.upload_chunks(ctx, image_id, iter(()), 0)
    return services.image.get(ctx, image_id)


# rebuild --------------------------------------------------------------------------------

def rebuild(ctx: RequestContext, server_id: str, image_ref: str, *,
            name: str | None = None, metadata: dict[str, str] | None = None,
            preserve_ephemeral: bool = False, access_ip_v4: Any = None,
            access_ip_v6: Any = None, key_pair: Any = None, user_data: Any = None,
            description: Any = None, disk_config: str | None = None,
            hostname: str | None = None, given: frozenset[str] = frozenset()) -> dict:
    """Check, record and cast a rebuild onto the server's own host; the server row after.

    ``given`` names the optional fields the request carried (so a field given
    as null is cleared and one not given is left alone). Nova's refusals: an
    image that cannot be found or is not active, or whose ``min_disk`` or
    ``min_ram`` the flavor does not meet, is 400; a server in a state that
    cannot be rebuilt is 409. All of them before anything changes.
    """
    cell, server = _server(ctx, server_id)
    _require(server, REBUILD, REBUILD_VM_STATES, ctx)
    image = _rebuild_image(ctx, image_ref)
    if is_volume_backed(cell, server):
        raise exception.Invalid("Rebuilding a volume-backed server with a new image is not "
                                "supported.")
    _check_fits(server, image)
    for check in REBUILD_CHECKS:
        check(ctx, server, image)
    values: dict[str, Any] = {"image_ref": image["id"]}
    if name is not None:
        values["display_name"] = name
    if "accessIPv4" in given:
        values["access_ip_v4"] = access_ip_v4
    if "accessIPv6" in given:
        values["access_ip_v6"] = access_ip_v6
    if "description" in given:
        values["display_description"] = description
    if "OS-DCF:diskConfig" in given:
        values["auto_disk_config"] = disk_config == "AUTO"
    if "hostname" in given:
        values["hostname"] = hostname
    if "key_name" in given:
        values["key_name"] = key_pair["name"] if key_pair else None
        values["key_data"] = key_pair["public_key"] if key_pair else None
    server = inst.update(cell, server_id, expected_task_state=None,
                         expected_vm_state=REBUILD_VM_STATES, task_state=vm.REBUILDING,
                         progress=0, **values)
    try:
        if metadata is not None:
            replace_metadata(cell, server_id, metadata)
        if "user_data" in given:
            inst.set_system_metadata(cell, server_id, "user_data", user_data)
        inst.set_system_metadata(cell, server_id, PRESERVE_KEY, str(bool(preserve_ephemeral)))
        mappings.set_spec_image(server_id, image)
        actions.record_action(ctx, cell, server_id, REBUILD)
        _compute().rebuild_instance(ctx, server["host"], server_id, image["id"],
                                    preserve_ephemeral=preserve_ephemeral)
    except Exception:
        with contextlib.suppress(exception.NotFound, exception.Conflict):
            inst.update(cell, server_id, expected_task_state=vm.REBUILDING, task_state=None)
        raise
    return inst.get(cell, server_id)


def _rebuild_image(ctx: RequestContext, image_ref: str) -> dict[str, Any]:
    image_id = str(image_ref).rstrip("/").rsplit("/", 1)[-1]
    try:
        image = services.image.get(ctx, image_id)
    except (exception.NotFound, exception.Invalid):
        raise exception.Invalid(f"Cannot find requested image {image_ref}.") from None
    if image.get("status") != "active":
        raise exception.Invalid(f"Image {image_id} is not active.")
    if image.get("block_device_mapping") or not image.get("size"):
        raise exception.Invalid(f"Image {image_id} has no data of its own (an image of a "
                                "volume-backed server) and cannot rebuild a local disk.")
    return image


def _check_fits(server: dict, image: dict) -> None:
    """The flavor must meet the image's minimums, and hold the image itself."""
    flavor = server.get("flavor") or {}
    root_gb = int(flavor.get("root_gb") or 0)
    if int(image.get("min_ram") or 0) > int(flavor.get("memory_mb") or 0):
        raise exception.Invalid("Flavor's memory is too small for requested image.")
    if root_gb:
        if int(image.get("min_disk") or 0) > root_gb:
            raise exception.Invalid("Flavor's disk is too small for requested image. Flavor "
                                    f"disk is {root_gb} GiB, minimum disk required by the "
                                    f"image is {image['min_disk']} GiB.")
        size = int(image.get("virtual_size") or image.get("size") or 0)
        if size > root_gb * 1024 ** 3:
            raise exception.Invalid("Flavor's disk is too small for requested image. Flavor "
                                    f"disk is {root_gb * 1024 ** 3} bytes, image is "
                                    f"{size} bytes.")


def replace_metadata(cell: cells.Cell, server_id: str, metadata: dict[str, str]) -> None:
    """A rebuild's metadata replaces the server's: the old items are soft-deleted."""
    with cell_session(cell) as s:
        s.execute(update(cm.InstanceMetadata).where(
            cm.InstanceMetadata.instance_uuid == server_id,
            cm.InstanceMetadata.deleted == 0).values(deleted=cm.InstanceMetadata.id,
                                                     deleted_at=utcnow())
            .execution_options(synchronize_session=False))
        for key, value in metadata.items():
            s.add(cm.InstanceMetadata(instance_uuid=server_id, key=key, value=value))
