"""The compute API's side of volumes: attach, detach, update, and boot mappings.

Attaching follows Nova's new-style flow. Here, before the answer, the volume
is reserved on the volume service (an attachment without a connector) and a
mapping with a device name is written in the server's cell; the server's
host then connects it (``volume_ops``). The volume service decides races for
one volume (a second server's reserve is a 400); the unique device name
index decides races for one device name. Whatever fails before the host
takes over is undone here, so no reserved attachment outlives a failed
request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from transcell import cell as cells
from transcell import exception
from transcell.compute import actions
from transcell.compute import bdm as bdms
from transcell.compute import vm_states as vm
from transcell.compute.power_api import check_not_locked
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)

ATTACH_VOLUME = "attach_volume"
DETACH_VOLUME = "detach_volume"

#: vm_states a volume may be attached in or detached from (with no task running).
ATTACHABLE_STATES = (vm.ACTIVE, vm.STOPPED, vm.RESIZED, "paused", "suspended", "shelved",
                     "shelved_offloaded")
#: No host to connect to: the volume is attached (in-use, not connected) now and
#: connected by the unshelve.
OFFLOADED = "shelved_offloaded"

#: Nova's device path format: /dev/ then an optional x, a letter, an optional d, letters
#: and digits (vdb, sdc, xvdd1).
DEVICE_PATH = re.compile(r"^(/dev/x?[a-z]?d?)([a-z]+)[0-9]*$")


class InvalidVolume(exception.Invalid):
    msg_fmt = "Invalid volume: %(reason)s"


class InvalidBDM(exception.Invalid):
    msg_fmt = "Block Device Mapping is Invalid: %(reason)s"


def _check_server(server: dict, ctx: RequestContext, action: str) -> None:
    check_not_locked(ctx, server)
    if server["vm_state"] not in ATTACHABLE_STATES or server["task_state"] is not None:
        attr, state = (("task_state", server["task_state"]) if server["task_state"]
                       else ("vm_state", server["vm_state"]))
        raise exception.InstanceInvalidState(action=action, instance_uuid=server["uuid"],
                                             attr=attr, state=state)


def backend_cells(volume_id: str) -> list[str] | None:
    """Names of the cells the volume's backend reaches; None when the service cannot say."""
    try:
        info = services.volume.backend_info(RequestContext.admin(), volume_id)
    except exception.NotFound:
        raise
    except Exception:
        LOG.exception("Could not read the backend of volume %s", volume_id)
        return None
    return list(info.get("cells") or [])


def _check_reach(volume_id: str, cell: cells.Cell) -> None:
    reach = backend_cells(volume_id)
    if reach is not None and "*" not in reach and cell.name not in reach:
        raise InvalidVolume(reason=f"volume {volume_id} is on a backend that cell {cell.name} "
                                   f"(where the server runs) cannot reach; it reaches "
                                   f"{', '.join(reach) or 'no cell'}.")


def _get_volume(ctx: RequestContext, volume_id: str) -> dict:
    """The volume, or 404 as Nova answers for an unknown volume in the URL or body."""
    try:
        return services.volume.get(ctx, volume_id)
    except exception.NotFound:
        raise exception.NotFound(f"Volume {volume_id} could not be found.") from None


def attach(ctx: RequestContext, cell: cells.Cell, server: dict, volume_id: str, *,
           device: str | None = None, tag: str | None = None,
           delete_on_termination: bool = False) -> dict[str, Any]:
    """Reserve the volume for the server and have its host connect it; the new mapping.

    The checks come first and change nothing: the server's state (409), the
    device path (400, or 409 when taken), the volume (404), already on this
    server or not available (400), its backend out of the server's cell's
    reach (400).
    """
    from transcell.compute.rpcapi import ComputeAPI
    uuid = server["uuid"]
    _check_server(server, ctx, ATTACH_VOLUME)
    if device is not None and not DEVICE_PATH.match(device):
        raise exception.Invalid(f"The supplied device path ({device}) is invalid.")
    volume = _get_volume(ctx, volume_id)
    if any(b["volume_id"] == volume_id for b in bdms.list_for(cell, uuid)):
        raise InvalidVolume(reason=f"volume {volume_id} is already attached to server "
                                   f"{uuid}.")
    if volume.get("status") != "available" and not (
            volume.get("multiattach") and volume.get("status") == "in-use"):
        raise InvalidVolume(reason=f"volume {volume_id} status must be 'available', not "
                                   f"'{volume.get('status')}'.")
    _check_reach(volume_id, cell)
    mapping = bdms.reserve_volume(cell, uuid, volume_id, device=device, tag=tag,
                                  delete_on_termination=delete_on_termination,
                                  volume_size=volume.get("size"))
    attachment_id = None
    try:
        attachment_id = services.volume.attachment_create(ctx, volume_id, uuid)["id"]
        if bdms.earliest_for_volume(cell, uuid, volume_id) != mapping["uuid"]:
            # the same volume attached to this server twice at once: the older one stands
            raise InvalidVolume(reason=f"volume {volume_id} is already attached to server "
                                       f"{uuid}.")
        if not bdms.set_fields(cell, mapping["uuid"], expected={"attachment_id": None},
                               attachment_id=attachment_id):
            raise exception.Conflict(f"The attachment of volume {volume_id} changed "
                                     "while it was being made.")
        mapping["attachment_id"] = attachment_id
        actions.record_action(ctx, cell, uuid, ATTACH_VOLUME)
        if server["vm_state"] == OFFLOADED:
            # no host to connect from: the attachment is completed without a connector, as
            # Nova does, so the volume is in-use; the unshelve connects it on its new host
            services.volume.attachment_complete(ctx, attachment_id)
        else:
            ComputeAPI().attach_volume(ctx, server["host"], uuid, mapping["uuid"])
    except BaseException:
        _undo_reserve(ctx, cell, mapping["uuid"], attachment_id)
        raise
    return mapping


def _undo_reserve(ctx: RequestContext, cell: cells.Cell, bdm_uuid: str,
                  attachment_id: str | None) -> None:
    if attachment_id is not None:
        try:
            services.volume.attachment_delete(ctx, attachment_id)
        except exception.NotFound:
            pass
        except Exception:
            LOG.exception("Could not release attachment %s", attachment_id)
    bdms.destroy(cell, bdm_uuid)


def detach(ctx: RequestContext, cell: cells.Cell, server: dict, volume_id: str) -> None:
    """Have the server's host disconnect the volume and drop the attachment (Nova's 202)."""
    from transcell.compute.rpcapi import ComputeAPI
    uuid = server["uuid"]
    _check_server(server, ctx, DETACH_VOLUME)
    volume = _get_volume(ctx, volume_id)
    mapping = bdms.get_by_volume(cell, uuid, volume_id)
    if mapping["boot_index"] == 0:
        raise exception.Invalid("Cannot detach a root device volume")
    if server["vm_state"] == OFFLOADED:  # connected nowhere: only the reservation goes
        actions.record_action(ctx, cell, uuid, DETACH_VOLUME)
        cleanup_volumes(ctx, [mapping | {"delete_on_termination": False}])
        bdms.destroy(cell, mapping["uuid"])
        return
    if mapping["connection_info"] is None or volume.get("status") not in ("in-use",):
        raise InvalidVolume(reason=f"volume {volume_id} is not attached yet (its status is "
                                   f"'{volume.get('status')}'); detach it once it is in-use.")
    actions.record_action(ctx, cell, uuid, DETACH_VOLUME)
    ComputeAPI().detach_volume(ctx, server["host"], uuid, mapping["uuid"])


def update(ctx: RequestContext, cell: cells.Cell, server: dict, volume_id: str,
           changes: dict[str, Any]) -> None:
    """2.85: change what may change of an attachment (delete_on_termination) in place.

    Nova refuses any other field that differs from the mapping with a 400,
    since nothing else of an attachment is mutable.
    """
    mapping = bdms.get_by_volume(cell, server["uuid"], volume_id)
    for key, column in (("id", "volume_id"), ("serverId", "instance_uuid"),
                        ("device", "device_name"), ("tag", "tag")):
        if key in changes and changes[key] != mapping[column]:
            raise exception.Invalid(f"The {key} property is not mutable")
    if "delete_on_termination" in changes:
        if not bdms.set_fields(cell, mapping["uuid"], expected={"volume_id": volume_id},
                               delete_on_termination=bool(changes["delete_on_termination"])):
            raise bdms.VolumeBDMNotFound(instance_uuid=server["uuid"], volume_id=volume_id)


def swap(ctx: RequestContext, server: dict, old_volume_id: str, new_volume_id: str) -> None:
    """The swap Cinder asks for while it migrates a volume between backends.

    transcell's volume service migrates a volume's data under the same id and
    never asks for a swap, so one only comes from a person: refused as Nova
    refuses it for a volume that is not migrating (409), after the same 404
    and 400 checks on the two volumes.
    """
    old = _get_volume(ctx, old_volume_id)
    try:
        services.volume.get(ctx, new_volume_id)
    except exception.NotFound:
        raise exception.Invalid(f"Volume {new_volume_id} could not be found.") from None
    if not old.get("migration_status"):
        raise exception.Conflict(f"volume {old_volume_id} is not migrating; this API should "
                                 "only be called by Cinder")
    raise exception.Conflict(f"volume {old_volume_id} is migrating between backends under "
                             "its own id; its server keeps it attached, there is nothing to "
                             "swap.")


# boot from volume ---------------------------------------------------------------

def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidBDM(reason=f"{what} must be an integer, not {value!r}.") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "t", "true", "on", "y", "yes"):
        return True
    if text in ("0", "f", "false", "off", "n", "no"):
        return False
    raise InvalidBDM(reason=f"delete_on_termination must be a boolean, not {value!r}.")


def normalize(raw: list[dict]) -> list[dict[str, Any]]:
    """block_device_mapping_v2 entries as mapping rows, each checked on its own (400s)."""
    result = []
    for entry in raw:
        source = entry.get("source_type")
        dest = entry.get("destination_type") or ("local" if source == "image" else "volume")
        boot = _int_or_none(entry.get("boot_index"), "boot_index")
        if boot is not None and boot < 0:
            boot = None
        size = _int_or_none(entry.get("volume_size"), "volume_size")
        uuid = entry.get("uuid")
        if source == "blank" and uuid:
            raise InvalidBDM(reason="Invalid device UUID: a blank volume has none.")
        if source in ("image", "volume", "snapshot") and not uuid:
            raise InvalidBDM(reason=f"a mapping of source_type {source} needs a uuid.")
        if dest == "local" and source != "image":
            raise InvalidBDM(reason="ephemeral and swap disks (destination_type local without "
                                    "an image) are not supported.")
        if dest == "local" and boot != 0:
            raise InvalidBDM(reason="an image with destination_type local can only be the "
                                    "boot disk (boot_index 0).")
        if source in ("volume", "snapshot") and dest != "volume":
            raise InvalidBDM(reason=f"a {source} can only be mapped with destination_type "
                                    "volume.")
        if source in ("image", "blank") and dest == "volume" and not size:
            raise InvalidBDM(reason="Images with destination_type 'volume' need to have a "
                                    "non-zero size specified" if source == "image" else
                             "a blank volume needs a non-zero volume_size.")
        if size is not None and size < 0:
            raise InvalidBDM(reason="volume_size must not be negative.")
        result.append({
            "source_type": source, "destination_type": dest, "boot_index": boot,
            "image_id": uuid if source == "image" else None,
            "volume_id": uuid if source == "volume" else None,
            "snapshot_id": uuid if source == "snapshot" else None,
            "volume_size": size, "volume_type": entry.get("volume_type"),
            "delete_on_termination": _bool(entry.get("delete_on_termination",
                                                      dest == "local")),
            "device_name": entry.get("device_name") or None, "tag": entry.get("tag"),
            "disk_bus": entry.get("disk_bus"), "device_type": entry.get("device_type"),
            "guest_format": entry.get("guest_format")})
    boots = sorted(b["boot_index"] for b in result if b["boot_index"] is not None)
    if boots != list(range(len(boots))):
        raise InvalidBDM(reason="Boot sequence for the instance and image/block device "
                                "mapping combination is not valid.")
    names = [b["device_name"] for b in result if b["device_name"]]
    if len(names) != len(set(names)):
        raise InvalidBDM(reason="a device name is used twice.")
    for name in names:
        if not DEVICE_PATH.match(name):
            raise InvalidBDM(reason=f"device name {name} is invalid.")
    return result


def boot_disk(mappings: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((b for b in mappings if b["boot_index"] == 0), None)


def type_cells(volume_type: str | None) -> list[str]:
    """Names of the cells a new volume of ``volume_type`` (or the default type) would be
    reachable from: its backend's, as the volume service's configuration says."""
    from transcell.volume import backends as vb
    try:
        vtype = vb.find_type(volume_type) if volume_type else vb.default_type()
    except exception.NotFound:
        raise exception.Invalid(f"Volume type {volume_type} could not be found.") from None
    known = [c.name for c in cells.list_cells(include_cell0=False)]
    return list(vb.backend(vtype.backend).cell_names(known))


def check_volumes(ctx: RequestContext, mappings: list[dict[str, Any]],
                  image_lookup) -> set[str] | None:
    """Each existing volume must be there and available, each image usable and small
    enough for its volume, each volume type known; the cells that reach every volume the
    server will have, existing or made at build (None: every cell)."""
    reach: set[str] | None = None
    every = {c.name for c in cells.list_cells(include_cell0=False)}

    def narrow(reached: list[str] | None) -> None:
        nonlocal reach
        if reached is None or "*" in reached or every <= set(reached):
            return
        reach = set(reached) if reach is None else reach & set(reached)

    for mapping in mappings:
        if mapping["destination_type"] == "volume" and \
                mapping["source_type"] not in ("volume", "snapshot"):
            narrow(type_cells(mapping["volume_type"]))
        if mapping["source_type"] == "snapshot":
            narrow(type_cells(_check_snapshot(ctx, mapping)))
        elif mapping["source_type"] == "volume":
            try:
                volume = services.volume.get(ctx, mapping["volume_id"])
            except exception.NotFound:
                raise InvalidBDM(reason=f"failed to get volume {mapping['volume_id']}.") \
                    from None
            if volume.get("status") != "available":
                raise InvalidBDM(reason=f"volume {mapping['volume_id']} status must be "
                                        f"'available', not '{volume.get('status')}'.")
            if mapping["boot_index"] == 0 and str(volume.get("bootable")).lower() != "true":
                # as Nova: a server boots only from a volume marked bootable
                raise InvalidBDM(reason=f"volume {mapping['volume_id']} is not bootable; "
                                        "set its bootable flag to boot from it.")
            mapping["volume_size"] = volume.get("size")
            narrow(backend_cells(mapping["volume_id"]))
        elif mapping["source_type"] == "image" and mapping["destination_type"] == "volume":
            image = image_lookup(mapping["image_id"])
            gib = 1024 ** 3
            need = max(int(image.get("min_disk") or 0),
                       -(-int(image.get("size") or 0) // gib))
            if mapping["volume_size"] < need:
                raise InvalidBDM(reason=f"volume size {mapping['volume_size']} GB is smaller "
                                        f"than image {mapping['image_id']} needs ({need} GB).")
    if reach is not None and not reach:
        raise InvalidBDM(reason="the requested volumes sit on backends that no single cell "
                                "reaches together.")
    return reach


def _check_snapshot(ctx: RequestContext, mapping: dict[str, Any]) -> str | None:
    """A snapshot to make a volume of must be there and available; the volume is at
    least the snapshot's size (its size when none is given, as Nova). Returns the
    volume type the new volume gets: the one asked for, else its source volume's."""
    snapshot_id = mapping["snapshot_id"]
    try:
        snap = services.volume.get_snapshot(ctx, snapshot_id)
    except exception.NotFound:
        raise InvalidBDM(reason=f"failed to get snapshot {snapshot_id}.") from None
    if snap.get("status") != "available":
        raise InvalidBDM(reason=f"snapshot {snapshot_id} status must be 'available', not "
                                f"'{snap.get('status')}'.")
    mapping["volume_size"] = mapping["volume_size"] or snap["size"]
    if mapping["volume_size"] < snap["size"]:
        raise InvalidBDM(reason=f"volume size {mapping['volume_size']} GB is smaller than "
                                f"snapshot {snapshot_id} ({snap['size']} GB).")
    if mapping["volume_type"]:
        return mapping["volume_type"]
    try:
        return services.volume.get(ctx, snap["volume_id"]).get("volume_type")
    except exception.NotFound:
        return None


def image_mappings(image: dict[str, Any]) -> list[dict[str, Any]]:
    """The mappings an image made by createImage of a volume-backed server carries
    (``block_device_mapping`` with ``bdm_v2``), checked as a request's are."""
    raw = image.get("block_device_mapping")
    if not raw or str(image.get("bdm_v2", "")).lower() not in ("true", "1"):
        return []
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise InvalidBDM(reason=f"image {image.get('id')} has a block_device_mapping that "
                                "is not JSON.") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidBDM(reason=f"image {image.get('id')} has a malformed "
                                "block_device_mapping.")
    converted = []
    for entry in entries:
        if entry.get("no_device"):
            continue
        source = entry.get("source_type")
        uuid = entry.get(f"{source}_id") if source in ("image", "volume", "snapshot") \
            else None
        converted.append({key: entry.get(key) for key in (
            "source_type", "destination_type", "boot_index", "volume_size", "volume_type",
            "delete_on_termination", "device_name", "disk_bus", "device_type",
            "guest_format") if entry.get(key) is not None} | ({"uuid": uuid} if uuid else {}))
    return normalize(converted)


def merge_image_mappings(image_defined: list[dict[str, Any]],
                         requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's merge: the request's mappings win over the image's on the same device;
    when the image brings a boot disk, the request's image boot disk is dropped."""
    if any(m["boot_index"] == 0 for m in image_defined):
        requested = [m for m in requested
                     if not (m["boot_index"] == 0 and m["source_type"] == "image")]
    taken = {m["device_name"] for m in requested if m["device_name"]}
    merged = requested + [m for m in image_defined if m["device_name"] not in taken]
    boots = sorted(m["boot_index"] for m in merged if m["boot_index"] is not None)
    if boots != list(range(len(boots))):
        raise InvalidBDM(reason="Boot sequence for the instance and image/block device "
                                "mapping combination is not valid.")
    return merged


def reserve_existing(ctx: RequestContext, instance_uuid: str,
                     mappings: list[dict[str, Any]]) -> None:
    """Reserve every existing volume for the new server (a 400 if one is taken meanwhile);
    all or none: a failure releases the ones reserved before it."""
    try:
        for mapping in mappings:
            if mapping["source_type"] == "volume":
                mapping["attachment_id"] = services.volume.attachment_create(
                    ctx, mapping["volume_id"], instance_uuid)["id"]
    except BaseException:
        release_reserved(ctx, mappings)
        raise


def release_reserved(ctx: RequestContext, mappings: list[dict[str, Any]]) -> None:
    for mapping in mappings:
        attachment_id = mapping.pop("attachment_id", None)
        if attachment_id:
            try:
                services.volume.attachment_delete(ctx, attachment_id)
            except exception.NotFound:
                pass
            except Exception:
                LOG.exception("Could not release attachment %s", attachment_id)


def cleanup_volumes(ctx: RequestContext, mappings: list[dict[str, Any]]) -> None:
    """What deleting a server does to its volumes: each attachment goes, and a volume
    marked delete_on_termination goes too. One volume failing does not stop the others."""
    for mapping in mappings:
        if mapping["destination_type"] != "volume":
            continue
        if mapping.get("attachment_id"):
            try:
                services.volume.attachment_delete(ctx, mapping["attachment_id"])
            except exception.NotFound:
                pass
            except Exception:
                LOG.exception("Could not delete attachment %s of volume %s",
                              mapping["attachment_id"], mapping["volume_id"])
                continue
        if mapping.get("volume_id") and mapping.get("delete_on_termination"):
            try:
                services.volume.delete(ctx, mapping["volume_id"])
            except exception.NotFound:
                pass
            except Exception:
                LOG.exception("Could not delete volume %s", mapping["volume_id"])
