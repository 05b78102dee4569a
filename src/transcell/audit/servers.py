"""Servers: mappings against rows, hidden rows, and states nobody is working on.

A task state is a promise that some process is doing that work. A move's
task states are backed by its saga (ACTIVE while a conductor may still act);
any other task state is backed by a request in progress, which a stale
``updated_at`` says has died.
"""

from __future__ import annotations

from transcell import cell as cells
from transcell.audit import Problem, fix
from transcell.audit.state import Snapshot, describe, resources
from transcell.compute import vm_states as vm
from transcell.conf import CONF
from transcell.db import cell_models as cm
from transcell.move import saga as sagas

#: An unshelve's task state, backed by its saga as a move's are (conductor.unshelve).
UNSHELVING = "unshelving"
#: A server in VERIFY_RESIZE is waiting on a move in one of these.
VERIFYING = (sagas.MOVED, sagas.CONFIRMING, sagas.REVERTING)


def check(snap: Snapshot) -> list[Problem]:
    return _mappings(snap) + _hidden_rows(snap) + _tasks(snap) + _stale_deletes(snap)


def _mappings(snap: Snapshot) -> list[Problem]:
    problems = []
    for uuid, mapping in snap.mappings.items():
        visible = snap.visible(uuid)
        if mapping.cell_uuid is None:
            problems.append(Problem("unplaced-mapping", f"{uuid} is mapped to no cell", uuid))
        elif not visible and not mapping.queued_for_delete:
            problems.append(Problem("mapping-without-row",
                                    f"{uuid} is mapped to {mapping.cell_uuid} where no live "
                                    "visible row exists", uuid))
        elif visible and all(c.uuid != mapping.cell_uuid for c, _ in visible):
            problems.append(Problem("mapping-mismatch",
                                    f"{uuid} is mapped to {mapping.cell_uuid} but visible in "
                                    f"{', '.join(c.name for c, _ in visible)}", uuid))
    for uuid in snap.rows:
        visible = snap.visible(uuid)
        if len(visible) > 1:
            problems.append(Problem("duplicate-visible-rows",
                                    f"{uuid} is visible in "
                                    f"{', '.join(c.name for c, _ in visible)}", uuid))
        if visible and uuid not in snap.mappings:
            problems.append(Problem("row-without-mapping", f"{uuid} has no instance mapping",
                                    uuid))
    return problems


def _hidden_rows(snap: Snapshot) -> list[Problem]:
    """A hidden row is a move's copy; once no move is in flight it is only debris."""
    problems = []
    for uuid, found in snap.rows.items():
        if snap.moving(uuid):
            continue
        live = snap.mapped_row(uuid)
        for cell, row in found:
            if not row.hidden:
                continue
            ended = snap.latest_ended(uuid)
            left_by = f", left by {describe(ended)}" if ended else ""
            safe = live is not None and live[0].uuid != cell.uuid
            problems.append(Problem(
                "stray-hidden-row",
                f"{uuid} has a hidden row in {cell.name} that no move owns{left_by}", uuid,
                repair=fix.drop_hidden_row(cell, uuid) if safe else None,
                repair_key=("hidden-row", cell.uuid, uuid)))
    return problems


def _tasks(snap: Snapshot) -> list[Problem]:
    problems = []
    for uuid in snap.rows:
        for cell, row in snap.visible(uuid):
            problems += _task_of(snap, uuid, cell, row)
    return problems


def _task_of(snap: Snapshot, uuid: str, cell: cells.Cell, row: cm.Instance) -> list[Problem]:
    problems = []
    task = row.task_state
    values = _repair_values(snap, uuid, row)
    repair = fix.update_row(cell, row, values) if values else None
    key = ("row", cell.uuid, uuid)
    last = snap.sagas.get(uuid, [None])[-1]
    last_said = f"; its last move is {describe(last)}" if last else "; it has no move"
    if task in vm.MOVING_TASK_STATES and not snap.moves_of(uuid, *sagas.ACTIVE):
        problems.append(Problem("stranded-task",
                                f"{uuid} is in task state {task} in {cell.name} but no move "
                                f"of it is running{last_said}", uuid, repair, key))
    elif task is not None and task not in vm.MOVING_TASK_STATES and \
            not (task == UNSHELVING and snap.moves_of(uuid, *sagas.ACTIVE)) and \
            snap.age(row.updated_at) > CONF.audit.stale_task_seconds:
        problems.append(Problem("stale-task",
                                f"{uuid} has been in task state {task} in {cell.name} for "
                                f"{snap.age(row.updated_at):.0f} s without a change", uuid))
    if row.vm_state == vm.RESIZED and not snap.moves_of(uuid, *VERIFYING):
        problems.append(Problem("orphan-verify-resize",
                                f"{uuid} is in VERIFY_RESIZE in {cell.name} but no move waits "
                                f"for a confirm or revert{last_said}", uuid,
                                repair if values and "vm_state" in values else None, key))
    return problems


def _repair_values(snap: Snapshot, uuid: str, row: cm.Instance) -> dict | None:
    """What a stranded row goes back to: no task, and the state a move that ended left."""
    values: dict = {}
    if row.task_state in vm.MOVING_TASK_STATES and not snap.moves_of(uuid, *sagas.ACTIVE):
        values.update(task_state=None, progress=None)
    history = snap.sagas.get(uuid, [])
    if row.vm_state == vm.RESIZED and history and not snap.in_flight(uuid):
        last = history[-1]
        old = resources(last).get("old_vm_state")
        if last.status in (sagas.ROLLED_BACK, sagas.REVERTED) and old and old != vm.RESIZED:
            values.update(vm_state=old, task_state=None, progress=None)
    return values or None


def _stale_deletes(snap: Snapshot) -> list[Problem]:
    problems = []
    for uuid, mapping in snap.mappings.items():
        if not mapping.queued_for_delete or not snap.visible(uuid):
            continue
        age = snap.age(mapping.updated_at)
        if age > CONF.audit.stale_task_seconds:
            problems.append(Problem("stale-delete",
                                    f"{uuid} was queued for delete {age:.0f} s ago but its "
                                    "row is still live", uuid))
    return problems
