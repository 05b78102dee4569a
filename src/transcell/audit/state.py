"""One read of everything the audit compares, taken before any check runs.

Every check works on this snapshot, so a server is judged against one view of
the mappings, rows and moves; the fixes re-read what they touch right before
acting (see ``recheck``), since the cloud keeps running while the audit looks.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from transcell import cell as cells
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import utcnow
from transcell.move import saga as sagas

#: A move in one of these ended; it must hold nothing any more.
ENDED = (sagas.ROLLED_BACK, sagas.CONFIRMED, sagas.REVERTED)
#: Migration record statuses after which the record names no running move.
MIGRATION_DONE = ("confirmed", "reverted", "error", "failed", "done")


@dataclass
class Mapping:
    cell_uuid: str | None
    queued_for_delete: bool
    updated_at: dt.datetime | None

    @property
    def building(self) -> bool:
        """Scheduled but not yet placed: its allocations and ports come before its row."""
        return self.cell_uuid is None and not self.queued_for_delete


@dataclass
class Snapshot:
    rows: dict[str, list[tuple[cells.Cell, cm.Instance]]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    vifs: dict[str, list[str]] = field(default_factory=dict)
    mappings: dict[str, Mapping] = field(default_factory=dict)
    sagas: dict[str, list[sagas.Saga]] = field(default_factory=lambda: defaultdict(list))
    saga_by_uuid: dict[str, sagas.Saga] = field(default_factory=dict)
    #: migration uuids of moves recorded only by a migration record (no saga)
    legacy_moves: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=utcnow)

    # servers ---------------------------------------------------------------------
    def visible(self, uuid: str) -> list[tuple[cells.Cell, cm.Instance]]:
        return [(c, r) for c, r in self.rows.get(uuid, []) if not r.hidden]

    def mapped_row(self, uuid: str) -> tuple[cells.Cell, cm.Instance] | None:
        """The visible row in the cell the mapping names: the server users see."""
        mapping = self.mappings.get(uuid)
        for cell, row in self.visible(uuid):
            if mapping is not None and cell.uuid == mapping.cell_uuid:
                return cell, row
        return None

    def age(self, when: dt.datetime | None) -> float:
        return (self.now - when).total_seconds() if when is not None else float("inf")

    # moves -------------------------------------------------------------------------
    def moves_of(self, uuid: str, *statuses: str) -> list[sagas.Saga]:
        return [s for s in self.sagas.get(uuid, []) if s.status in statuses]

    def in_flight(self, uuid: str) -> list[sagas.Saga]:
        return self.moves_of(uuid, *sagas.IN_FLIGHT)

    def moving(self, uuid: str) -> bool:
        """A move still owns the server's resources (or an operator must look: FAILED)."""
        return bool(self.moves_of(uuid, *sagas.IN_FLIGHT, sagas.FAILED)) or \
            uuid in self.legacy_servers

    @functools.cached_property
    def legacy_servers(self) -> set[str]:
        """Servers with a move known only by its migration record (read once loaded)."""
        return set(self.legacy_moves.values())

    def latest_ended(self, uuid: str) -> sagas.Saga | None:
        ended = self.moves_of(uuid, *ENDED)
        return ended[-1] if ended else None


def load() -> Snapshot:
    snap = Snapshot()
    with api_session() as s:
        for m in s.scalars(select(am.InstanceMapping)):
            snap.mappings[m.instance_uuid] = Mapping(m.cell.uuid if m.cell else None,
                                                     bool(m.queued_for_delete), m.updated_at)
        saga_rows = s.scalars(select(am.MoveSaga).order_by(am.MoveSaga.id)).all()
        loaded = [sagas.Saga(r) for r in saga_rows]
    for saga in loaded:
        snap.sagas[saga.instance_uuid].append(saga)
        snap.saga_by_uuid[saga.uuid] = saga
    for cell in cells.list_cells():
        _load_cell(snap, cell)
    return snap


def _load_cell(snap: Snapshot, cell: cells.Cell) -> None:
    with cell_session(cell) as s:
        live: set[str] = set()
        for row in s.scalars(select(cm.Instance)):
            s.expunge(row)
            if row.deleted:
                snap.deleted.add(row.uuid)
                continue
            live.add(row.uuid)
            snap.rows.setdefault(row.uuid, []).append((cell, row))
        for vif in s.scalars(select(cm.VirtualInterface)
                             .where(cm.VirtualInterface.deleted == 0)
                             .order_by(cm.VirtualInterface.id)):
            rows = [r for c, r in snap.rows.get(vif.instance_uuid, []) if c.uuid == cell.uuid]
            if rows and not rows[0].hidden:
                snap.vifs.setdefault(vif.instance_uuid, []).append(vif.uuid)
        for mig in s.scalars(select(cm.Migration).where(cm.Migration.deleted == 0)):
            if mig.status not in MIGRATION_DONE and mig.uuid not in snap.saga_by_uuid:
                snap.legacy_moves[mig.uuid] = mig.instance_uuid
        if not cell.is_cell0:
            for node in s.scalars(select(cm.ComputeNode).where(cm.ComputeNode.deleted == 0)):
                snap.nodes[node.hypervisor_hostname] = node.uuid


def recheck(uuid: str) -> Snapshot:
    """A fresh snapshot of one server (its rows, mapping and moves), for a fix to act on."""
    snap = Snapshot()
    with api_session() as s:
        m = s.scalar(select(am.InstanceMapping).where(am.InstanceMapping.instance_uuid == uuid))
        if m is not None:
            snap.mappings[uuid] = Mapping(m.cell.uuid if m.cell else None,
                                          bool(m.queued_for_delete), m.updated_at)
        rows = s.scalars(select(am.MoveSaga).where(
            (am.MoveSaga.instance_uuid == uuid) | (am.MoveSaga.uuid == uuid))
            .order_by(am.MoveSaga.id)).all()
        for saga in (sagas.Saga(r) for r in rows):
            snap.sagas[saga.instance_uuid].append(saga)
            snap.saga_by_uuid[saga.uuid] = saga
    for cell in cells.list_cells():
        with cell_session(cell) as s:
            for row in s.scalars(select(cm.Instance).where(cm.Instance.uuid == uuid)):
                s.expunge(row)
                if row.deleted:
                    snap.deleted.add(uuid)
                else:
                    snap.rows.setdefault(uuid, []).append((cell, row))
            for mig in s.scalars(select(cm.Migration).where(
                    (cm.Migration.instance_uuid == uuid) | (cm.Migration.uuid == uuid),
                    cm.Migration.deleted == 0)):
                if mig.status not in MIGRATION_DONE and mig.uuid not in snap.saga_by_uuid:
                    snap.legacy_moves[mig.uuid] = mig.instance_uuid
    return snap


def describe(saga: sagas.Saga) -> str:
    return f"move {saga.uuid} ({saga.status})"


def resources(saga: sagas.Saga) -> dict[str, Any]:
    return saga.resources or {}
