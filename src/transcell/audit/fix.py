"""``transcell audit --fix``: the repairs the checks offer, each safe against a racing
request.

A repair never trusts the audit's snapshot alone: it re-reads the server, its
mapping and its moves right before acting, and its write is guarded on the
state it found (one ``UPDATE ... WHERE`` on the row as read, a Placement
consumer generation, a rename before a re-check). When anything moved on
meanwhile the repair does nothing, so a real request in progress always wins.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update

from transcell import cell as cells
from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.faults import hold_point
from transcell.move import saga as sagas

LOG = logging.getLogger(__name__)

Repair = Callable[[], "str | None"]


class Skipped(Exception):
    """The repair was not safe when it came to act; the reason says why."""


def apply(problems: list) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run each offered repair once; (what was done, what was left and why)."""
    fixed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    seen: set = set()
    for problem in problems:
        if problem.repair is None:
            continue
        key = problem.repair_key if problem.repair_key is not None else id(problem)
        if key in seen:
            continue
        seen.add(key)
        entry = {"kind": problem.kind, "subject": problem.subject}
        try:
            done = problem.repair()
        except Skipped as why:
            skipped.append(entry | {"reason": str(why)})
            continue
        except Exception as exc:  # one failed repair must not stop the others
            LOG.exception("Repairing %s of %s failed", problem.kind, problem.subject)
            skipped.append(entry | {"reason": f"failed: {exc}"})
            continue
        if done:
            fixed.append(entry | {"action": done})
        else:
            skipped.append(entry | {"reason": "changed while the audit looked; left alone"})
    return fixed, skipped


def _state():
    from transcell.audit import state
    return state


def update_row(cell: cells.Cell, row: cm.Instance, values: dict[str, Any]) -> Repair:
    """Set ``values`` on the server's row only if it is still exactly as the audit read it."""
    uuid = row.uuid
    seen = dict(task_state=row.task_state, vm_state=row.vm_state, hidden=row.hidden,
                updated_at=row.updated_at)

    def repair() -> str | None:
        fresh = _state().recheck(uuid)
        age = fresh.age(seen["updated_at"])
        if age < CONF.audit.fix_grace_seconds:
            raise Skipped(f"changed {age:.0f} s ago; a request may still be acting on it")
        if fresh.moves_of(uuid, *sagas.ACTIVE) or ("vm_state" in values
                                                   and fresh.in_flight(uuid)):
            return None
        with cell_session(cell) as s:
            result = s.execute(
                update(cm.Instance)
                .where(cm.Instance.uuid == uuid, cm.Instance.deleted == 0,
                       cm.Instance.hidden == seen["hidden"],
                       cm.Instance.task_state == seen["task_state"],
                       cm.Instance.vm_state == seen["vm_state"],
                       cm.Instance.updated_at == seen["updated_at"])
                .values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            return None
        changes = {k: v for k, v in values.items() if k != "progress"}
        return (f"{uuid} in {cell.name}: " + ", ".join(
            f"{k} {seen.get(k)} -> {v}" for k, v in changes.items()))
    return repair


def drop_hidden_row(cell: cells.Cell, uuid: str) -> Repair:
    """Hard-delete a hidden copy no move owns, while the server lives visibly elsewhere."""
    from transcell.move.copy import owner_column

    def repair() -> str | None:
        fresh = _state().recheck(uuid)
        live = fresh.mapped_row(uuid)
        if fresh.moving(uuid) or live is None or live[0].uuid == cell.uuid:
            return None
        with cell_session(cell) as s:
            # the guard: this write holds the row (and proves it hidden) until commit
            held = s.execute(update(cm.Instance)
                             .where(cm.Instance.uuid == uuid, cm.Instance.hidden.is_(True))
                             .values(hidden=True)
                             .execution_options(synchronize_session=False))
            if held.rowcount != 1:
                return None
            actions = list(s.scalars(select(cm.InstanceAction.id)
                                     .where(cm.InstanceAction.instance_uuid == uuid)))
            if actions:
                s.execute(delete(cm.InstanceActionEvent)
                          .where(cm.InstanceActionEvent.action_id.in_(actions)))
            for model in (*cm.INSTANCE_OWNED, cm.Instance):
                s.execute(delete(model).where(owner_column(model) == uuid))
        return f"deleted the hidden row of {uuid} in {cell.name} (live in {live[0].name})"
    return repair


def delete_snapshot(images: Any, image_id: str, move: str) -> Repair:
    def repair() -> str | None:
        fresh = _state().recheck(move)
        saga = fresh.saga_by_uuid.get(move)
        if saga is None or saga.status not in _state().ENDED:
            return None
        try:
            images.delete(RequestContext.admin(), image_id)
        except exception.ImageNotFound:
            return None
        return f"deleted temporary image {image_id} of move {move} ({saga.status})"
    return repair


def delete_orphan_spool(images: Any, name: str) -> Repair:
    """Remove a spool file no image holds, if that is still so (checked under the
    store's lock, where every upload begins)."""
    def repair() -> str | None:
        if not images.store.spools.remove_orphans([name]):
            return None
        return f"deleted orphan spool file {name} of the image store"
    return repair


def delete_allocations(placement: Any, consumer: str) -> Repair:
    """Drop a consumer's allocations, guarded by the generation read before the re-check."""
    def repair() -> str | None:
        current = placement.get_allocations(consumer)
        if not current.get("allocations"):
            return None
        fresh = _state().recheck(consumer)
        mapping = fresh.mappings.get(consumer)
        if fresh.visible(consumer) or (mapping is not None and mapping.building) \
                or consumer in fresh.legacy_moves:
            return None
        saga = fresh.saga_by_uuid.get(consumer)
        if saga is not None:
            if saga.status not in _state().ENDED:
                return None
            if saga.status != sagas.CONFIRMED and not placement.get_allocations(
                    saga.instance_uuid).get("allocations"):
                return None
        try:
            placement.replace_allocations(
                consumer, {}, current["project_id"], current["user_id"],
                current.get("consumer_type") or "INSTANCE",
                consumer_generation=current["consumer_generation"])
        except exception.AllocationConflict:
            return None
        return f"deleted the allocations of {consumer} on {sorted(current['allocations'])}"
    return repair


def release_ports(network: Any, device: str) -> Repair:
    """Give back the ports of a deleted server: delete those made for it, detach the rest."""
    def repair() -> str | None:
        fresh = _state().recheck(device)
        mapping = fresh.mappings.get(device)
        if device in fresh.rows or (mapping is not None and not mapping.queued_for_delete):
            return None
        if device not in fresh.deleted and mapping is None:
            return None
        result = network.deallocate_for_instance(RequestContext.admin(), device)
        if not result["deleted"] and not result["detached"]:
            return None
        return (f"ports of deleted server {device}: deleted {sorted(result['deleted'])}, "
                f"unbound {sorted(result['detached'])}")
    return repair


def fold_layers(root: str, host: str, uuid: str) -> Repair:
    """Fold a pre-copy's frozen layers back into the disk, as its host would have. The
    fold is safe to repeat and leaves the guest's bytes as they are. No move may be
    under way: that is checked again under the disk's writer lock, which a pre-copy
    takes to freeze and holds the saga of its move before it does, so a move that
    starts meanwhile either shows up in the check or freezes after the fold."""
    def repair() -> str | None:
        from transcell.compute.virt import disk_chain
        with open(os.path.join(os.path.dirname(root), "disk.json")) as fh:
            fmt = json.load(fh).get("format", "qcow2")

        def moving() -> bool:
            return bool(_state().recheck(uuid).moves_of(uuid, *sagas.IN_FLIGHT))
        hold_point("audit-fold", uuid)  # where a move may start after the audit's look
        if not disk_chain.collapse(root, fmt, unless=moving):
            return None
        return f"folded the pre-copy layers of {uuid} on {host} back into its disk"
    return repair


def delete_disk(instances_dir: str, host: str, uuid: str) -> Repair:
    """Set the disks aside first, then re-check: a move that claims the host meanwhile
    finds the path free or gets its files back, and never loses a byte to us."""
    def repair() -> str | None:
        from transcell.audit.disks import owned
        path = os.path.join(instances_dir, uuid)
        aside = os.path.join(instances_dir, f".audit-{uuidlib.uuid4().hex}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return None
        if owned(_state().recheck(uuid), uuid, host):
            try:
                os.rename(aside, path)
            except OSError:
                LOG.warning("Disks of %s on %s set aside in %s: their owner came back",
                            uuid, host, aside)
            return None
        shutil.rmtree(aside)
        return f"deleted disks of {uuid} on {host}"
    return repair
