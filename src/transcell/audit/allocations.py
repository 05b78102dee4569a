"""Placement: every consumer holding resources is a live server on its node's provider,
or the migration consumer (named by the saga's uuid) of a move in flight."""

from __future__ import annotations

from typing import Any

from transcell.audit import Problem, fix
from transcell.audit.state import ENDED, Snapshot, describe, resources
from transcell.move import saga as sagas


def check(snap: Snapshot, placement: Any) -> list[Problem]:
    problems = []
    allocations = placement.list_all_allocations_by_consumer()
    for consumer, by_rp in allocations.items():
        saga = snap.saga_by_uuid.get(consumer)
        if saga is not None and saga.status not in ENDED:
            continue  # in flight, or FAILED and reported as such
        if consumer in snap.legacy_moves:
            continue
        visible = snap.visible(consumer)
        if visible:
            problems += _placed(snap, consumer, visible[0][1].node, by_rp)
            continue
        mapping = snap.mappings.get(consumer)
        if mapping is not None and mapping.building:
            continue  # the scheduler claims before the cell row exists
        if saga is not None:
            server = saga.instance_uuid
            # a move that ended gave (or should have given) this back to the server; if
            # the server holds nothing itself, this may be its only claim: not ours to drop
            safe = saga.status == sagas.CONFIRMED or server in allocations
            problems.append(Problem("ended-move-allocation",
                                    f"migration consumer of {describe(saga)} of {server} "
                                    f"still holds {sorted(by_rp)}", consumer,
                                    fix.delete_allocations(placement, consumer) if safe
                                    else None, ("allocation", consumer)))
            continue
        problems.append(Problem("orphan-allocation",
                                f"consumer {consumer} holds {sorted(by_rp)} but is no live "
                                "server or move in flight", consumer,
                                fix.delete_allocations(placement, consumer),
                                ("allocation", consumer)))
    for uuid, found in snap.rows.items():
        for cell, row in found:
            if row.hidden or cell.is_cell0 or row.host is None:
                continue
            if row.vm_state in ("building", "error") and uuid not in allocations:
                continue
            if uuid not in allocations:
                problems.append(Problem("missing-allocation",
                                        f"{uuid} runs on {row.host} without allocations", uuid))
    return problems


def _placed(snap: Snapshot, consumer: str, node: str | None,
            by_rp: dict[str, Any]) -> list[Problem]:
    expected = snap.nodes.get(node or "")
    if not expected:
        return []
    allowed = {expected}
    for saga in snap.in_flight(consumer):
        # until the flip the server's own consumer claims the target node
        for key in ("source_node", "dest_node"):
            if snap.nodes.get(resources(saga).get(key) or ""):
                allowed.add(snap.nodes[resources(saga)[key]])
    if set(by_rp) == {expected} or (snap.in_flight(consumer) and set(by_rp) <= allowed):
        return []
    return [Problem("allocation-wrong-provider",
                    f"{consumer} is on node {node} but allocated on {sorted(by_rp)}", consumer)]
