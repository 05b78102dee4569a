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

from sqlalchemy import select

from transcell import exception
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import utcnow

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


class StepFault(exception.TranscellError):
    msg_fmt = "Injected failure in move step %(step)s"


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
               resources: dict[str, Any], context: dict[str, Any]) -> Saga:
        with api_session() as s:
            row = am.MoveSaga(uuid=uuid, instance_uuid=instance_uuid, kind=kind,
                              status=MOVING, flipped=False, context=context,
                              steps=[{"name": n, "state": PENDING} for n in step_names],
                              resources=resources, owner=OWNER, updated_at=utcnow())
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

    @staticmethod
    def with_status(*statuses: str) -> list[Saga]:
        with api_session() as s:
            rows = s.scalars(select(am.MoveSaga).where(am.MoveSaga.status.in_(statuses))
                             .order_by(am.MoveSaga.id)).all()
            return [Saga(r) for r in rows]

    def save(self) -> None:
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == self.uuid))
            row.status = self.status
            row.steps = [dict(step) for step in self.steps]
            row.resources = dict(self.resources)
            row.flipped = self.flipped
            row.error = self.error
            row.owner = self.owner = OWNER
            row.updated_at = utcnow()

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


def _fault_path(step: str, what: str) -> str | None:
    from transcell.conf import CONF
    if not CONF.state_dir:
        return None
    return os.path.join(CONF.state_dir, "faults", "saga", f"{what}{step}")


def check_fault(step: str) -> None:
    """Raise if ``STATE/faults/saga/<step>`` exists (consumed on use).

    The same mechanism the fake driver offers for its methods, one level up:
    it lets failure-injection tests break a running cloud at every step.
    """
    path = _fault_path(step, "")
    if path is None:
        return
    try:
        with open(path) as fh:
            message = fh.read().strip()
        os.unlink(path)
    except FileNotFoundError:
        return
    raise StepFault(message or None, step=step)


def hold_point(step: str, saga: Saga) -> None:
    """Wait while ``STATE/faults/saga/hold-<step>`` exists, after the step is recorded done.

    Tests use it to act at an exact point of a move: kill the process, or
    damage the snapshot between upload and download. ``reached-<step>`` tells
    them the saga is waiting there.
    """
    path = _fault_path(step, "hold-")
    if path is None or not os.path.exists(path):
        return
    reached = _fault_path(step, "reached-")
    with open(reached, "w") as fh:
        fh.write(saga.uuid)
    while os.path.exists(path):
        time.sleep(0.05)


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
            hold_point(step.name, saga)

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
