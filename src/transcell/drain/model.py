"""A drain's durable record and its conditional writes.

Everything a drain has promised lives in one ``cell_drains`` row: the
servers it will move and, for each, how far it got. Every write names the
``version`` it read (a compare-and-swap), so the runner, a second conductor
and a pause or resume from the API never overwrite one another: the loser
reloads and decides again. The row is the only state; a restarted conductor
continues from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import or_, select, update

from transcell import exception
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow

# Drain statuses.
RUNNING = "running"
PAUSED = "paused"
DONE = "done"
UNFINISHED = (RUNNING, PAUSED)

# Per-server states.
PENDING = "pending"      # not started yet, or waiting for another attempt
STARTING = "starting"    # the move is being asked for (a crash here is resolved on load)
MOVING = "moving"        # the move saga runs
CONFIRMING = "confirming"  # verified at the target; the drain confirmed it
MOVED = "moved"
FAILED = "failed"
IN_FLIGHT = (STARTING, MOVING, CONFIRMING)
FINISHED = (MOVED, FAILED)

LEASE_SECONDS = 30

DEFAULTS = {"concurrency": 2, "per_source_host": 2, "per_target_host": 2,
            "bandwidth_mib_s": None, "max_attempts": 2}


class DrainExists(exception.Conflict):
    msg_fmt = "Cell %(cell)s is being drained already (drain %(drain)s)."


class DrainChanged(exception.Conflict):
    msg_fmt = "Drain %(uuid)s was changed by someone else; reload it."


@dataclass
class Drain:
    uuid: str
    cell_uuid: str
    to_cell_uuid: str | None
    status: str
    settings: dict[str, Any]
    servers: dict[str, dict[str, Any]]
    context: dict[str, Any]
    version: int
    owner: str | None
    lease_expires_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _of(cls, row: am.CellDrain) -> Drain:
        return cls(row.uuid, row.cell_uuid, row.to_cell_uuid, row.status, dict(row.settings),
                   {k: dict(v) for k, v in row.servers.items()}, dict(row.context),
                   row.version, row.owner, row.lease_expires_at, row.started_at,
                   row.finished_at, row.created_at, row.updated_at)

    # reads ---------------------------------------------------------------
    @classmethod
    def load(cls, drain_uuid: str) -> Drain:
        with api_session() as s:
            row = s.scalar(select(am.CellDrain).where(am.CellDrain.uuid == drain_uuid))
            if row is None:
                raise exception.NotFound(f"Drain {drain_uuid} could not be found.")
            return cls._of(row)

    @classmethod
    def listed(cls, *statuses: str) -> list[Drain]:
        with api_session() as s:
            query = select(am.CellDrain).order_by(am.CellDrain.id)
            if statuses:
                query = query.where(am.CellDrain.status.in_(statuses))
            return [cls._of(row) for row in s.scalars(query)]

    @staticmethod
    def holders(*statuses: str) -> list[tuple[str, str | None]]:
        """Each drain in ``statuses`` and who holds it, without its servers: what a
        conductor's pass needs every second, where loading the drains parses every
        server's entry."""
        with api_session() as s:
            return [(row.uuid, row.owner) for row in s.execute(
                select(am.CellDrain.uuid, am.CellDrain.owner)
                .where(am.CellDrain.status.in_(statuses)).order_by(am.CellDrain.id))]

    def lease_expired(self, now: dt.datetime | None = None) -> bool:
        return self.lease_expires_at is None or self.lease_expires_at <= (now or utcnow())

    # writes --------------------------------------------------------------
    @classmethod
    def create(cls, cell_uuid: str, to_cell_uuid: str | None, settings: dict[str, Any],
               servers: dict[str, dict[str, Any]], context: dict[str, Any]) -> Drain:
        """Record a drain; ``DrainExists`` when the cell has an unfinished one.

        The unique ``active_cell`` decides a race of two requests inside the
        database: exactly one insert succeeds.
        """
        drain_uuid = str(uuidlib.uuid4())
        try:
            with api_session() as s:
                s.add(am.CellDrain(uuid=drain_uuid, cell_uuid=cell_uuid,
                                   to_cell_uuid=to_cell_uuid, status=RUNNING,
                                   active_cell=cell_uuid, settings=settings, servers=servers,
                                   context=context, version=0, started_at=utcnow()))
        except sa_exc.IntegrityError:
            found = next((d for d in cls.listed(*UNFINISHED) if d.cell_uuid == cell_uuid), None)
            raise DrainExists(cell=cell_uuid, drain=found.uuid if found else "?") from None
        return cls.load(drain_uuid)

    def save(self, *, owner: str | None = None, **changes: Any) -> Drain:
        """Write ``changes`` (and ``servers`` as it is now) if nobody wrote since it was read.

        With ``owner``, the write also takes (or renews) the drain's lease for
        that owner. Raises ``DrainChanged`` when the row moved on. What is returned
        is this drain as written, not read back: the write was conditional on the
        version, so the row holds exactly that (reading back a drain of 1,000
        servers parsed half a megabyte of JSON per write).
        """
        values: dict[str, Any] = {"servers": self.servers, "version": self.version + 1,
                                  "updated_at": utcnow(), **changes}
        if changes.get("status") == DONE:
            values["active_cell"] = None
            values.setdefault("finished_at", utcnow())
        if owner is not None:
            values["owner"] = owner
            values["lease_expires_at"] = utcnow() + dt.timedelta(seconds=LEASE_SECONDS)
        with api_session() as s:
            done = s.execute(update(am.CellDrain).where(
                am.CellDrain.uuid == self.uuid,
                am.CellDrain.version == self.version).values(**values)).rowcount
        if not done:
            raise DrainChanged(uuid=self.uuid)
        written = {key: values[key] for key in ("status", "version", "owner",
                                                "lease_expires_at", "started_at",
                                                "finished_at", "updated_at")
                   if key in values}
        return dataclasses.replace(self, servers={k: dict(v) for k, v in self.servers.items()},
                                   **written)

    @classmethod
    def current(cls, drain: Drain) -> Drain:
        """``drain`` again if its row has not been written since, else the row as it is
        now: one small read where a load parses every server's entry."""
        with api_session() as s:
            version = s.scalar(select(am.CellDrain.version)
                               .where(am.CellDrain.uuid == drain.uuid))
        return drain if version == drain.version else cls.load(drain.uuid)

    @classmethod
    def claim(cls, drain_uuid: str, owner: str, take_from: str | None = None) -> Drain | None:
        """Take the drain for ``owner`` when nobody holds it, its lease ran out, it is
        already ``owner``'s, or its holder is ``take_from`` (a process known gone)."""
        now = utcnow()
        holders = [am.CellDrain.owner.is_(None), am.CellDrain.owner == owner,
                   am.CellDrain.lease_expires_at <= now]
        if take_from is not None:
            holders.append(am.CellDrain.owner == take_from)
        with api_session() as s:
            done = s.execute(update(am.CellDrain).where(
                am.CellDrain.uuid == drain_uuid, am.CellDrain.status.in_(UNFINISHED),
                or_(*holders)).values(
                    owner=owner, lease_expires_at=now + dt.timedelta(seconds=LEASE_SECONDS),
                    version=am.CellDrain.version + 1, updated_at=now)).rowcount
        return cls.load(drain_uuid) if done else None

    @classmethod
    def set_paused(cls, drain_uuid: str, paused: bool) -> Drain:
        """Pause (or resume) an unfinished drain; 409 when it is done. Idempotent."""
        drain = cls.load(drain_uuid)
        wanted, other = (PAUSED, RUNNING) if paused else (RUNNING, PAUSED)
        for _ in range(50):
            if drain.status == wanted:
                return drain
            if drain.status != other:
                raise exception.Conflict(f"Drain {drain_uuid} is {drain.status}; only an "
                                         "unfinished drain can be paused or resumed.")
            try:
                return drain.save(status=wanted)
            except DrainChanged:
                drain = cls.load(drain_uuid)
        raise DrainChanged(uuid=drain_uuid)


def new_server_entry(server: dict[str, Any]) -> dict[str, Any]:
    """A server's place in the drain; ``expected_size`` (its flavor's root disk) is what
    its move counts against the bandwidth cap until the saga measures the disk."""
    return {"name": server.get("display_name"), "state": PENDING, "attempts": 0,
            "expected_size": int(server.get("root_gb") or 0) * 1024 ** 3,
            "source_host": server.get("host"), "migration": None, "dest_host": None,
            "target_cell": None, "bytes": None, "disk_size": None, "downtime_seconds": None,
            "errors": [], "error": None, "avoid_hosts": [], "started_at": None,
            "finished_at": None}
