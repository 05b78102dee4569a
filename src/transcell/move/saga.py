"""The move saga's durable record and the loop that advances or unwinds it.

Every transition is written to the API database before and after the work
it names, so a conductor that dies at any instant leaves a record saying
which steps may have started. Resuming is therefore the same code as
running: forward steps and their compensations are idempotent, and the
runner only ever trusts the record, never its own memory.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from transcell import exception
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow
from transcell.faults import check_fault, hold_point

LOG = logging.getLogger(__name__)

# Saga statuses. A saga is "active" while a conductor may still have work to do.
MOVING = "moving"
UNDOING = "undoing"
ROLLED_BACK = "rolled_back"
MOVED = "moved"
CONFIRMING = "confirming"
CONFIRMED = "confirmed"
REVERTING = "reverting"
REVERTED = "reverted"
FAILED = "failed"

ACTIVE = (MOVING, UNDOING, CONFIRMING, REVERTING)
#: A move in these states still holds resources in two places.
IN_FLIGHT = (MOVING, UNDOING, MOVED, CONFIRMING, REVERTING)

# Step states.
PENDING = "pending"
RUNNING = "running"
DONE = "done"
UNDONE = "undone"

OWNER = f"{socket.gethostname()}:{os.getpid()}"


class SagaLost(exception.Conflict):
    msg_fmt = ("Move %(uuid)s is no longer owned by this conductor; another one took it "
               "over, so this one stops writing to it.")


@dataclass
class Step:
    name: str
    forward: Callable[[Saga], None]
    undo: Callable[[Saga], None]


class Saga:
    """A loaded saga record; ``save`` writes every field back at once."""

    def __init__(self, row: am.MoveSaga):
        self.uuid: str = row.uuid
        self.instance_uuid: str = row.instance_uuid
        self.kind: str = row.kind
        self.status: str = row.status
        self.steps: list[dict[str, Any]] = [dict(s) for s in row.steps]
        self.resources: dict[str, Any] = dict(row.resources)
        self.flipped: bool = row.flipped
        self.context: dict[str, Any] = dict(row.context)
        self.error: str | None = row.error
        self.owner: str | None = row.owner  # the conductor that last wrote the record
        self.created_at = row.created_at
        self.updated_at = row.updated_at

    # persistence -----------------------------------------------------------
    @classmethod
    def create(cls, uuid: str, instance_uuid: str, kind: str, step_names: list[str],
               resources: dict[str, Any], context: dict[str, Any],
               owner: str | None = None) -> Saga:
        """Record a move before anyone works on it.

        The API creates it unowned (``owner`` None) before answering 202, so
        the promise is on disk; a conductor then takes it with ``claim``.
        """
        with api_session() as s:
            row = am.MoveSaga(uuid=uuid, instance_uuid=instance_uuid, kind=kind,
                              status=MOVING, flipped=False, context=context,
                              steps=[{"name": n, "state": PENDING} for n in step_names],
                              resources=resources, owner=owner, updated_at=utcnow())
            s.add(row)
            s.flush()
            return cls(row)

    @classmethod
    def load(cls, uuid: str) -> Saga:
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == uuid))
            if row is None:
                raise exception.NotFound(f"Move {uuid} could not be found.")
            return cls(row)

    @classmethod
    def latest_for(cls, instance_uuid: str) -> Saga | None:
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.instance_uuid == instance_uuid)
                           .order_by(am.MoveSaga.id.desc()))
            return cls(row) if row is not None else None

    @classmethod
    def in_flight_for(cls, instance_uuid: str) -> Saga | None:
        """The server's one move that still holds resources in two places, if any."""
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga)
                           .where(am.MoveSaga.instance_uuid == instance_uuid,
                                  am.MoveSaga.status.in_(IN_FLIGHT))
                           .order_by(am.MoveSaga.id.desc()))
            return cls(row) if row is not None else None

    @staticmethod
    def with_status(*statuses: str) -> list[Saga]:
        with api_session() as s:
            rows = s.scalars(select(am.MoveSaga).where(am.MoveSaga.status.in_(statuses))
                             .order_by(am.MoveSaga.id)).all()
            return [Saga(r) for r in rows]

    @classmethod
    def claim(cls, uuid: str, statuses: tuple[str, ...], from_owner: str | None
              ) -> Saga | None:
        """Become the saga's only writer, if it is in ``statuses`` and still held by
        ``from_owner`` (None: nobody took it yet). Two conductors racing for one
        saga both run this ``UPDATE ... WHERE``; exactly one gets the saga back."""
        owner_is = (am.MoveSaga.owner.is_(None) if from_owner is None
                    else am.MoveSaga.owner == from_owner)
        with api_session() as s:
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == uuid,
                                      am.MoveSaga.status.in_(statuses), owner_is)
                               .values(owner=OWNER, updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        return cls.load(uuid) if result.rowcount == 1 else None

    @classmethod
    def transition(cls, uuid: str, from_status: str, to_status: str,
                   **resources: Any) -> Saga | None:
        """Move an idle saga from one status to another and leave it for a conductor.

        How confirm and revert (and a delete's confirm) are told apart when
        they race: each asks for MOVED -> its status in one statement, one
        wins, the other sees None and answers 409. ``resources`` (the ending's
        request context) are written by the same statement; nobody else writes
        a MOVED saga, so the values read here cannot be stale.
        """
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == uuid))
            if row is None or row.status != from_status:
                return None
            merged = dict(row.resources)
            merged.update(resources)
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == uuid,
                                      am.MoveSaga.status == from_status)
                               .values(status=to_status, owner=None, resources=merged,
                                       updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        return cls.load(uuid) if result.rowcount == 1 else None

    def save(self) -> None:
        """Write every field back, only while this conductor still owns the saga."""
        with api_session() as s:
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == self.uuid,
                                      am.MoveSaga.owner == OWNER)
                               .values(status=self.status,
                                       steps=[dict(step) for step in self.steps],
                                       resources=dict(self.resources), flipped=self.flipped,
                                       error=self.error, updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise SagaLost(uuid=self.uuid)
        self.owner = OWNER

    def release(self) -> None:
        """Let go of a saga that ended, so nothing mistakes it for work in progress."""
        with api_session() as s:
            s.execute(update(am.MoveSaga)
                      .where(am.MoveSaga.uuid == self.uuid, am.MoveSaga.owner == OWNER)
                      .values(owner=None).execution_options(synchronize_session=False))

    # helpers -----------------------------------------------------------------
    def step_state(self, name: str) -> str:
        return next(s["state"] for s in self.steps if s["name"] == name)

    def _set_step(self, name: str, state: str, **extra: Any) -> None:
        for step in self.steps:
            if step["name"] == name:
                step["state"] = state
                step.update(extra)
        self.save()

    def remember(self, **values: Any) -> None:
        """Record resources as soon as they exist, so a compensation can find them."""
        self.resources.update(values)
        self.save()

    def phase(self, name: str, seconds: float) -> None:
        phases = dict(self.resources.get("phases") or {})
        phases[name] = round(phases.get(name, 0.0) + seconds, 3)
        self.remember(phases=phases)


class Runner:
    """Advance a saga through its steps; on failure unwind what ran, newest first."""

    def __init__(self, steps: list[Step]):
        self.steps = steps

    def forward(self, saga: Saga) -> None:
        for step in self.steps:
            if saga.step_state(step.name) == DONE:
                continue
            started = time.monotonic()
            saga._set_step(step.name, RUNNING)
            step.forward(saga)
            check_fault(step.name)
            saga.phase(step.name, time.monotonic() - started)
            saga._set_step(step.name, DONE)
            hold_point(step.name, saga.instance_uuid)

    def undo(self, saga: Saga) -> None:
        """Compensate every step that ran or may have run, in reverse order.

        A step recorded RUNNING may have done part of its work before the
        failure or crash, so it is compensated too; compensations tolerate
        finding nothing to undo.
        """
        for step in reversed(self.steps):
            if saga.step_state(step.name) not in (RUNNING, DONE):
                continue
            step.undo(saga)
            saga._set_step(step.name, UNDONE)
