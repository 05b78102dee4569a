"""A moving server's volumes: attachments for the target, migrations where it can't reach.

A volume whose backend the target cell reaches stays where it is and gets
a second attachment, for the target host, while the source's is kept until
confirm (Nova's way). A volume whose backend the target cell cannot reach
is copied, after the guest stopped, to a backend that cell reaches, and
switched there under the same id; its source copy is kept until confirm,
so a revert only switches back.

Every helper converges on its wanted state whatever an interrupted attempt
left, so saga steps and compensations may run them again: an attachment
this move already made is found by its host before another is created.
"""

from __future__ import annotations

import logging
from typing import Any

from transcell import cell as cells
from transcell import exception
from transcell.context import RequestContext
from transcell.move import reach, records
from transcell.move.saga import Saga
from transcell.registry import services

LOG = logging.getLogger(__name__)


def _admin(ctx: RequestContext) -> RequestContext:
    return ctx if ctx.is_admin else RequestContext.admin()


def connector(host: str) -> dict[str, Any]:
    """What a host tells the volume service about itself when it asks for a volume."""
    return {"host": host, "platform": "x86_64", "os_type": "linux", "multipath": False}


def remember_plan(saga: Saga, volume_plan: list[dict], source: cells.Cell) -> None:
    """Record each volume's fate and its source attachment before anything changes
    (with the claim's commit: nothing of a volume changes before the next step)."""
    by_volume = {bd["volume_id"]: bd for bd in records.block_devices(source,
                                                                     saga.instance_uuid)}
    saga.note(volumes=[{
        "volume_id": entry["volume_id"], "action": entry["action"],
        "from_backend": entry.get("from_backend"), "to_backend": entry.get("to_backend"),
        "bytes": entry.get("bytes"),
        "source_attachment": (by_volume.get(entry["volume_id"]) or {}).get("attachment_id"),
        "dest_attachment": None, "dest_connection_info": None,
    } for entry in volume_plan])


def _update(saga: Saga, volume_id: str, **values: Any) -> None:
    entries = [dict(v) for v in saga.resources.get("volumes") or []]
    for entry in entries:
        if entry["volume_id"] == volume_id:
            entry.update(values)
    saga.remember(volumes=entries)


def attachment_for(ctx: RequestContext, volume_id: str, instance_uuid: str, host: str,
                   known: str | None = None) -> dict[str, Any]:
    """The volume's attachment for ``host``, with its connection info: ``known`` or one an
    earlier, interrupted try made (found by instance and host), else a new one."""
    admin = _admin(ctx)
    found = None
    if known:
        try:
            found = services.volume.attachment_get(admin, known)
        except exception.NotFound:
            found = None
    if found is None:
        volume = services.volume.get(admin, volume_id)
        for attachment in volume.get("attachments") or []:
            if attachment.get("server_id") == instance_uuid and \
                    attachment.get("host_name") == host:
                found = services.volume.attachment_get(
                    admin, attachment.get("attachment_id") or attachment["id"])
                break
    if found is None:
        return services.volume.attachment_create(admin, volume_id, instance_uuid,
                                                 connector(host))
    if not found.get("connection_info"):
        found = services.volume.attachment_update(admin, found["id"], connector(host))
    return found


def _attach_for(ctx: RequestContext, saga: Saga, entry: dict, host: str) -> None:
    found = attachment_for(ctx, entry["volume_id"], saga.instance_uuid, host,
                           entry.get("dest_attachment"))
    _update(saga, entry["volume_id"], dest_attachment=found["id"],
            dest_connection_info=found.get("connection_info"))


def _drop_attachment(ctx: RequestContext, attachment_id: str | None) -> None:
    if not attachment_id:
        return
    try:
        services.volume.attachment_delete(_admin(ctx), attachment_id)
    except exception.NotFound:
        pass


def attach_kept(ctx: RequestContext, saga: Saga, host: str) -> None:
    """prep_dest: the target host's attachment of every volume that stays put."""
    for entry in saga.resources.get("volumes") or []:
        if entry["action"] == reach.KEEP:
            _attach_for(ctx, saga, entry, host)


def detach_dest(ctx: RequestContext, saga: Saga, action: str) -> None:
    """Undo: drop the target host's attachments of volumes with ``action``."""
    for entry in saga.resources.get("volumes") or []:
        if entry["action"] == action:
            _drop_attachment(ctx, entry.get("dest_attachment"))
            _update(saga, entry["volume_id"], dest_attachment=None, dest_connection_info=None)


def migrate(ctx: RequestContext, saga: Saga, host: str) -> dict[str, Any]:
    """After the guest stopped: copy, verify and switch every volume the target can't
    reach, then attach it for the target host. Returns bytes and seconds for the record."""
    admin = _admin(ctx)
    sent = total = 0
    for entry in saga.resources.get("volumes") or []:
        if entry["action"] != reach.MIGRATE:
            continue
        result = services.volume.move_copy(admin, entry["volume_id"], saga.uuid,
                                           entry["to_backend"])
        services.volume.move_switch(admin, entry["volume_id"], saga.uuid)
        sent += result.get("bytes_sent") or 0
        total += result.get("bytes") or 0
        _update(saga, entry["volume_id"], checksum=result.get("checksum"),
                bytes_sent=result.get("bytes_sent"))
        _attach_for(ctx, saga, next(v for v in saga.resources["volumes"]
                                    if v["volume_id"] == entry["volume_id"]), host)
    return {"volume_bytes_sent": sent, "volume_bytes": total}


def unmigrate(ctx: RequestContext, saga: Saga) -> None:
    """Undo ``migrate``: the volume is back on its source backend, the copy gone."""
    admin = _admin(ctx)
    for entry in saga.resources.get("volumes") or []:
        if entry["action"] != reach.MIGRATE:
            continue
        _drop_attachment(ctx, entry.get("dest_attachment"))
        _update(saga, entry["volume_id"], dest_attachment=None, dest_connection_info=None)
        services.volume.move_revert(admin, entry["volume_id"], saga.uuid)


def complete(ctx: RequestContext, saga: Saga) -> None:
    """The guest runs on the target with its volumes: their attachments are in use."""
    for entry in saga.resources.get("volumes") or []:
        if entry.get("dest_attachment"):
            services.volume.attachment_complete(_admin(ctx), entry["dest_attachment"])


def dest_block_devices(saga: Saga, source: cells.Cell) -> list[dict[str, Any]]:
    """The server's volume mappings as the target host must attach them."""
    by_volume = {v["volume_id"]: v for v in saga.resources.get("volumes") or []}
    found = []
    for bd in records.block_devices(source, saga.instance_uuid):
        entry = by_volume.get(bd["volume_id"])
        if entry is not None and entry.get("dest_connection_info"):
            bd = dict(bd, attachment_id=entry["dest_attachment"],
                      connection_info=entry["dest_connection_info"])
        found.append(bd)
    return found


def point_rows(saga: Saga, cell: cells.Cell, at_dest: bool) -> None:
    """The server's mappings in ``cell`` name the target's attachments (or the source's)."""
    for entry in saga.resources.get("volumes") or []:
        if at_dest and entry.get("dest_attachment"):
            records.set_attachment(cell, saga.instance_uuid, entry["volume_id"],
                                   entry["dest_attachment"], entry["dest_connection_info"])
        elif not at_dest and entry.get("source_attachment"):
            try:
                attachment = services.volume.attachment_get(RequestContext.admin(),
                                                            entry["source_attachment"])
            except exception.NotFound:
                continue
            records.set_attachment(cell, saga.instance_uuid, entry["volume_id"],
                                   entry["source_attachment"],
                                   attachment.get("connection_info"))


def confirm(ctx: RequestContext, saga: Saga) -> None:
    """Keep the target: the source's attachments and retained copies go."""
    admin = _admin(ctx)
    for entry in saga.resources.get("volumes") or []:
        _drop_attachment(ctx, entry.get("source_attachment"))
        if entry["action"] == reach.MIGRATE:
            services.volume.move_confirm(admin, entry["volume_id"], saga.uuid)


def revert(ctx: RequestContext, saga: Saga, current: cells.Cell, source: cells.Cell,
           source_host: str) -> None:
    """Give the volumes back to the source host, including changes made while resized.

    A volume attached on the target while the server waited in
    VERIFY_RESIZE is attached for the source host too (the source cell's
    rows learn of it); one detached meanwhile loses its source attachment
    and mapping as well. Migrated volumes switch back to their source copy.
    """
    admin = _admin(ctx)
    moved = {v["volume_id"]: v for v in saga.resources.get("volumes") or []}
    now = {bd["volume_id"]: bd for bd in records.block_devices(current, saga.instance_uuid)}
    for volume_id, entry in moved.items():
        if entry["action"] == reach.MIGRATE:
            services.volume.move_revert(admin, volume_id, saga.uuid)
        _drop_attachment(ctx, entry.get("dest_attachment"))
        if volume_id not in now:  # detached while resized
            _drop_attachment(ctx, entry.get("source_attachment"))
            records.forget_volume(source, saga.instance_uuid, volume_id)
    for volume_id, bd in now.items():
        if volume_id in moved:
            continue
        # attached while resized: the target's attachment gives way to the source's
        found = attachment_for(ctx, volume_id, saga.instance_uuid, source_host)
        services.volume.attachment_complete(admin, found["id"])
        if bd.get("attachment_id") != found["id"]:
            _drop_attachment(ctx, bd.get("attachment_id"))
        if current.uuid != source.uuid:
            records.copy_volume_row(current, source, saga.instance_uuid, volume_id)
        records.set_attachment(source, saga.instance_uuid, volume_id, found["id"],
                               found.get("connection_info"))
    point_rows(saga, source, at_dest=False)
