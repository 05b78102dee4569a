"""``transcell audit``: is every server where exactly one authority says it is?

Checks, across the API DB, every cell, Placement, the network service, the
image store and the hosts' disks:
- every mapping points at a cell holding a live, visible row, and every live
  visible row is mapped to the cell it is in;
- hidden rows exist only while a move owns them;
- Placement allocations belong to live servers (or running moves) on the
  provider of the server's node, and every placed server has them;
- ports bound to servers belong to live servers;
- temporary images belong to running moves; every chunk a manifest names exists;
- disks on hosts belong to live servers.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell import conf
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session

Problem = dict[str, str]


def _problem(kind: str, detail: str) -> Problem:
    return {"kind": kind, "detail": detail}


def _live_rows() -> dict[str, list[tuple[cells.Cell, cm.Instance]]]:
    rows: dict[str, list] = {}
    for cell in cells.list_cells():
        with cell_session(cell) as s:
            for row in s.scalars(select(cm.Instance).where(cm.Instance.deleted == 0)):
                s.expunge(row)
                rows.setdefault(row.uuid, []).append((cell, row))
    return rows


def _active_moves(in_flight: list) -> set[str]:
    """Migration uuids of moves not yet finished (they own hidden rows and consumers)."""
    active = {s.uuid for s in in_flight}
    for cell in cells.list_cells():
        with cell_session(cell) as s:
            for mig in s.scalars(select(cm.Migration).where(cm.Migration.deleted == 0)):
                if mig.status not in ("confirmed", "reverted", "error", "failed", "done"):
                    active.add(mig.uuid)
    return active


def check_moves() -> list[Problem]:
    """A move whose compensation gave up needs an operator: say which and why."""
    from transcell.move import saga as sagas
    return [_problem("failed-move", f"move {s.uuid} of {s.instance_uuid} could not be undone: "
                                    f"{s.error}")
            for s in sagas.Saga.with_status(sagas.FAILED)]


def check_mappings(rows, moves) -> list[Problem]:
    problems = []
    with api_session() as s:
        mappings = {m.instance_uuid: (m.cell.uuid if m.cell else None, m.queued_for_delete)
                    for m in s.scalars(select(am.InstanceMapping))}
    for uuid, (cell_uuid, queued) in mappings.items():
        visible = [c for c, r in rows.get(uuid, []) if not r.hidden]
        if cell_uuid is None:
            problems.append(_problem("unplaced-mapping", f"{uuid} is mapped to no cell"))
        elif not visible and not queued:
            problems.append(_problem("mapping-without-row",
                                     f"{uuid} is mapped to {cell_uuid} where no live visible "
                                     "row exists"))
        elif visible and all(c.uuid != cell_uuid for c in visible):
            problems.append(_problem("mapping-mismatch",
                                     f"{uuid} is mapped to {cell_uuid} but visible in "
                                     f"{', '.join(c.name for c in visible)}"))
    for uuid, found in rows.items():
        visible = [c for c, r in found if not r.hidden]
        if len(visible) > 1:
            problems.append(_problem("duplicate-visible-rows",
                                     f"{uuid} is visible in {', '.join(c.name for c in visible)}"))
        if visible and uuid not in mappings:
            problems.append(_problem("row-without-mapping", f"{uuid} has no instance mapping"))
        for cell, row in found:
            if row.hidden and row.task_state is None and not moves:
                problems.append(_problem("stray-hidden-row",
                                         f"{uuid} has a hidden row in {cell.name} that no "
                                         "move owns"))
    return problems


def check_allocations(placement, rows, moves) -> list[Problem]:
    problems = []
    nodes: dict[str, str] = {}
    for cell in cells.list_cells(include_cell0=False):
        with cell_session(cell) as s:
            for node in s.scalars(select(cm.ComputeNode).where(cm.ComputeNode.deleted == 0)):
                nodes[node.hypervisor_hostname] = node.uuid
    allocations = placement.list_all_allocations_by_consumer()
    for consumer, by_rp in allocations.items():
        if consumer in moves:
            continue
        visible = [(c, r) for c, r in rows.get(consumer, []) if not r.hidden]
        if not visible:
            problems.append(_problem("orphan-allocation",
                                     f"consumer {consumer} holds {sorted(by_rp)} but is no live "
                                     "server or running move"))
            continue
        _, row = visible[0]
        expected = nodes.get(row.node or "")
        if expected and set(by_rp) != {expected}:
            problems.append(_problem("allocation-wrong-provider",
                                     f"{consumer} is on node {row.node} but allocated on "
                                     f"{sorted(by_rp)}"))
    for uuid, found in rows.items():
        for cell, row in found:
            if row.hidden or cell.is_cell0 or row.host is None:
                continue
            if row.vm_state in ("building", "error") and uuid not in allocations:
                continue
            if uuid not in allocations:
                problems.append(_problem("missing-allocation",
                                         f"{uuid} runs on {row.host} without allocations"))
    return problems


def check_ports(network, rows) -> list[Problem]:
    problems = []
    ctx = RequestContext.admin()
    for port in network.list_ports(ctx, {}):
        owner = port.get("device_owner") or ""
        if not owner.startswith("compute:"):
            continue
        device = port.get("device_id")
        if not any(not r.hidden for _, r in rows.get(device, [])):
            problems.append(_problem("orphan-port",
                                     f"port {port['id']} is owned by {device}, which is no "
                                     "live server"))
    return problems


def check_images(image_service, moves) -> list[Problem]:
    problems = []
    ctx = RequestContext.admin()
    # a move's temporary snapshot is hidden from image lists, so ask for those too
    for image in [*image_service.list(ctx, {}), *image_service.list(ctx, {"os_hidden": True})]:
        move = image.get("transcell_migration")
        if move and move not in moves:
            problems.append(_problem("orphan-snapshot",
                                     f"temporary image {image['id']} belongs to move {move}, "
                                     "which is not running"))
        if not image.get("owner") and image.get("visibility") != "public":
            problems.append(_problem("image-without-owner",
                                     f"image {image['id']} has no owner"))
    for digest in image_service.store.check()["missing"]:
        problems.append(_problem("missing-chunk",
                                 f"chunk {digest} is named by an image but not in the store"))
    return problems


def _move_hosts(in_flight: list) -> set[tuple[str, str]]:
    """(server, host) pairs where a move in flight legitimately keeps disks."""
    pairs = set()
    for move in in_flight:
        for key in ("source_host", "dest_host"):
            if move.resources.get(key):
                pairs.add((move.instance_uuid, move.resources[key]))
    return pairs


def check_disks(rows, in_flight: list) -> list[Problem]:
    problems = []
    moving = _move_hosts(in_flight)
    root = conf.state_path("hosts")
    if not os.path.isdir(root):
        return problems
    for host in sorted(os.listdir(root)):
        instances = os.path.join(root, host, "instances")
        if not os.path.isdir(instances):
            continue
        for uuid in sorted(os.listdir(instances)):
            if uuid.startswith("."):
                continue
            if (uuid, host) in moving:
                continue
            if not any(r.host == host for _, r in rows.get(uuid, [])):
                problems.append(_problem("orphan-disk",
                                         f"host {host} keeps disks of {uuid}, which no live row "
                                         "places there"))
    return problems


def run_audit(placement: Any = None, network: Any = None, images: Any = None) -> list[Problem]:
    """Every inconsistency found; an empty list means the cloud is consistent."""
    placement, network, images = _services(placement, network, images)
    from transcell.move import saga as sagas
    rows = _live_rows()
    in_flight = sagas.Saga.with_status(*sagas.IN_FLIGHT)
    moves = _active_moves(in_flight)
    problems = check_mappings(rows, moves)
    problems += check_allocations(placement, rows, moves)
    problems += check_ports(network, rows)
    problems += check_images(images, moves)
    problems += check_disks(rows, in_flight)
    problems += check_moves()
    return problems


def _services(placement, network, images):
    """The running cloud's services when given, else opened straight from the state dir."""
    from transcell.registry import services
    if placement is None:
        placement = services.placement
    if placement is None:
        from transcell.placement import client, embedded
        placement = (client.from_config() if conf.CONF.placement.url else
                     client.PlacementClient(client.DirectTransport(
                         embedded.load_app(embedded.database_url()))))
    if network is None:
        from transcell.network.service import NetworkService
        network = NetworkService(conf.network_database_url())
    if images is None:
        from transcell.image.service import ImageService
        from transcell.image.store import ChunkStore
        images = ImageService(ChunkStore(conf.image_store_dir(), conf.CONF.image.chunk_size))
    return placement, network, images
