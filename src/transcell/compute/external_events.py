"""What other services tell compute, API side: external events and assisted snapshots.

The network and volume services call these (Nova's os-server-external-events and
os-assisted-volume-snapshots) with the ``service`` role, for servers of any
project, so the servers are found by their instance mapping alone, whatever the
caller's project. Each accepted event or snapshot request is cast to the
compute host of the server, in the server's cell (``EventComputeAPI``); the host
acts on it (``compute.event_ops``) after the API has answered, as Nova's does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.compute import instance as inst
from transcell.compute.rpcapi import ComputeAPI, topic_for
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session

VERSION = "1.4"

#: Event names by the microversion that added them. ``volume-reimaged`` (2.93) is
#: past the newest version served, so it is never accepted.
EVENT_NAMES: tuple[tuple[str, str], ...] = (
    ("network-changed", "2.1"), ("network-vif-plugged", "2.1"),
    ("network-vif-unplugged", "2.1"), ("network-vif-deleted", "2.1"),
    ("volume-extended", "2.51"), ("power-update", "2.76"),
    ("accelerator-request-bound", "2.82"),
)
STATUSES = ("failed", "completed", "in-progress")
#: Events that name what they are about in their tag, without which they are dropped.
TAG_REQUIRED = ("volume-extended", "power-update")
POWER_TAGS = ("POWER_ON", "POWER_OFF")


class EventComputeAPI(ComputeAPI):
    """RPC messages (since 1.4) to a compute host about what another service did."""

    def _cast(self, ctx: RequestContext, host: str, method: str, **kwargs: Any) -> None:
        self._bus(host).cast(ctx, topic_for(host), method, rpc_version=VERSION, **kwargs)

    def external_instance_event(self, ctx: RequestContext, host: str, instance_uuid: str,
                                events: list[dict[str, Any]]) -> None:
        """``events``: name, status and tag of each event, in the order they came."""
        self._cast(ctx, host, "external_instance_event", instance_uuid=instance_uuid,
                   events=events)

    def volume_snapshot_create(self, ctx: RequestContext, host: str, instance_uuid: str,
                               volume_id: str, create_info: dict[str, Any]) -> None:
        self._cast(ctx, host, "volume_snapshot_create", instance_uuid=instance_uuid,
                   volume_id=volume_id, create_info=create_info)

    def volume_snapshot_delete(self, ctx: RequestContext, host: str, instance_uuid: str,
                               volume_id: str, snapshot_id: str,
                               delete_info: dict[str, Any]) -> None:
        self._cast(ctx, host, "volume_snapshot_delete", instance_uuid=instance_uuid,
                   volume_id=volume_id, snapshot_id=snapshot_id, delete_info=delete_info)


rpc = EventComputeAPI()


def find_server(instance_uuid: str) -> tuple[cells.Cell, dict[str, Any]] | None:
    """The live server and its cell, whatever its project; None when there is none
    (or its cell does not answer: an event for it cannot be delivered either)."""
    def read(cell: cells.Cell) -> dict | None:
        try:
            return cells.read_one(cell, lambda c: inst.get(c, instance_uuid))
        except exception.InstanceNotFound:
            return None

    try:
        mapping, server = cells.read_where_mapped(instance_uuid, read)
    except cells.CellUnavailable:
        return None
    if mapping is None or server is None:
        return None
    return mapping["cell"], server


def deliver_events(ctx: RequestContext,
                   accepted: list[tuple[cells.Cell, dict[str, Any], dict[str, Any]]]) -> None:
    """One message per server, its events in the order they came, to its host."""
    by_server: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for _cell, server, event in accepted:
        by_server.setdefault(server["uuid"], (server, []))[1].append(event)
    for uuid, (server, events) in by_server.items():
        rpc.external_instance_event(ctx, server["host"], uuid, events)


# -- assisted volume snapshots ---------------------------------------------------

class VolumeBDMNotFound(exception.Invalid):
    """400 as Nova's: the volume is not attached to any server."""

    msg_fmt = "No volume Block Device Mapping with id %(volume_id)s."


class VolumeBDMIsMultiAttach(exception.Invalid):
    msg_fmt = "Block Device Mapping %(volume_id)s is a multi-attach volume and is not " \
              "valid for this operation."


class SnapshotNotReady(exception.Invalid):
    """Nova answers 400 where it would like 409 (a microversion would have to change)."""

    msg_fmt = "%(reason)s"


def _attached_to(volume_id: str) -> list[tuple[cells.Cell, dict[str, Any]]]:
    """Every live server with a live mapping of the volume, in every cell that answers.

    A server a move took to another cell leaves a hidden copy (and its mappings)
    behind until it is confirmed: only the live, visible one counts.
    """
    def read(cell: cells.Cell) -> list[str]:
        with cell_session(cell) as s:
            return list(s.scalars(select(cm.BlockDeviceMapping.instance_uuid).where(
                cm.BlockDeviceMapping.volume_id == volume_id,
                cm.BlockDeviceMapping.deleted == 0)).all())

    gathered = cells.gather(cells.list_cells(include_cell0=False), read)
    found: dict[str, tuple[cells.Cell, dict[str, Any]]] = {}
    for cell, uuids in gathered.results.items():
        for uuid in uuids:
            try:
                found[uuid] = (cell, inst.get(cell, uuid))
            except exception.InstanceNotFound:
                continue
    return list(found.values())


def _snapshot_target(volume_id: str) -> dict[str, Any]:
    """The one server the volume is attached to, ready for its host to act (400s)."""
    servers = _attached_to(volume_id)
    if not servers:
        raise VolumeBDMNotFound(volume_id=volume_id)
    if len(servers) > 1:
        raise VolumeBDMIsMultiAttach(volume_id=volume_id)
    _cell, server = servers[0]
    if not server["host"]:
        raise SnapshotNotReady(reason=f"Instance {server['uuid']} is not ready")
    if server["task_state"] is not None:
        raise SnapshotNotReady(
            reason=f"Cannot 'volume_snapshot' instance {server['uuid']} while it is in "
                   f"task_state {server['task_state']}")
    return server


def volume_snapshot_create(ctx: RequestContext, volume_id: str,
                           create_info: dict[str, Any]) -> dict[str, Any]:
    server = _snapshot_target(volume_id)
    rpc.volume_snapshot_create(ctx, server["host"], server["uuid"], volume_id, create_info)
    return {"id": create_info.get("id"), "volumeId": volume_id}


def volume_snapshot_delete(ctx: RequestContext, volume_id: str, snapshot_id: str,
                           delete_info: dict[str, Any]) -> None:
    server = _snapshot_target(volume_id)
    rpc.volume_snapshot_delete(ctx, server["host"], server["uuid"], volume_id, snapshot_id,
                               delete_info)
