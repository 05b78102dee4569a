"""The move saga's durable record and the loop that advances or unwinds it.

Every transition is written to the API database before and after the work
it names, so a conductor that dies at any instant leaves a record saying
which steps may have started. Resuming is therefore the same code as
running: forward steps and their compensations are idempotent, and the
runner only ever trusts the record, never its own memory.

A conductor holds a saga through a lease: ``owner`` names it, and
``lease_expires_at`` says until when, renewed by a ``LeaseKeeper`` thread
while a step runs. A conductor that dies or freezes (SIGSTOP, a long GC, a
hung host) stops renewing; once the lease ran out another conductor claims
the saga, which bumps ``generation``. Every write names the owner and the
generation it was claimed at (a compare-and-swap), so the frozen conductor,
when it wakes up, can no longer write anything: its next write raises
``SagaLost`` and it stops without compensating; the new owner decides.
Lease expiry is compared on the database rows' clock (each conductor's UTC
time), so conductors on several machines need their clocks kept in step.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from transcell import exception
from transcell.conf import CONF
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


def new_owner_id() -> str:
    """A conductor's name as a saga owner: unique even for two conductors in one process.

    ``host:pid:random``; the host and pid let a conductor on the same machine
    see at once that the owner's process is gone, the random part keeps a
    restarted process that got the same pid from passing for the dead one.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


#: Whom a saga loaded (not claimed) in this process writes as; each conductor
#: (``MoveTasks``) claims under an id of its own.
OWNER = new_owner_id()


class Takeover(enum.Enum):
    #: claim a saga nobody holds, or whose lease ran out, or that is already ours
    EXPIRED = "expired"


EXPIRED = Takeover.EXPIRED


def lease_seconds() -> float:
    return float(CONF.conductor.move_lease_seconds)


def _expiry(seconds: float) -> dt.datetime:
    """When a lease taken now runs out, rounded up to the database's whole seconds."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return (now + dt.timedelta(seconds=math.ceil(seconds) + (1 if now.microsecond else 0))
            ).replace(microsecond=0)


class SagaLost(exception.Conflict):
    msg_fmt = ("Move %(uuid)s is no longer owned by this conductor; another one took it "
               "over, so this one stops writing to it.")


@dataclass
class Step:
    name: str
    forward: Callable[[Saga], None]
    undo: Callable[[Saga], None]


class Saga:
    """A loaded saga record; ``save`` writes every field back at once.

    The object also carries the right to write: ``holder`` (the owner id it
    writes as) and ``generation`` (the claim it writes under). Only a claim
    (or ``create`` with an owner) hands out a fresh generation; a ``load``
    writes as this process's default owner at the generation it read, so it
    can only ever continue what that owner still holds unchanged.
    """

    def __init__(self, row: am.MoveSaga, holder: str | None = None):
        self.uuid: str = row.uuid
        self.instance_uuid: str = row.instance_uuid
        self.kind: str = row.kind
        self.status: str = row.status
        self.steps: list[dict[str, Any]] = [dict(s) for s in row.steps]
        self.resources: dict[str, Any] = dict(row.resources)
        self.flipped: bool = row.flipped
        self.context: dict[str, Any] = dict(row.context)
        self.error: str | None = row.error
        self.owner: str | None = row.owner  # the conductor holding the lease, if any
        self.generation: int = row.generation or 0
        self.lease_expires_at: dt.datetime | None = row.lease_expires_at
        self.created_at = row.created_at
        self.updated_at = row.updated_at
        self.holder: str = holder or OWNER
        self._lost = threading.Event()
        # monotonic time until which the lease surely still holds; past it,
        # ``fence`` asks the database before anything else is done
        self._valid_until = float("-inf")

    # persistence -----------------------------------------------------------
    @classmethod
    def create(cls, uuid: str, instance_uuid: str, kind: str, step_names: list[str],
               resources: dict[str, Any], context: dict[str, Any],
               owner: str | None = None) -> Saga:
        """Record a move before anyone works on it.

        The API creates it unowned (``owner`` None) before answering 202, so
        the promise is on disk; a conductor then takes it with ``claim``.
        """
        started = time.monotonic()
        with api_session() as s:
            row = am.MoveSaga(uuid=uuid, instance_uuid=instance_uuid, kind=kind,
                              status=MOVING, flipped=False, context=context,
                              steps=[{"name": n, "state": PENDING} for n in step_names],
                              resources=resources, owner=owner,
                              generation=1 if owner else 0,
                              lease_expires_at=_expiry(lease_seconds()) if owner else None,
                              updated_at=utcnow())
            s.add(row)
            s.flush()
            saga = cls(row, holder=owner)
        if owner:
            saga._leased_from(started)
        return saga

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
    def claim(cls, uuid: str, statuses: tuple[str, ...],
              from_owner: str | None | Takeover = EXPIRED, *,
              owner: str | None = None) -> Saga | None:
        """Become the saga's only writer, if it is in ``statuses`` and free to take.

        ``from_owner`` says when it is free: None, only if nobody took it yet
        (a move the API accepted); ``EXPIRED``, also when its lease ran out or
        ``owner`` already holds it; an owner id, when that owner holds it and
        the caller knows its process is gone, whatever the lease says.

        The row is read, then taken with one ``UPDATE ... WHERE generation =
        <read>`` that re-checks the condition; two conductors racing for one
        saga both run it, and exactly one gets the saga back, at a generation
        that makes every write of any earlier holder fail.
        """
        me = owner or OWNER
        with api_session() as s:
            found = s.execute(select(am.MoveSaga.status, am.MoveSaga.generation)
                              .where(am.MoveSaga.uuid == uuid)).first()
        if found is None or found.status not in statuses:
            return None
        generation = found.generation or 0
        now = utcnow()
        if from_owner is None:
            free = am.MoveSaga.owner.is_(None)
        elif from_owner is EXPIRED:
            free = or_(am.MoveSaga.owner.is_(None), am.MoveSaga.owner == me,
                       am.MoveSaga.lease_expires_at.is_(None),
                       am.MoveSaga.lease_expires_at < now)
        else:
            free = am.MoveSaga.owner == from_owner
        started = time.monotonic()
        with api_session() as s:
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == uuid,
                                      am.MoveSaga.status.in_(statuses),
                                      am.MoveSaga.generation == generation, free)
                               .values(owner=me, generation=generation + 1,
                                       lease_expires_at=_expiry(lease_seconds()),
                                       updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            return None
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == uuid))
            saga = cls(row, holder=me)
        if saga.owner != me or saga.generation != generation + 1:
            return None  # taken again in the instant since: not ours any more
        saga._leased_from(started)
        return saga

    @classmethod
    def transition(cls, uuid: str, from_status: str, to_status: str,
                   **resources: Any) -> Saga | None:
        """Move an idle saga from one status to another and leave it for a conductor.

        How confirm and revert (and a delete's confirm) are told apart when
        they race: each asks for MOVED -> its status in one statement, one
        wins, the other sees None and answers 409. ``resources`` (the ending's
        request context) are written by the same statement; nobody else writes
        a MOVED saga, so the values read here cannot be stale. The statement
        also ends any lease and bumps the generation, so whichever conductor
        worked on the move before cannot write into the ending.
        """
        with api_session() as s:
            row = s.scalar(select(am.MoveSaga).where(am.MoveSaga.uuid == uuid))
            if row is None or row.status != from_status:
                return None
            merged = dict(row.resources)
            merged.update(resources)
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == uuid,
                                      am.MoveSaga.status == from_status,
                                      am.MoveSaga.generation == row.generation)
                               .values(status=to_status, owner=None, resources=merged,
                                       generation=row.generation + 1, lease_expires_at=None,
                                       updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        return cls.load(uuid) if result.rowcount == 1 else None

    def save(self, also: Callable[[Session], None] | None = None) -> None:
        """Write every field back, only while this holder's claim is still the saga's.

        ``also`` runs in the same API database transaction, after the saga
        row was written, so a write that must happen only while the saga is
        held (the flip's mapping) commits with the saga or not at all.
        """
        self._write(dict(status=self.status, steps=[dict(step) for step in self.steps],
                         resources=dict(self.resources), flipped=self.flipped,
                         error=self.error), also)

    def renew(self) -> None:
        """Extend the lease; raises ``SagaLost`` if another conductor took the saga."""
        self._write({})

    def fence(self) -> None:
        """Make sure the saga is still held before a write the saga row cannot guard.

        Steps write to cell databases and hosts too; a conductor that was
        frozen past its lease must not do that after waking up. Within the
        safe part of the lease this is a clock read; past it, a renewal.
        """
        if self._lost.is_set():
            raise SagaLost(uuid=self.uuid)
        if time.monotonic() >= self._valid_until:
            self.renew()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def lease_expired(self, now: dt.datetime | None = None) -> bool:
        """Whether the lease as loaded has run out (no lease at all counts as run out)."""
        if self.lease_expires_at is None:
            return True
        return self.lease_expires_at < (now or utcnow())

    def _write(self, values: dict[str, Any],
               also: Callable[[Session], None] | None = None) -> None:
        if self._lost.is_set():
            raise SagaLost(uuid=self.uuid)
        started = time.monotonic()
        expires = _expiry(lease_seconds())
        with api_session() as s:
            result = s.execute(update(am.MoveSaga)
                               .where(am.MoveSaga.uuid == self.uuid,
                                      am.MoveSaga.owner == self.holder,
                                      am.MoveSaga.generation == self.generation)
                               .values(**values, lease_expires_at=expires, updated_at=utcnow())
                               .execution_options(synchronize_session=False))
            if result.rowcount == 1 and also is not None:
                also(s)
        if result.rowcount != 1:
            self._lost.set()
            raise SagaLost(uuid=self.uuid)
        self.owner = self.holder
        self.lease_expires_at = expires
        self._leased_from(started)

    def _leased_from(self, started: float) -> None:
        """The lease written at ``started`` holds surely for two thirds of it.

        The last third is left for clock skew between conductors and for
        the time the write took.
        """
        self._valid_until = started + lease_seconds() * 2 / 3

    def release(self) -> None:
        """Let go of a saga that ended, so nothing mistakes it for work in progress."""
        with api_session() as s:
            s.execute(update(am.MoveSaga)
                      .where(am.MoveSaga.uuid == self.uuid, am.MoveSaga.owner == self.holder,
                             am.MoveSaga.generation == self.generation)
                      .values(owner=None, lease_expires_at=None)
                      .execution_options(synchronize_session=False))

    # helpers -----------------------------------------------------------------
    def step_state(self, name: str) -> str:
        # a saga recorded before a step existed has not run it
        return next((s["state"] for s in self.steps if s["name"] == name), PENDING)

    def _set_step(self, name: str, state: str, **extra: Any) -> None:
        self._mark(name, state, **extra)
        self.save()

    def _mark(self, name: str, state: str, **extra: Any) -> None:
        """Change a step's state in memory only; the next save writes it."""
        for step in self.steps:
            if step["name"] == name:
                step["state"] = state
                step.update(extra)
                break
        else:
            self.steps.append({"name": name, "state": state, **extra})

    def remember(self, **values: Any) -> None:
        """Record resources as soon as they exist, so a compensation can find them."""
        self.resources.update(values)
        self.save()

    def note(self, **values: Any) -> None:
        """Record resources that only later steps and the report read, with the running
        step's own commit rather than a write of their own.

        For what no compensation needs: a crash before the step's commit
        loses them together with the step, which is then undone or run again
        and finds them again. A resource a compensation must find goes
        through ``remember``.
        """
        self.resources.update(values)

    def phase(self, name: str, seconds: float) -> None:
        phases = dict(self.resources.get("phases") or {})
        phases[name] = round(phases.get(name, 0.0) + seconds, 3)
        self.remember(phases=phases)

    def refresh(self) -> Saga:
        """The record as it is now, still written under this object's claim.

        For a runner that must re-read what it holds (after a failure) without
        ever adopting a newer owner's claim: the copy writes, or fails, exactly
        as this one would.
        """
        fresh = Saga.load(self.uuid)
        fresh.holder, fresh.generation = self.holder, self.generation
        fresh._lost, fresh._valid_until = self._lost, self._valid_until
        return fresh


class LeaseKeeper:
    """Renews a saga's lease every third of it while its holder works on it.

    One thread per running saga, so a step that waits minutes on a host
    (a disk upload) keeps the saga. When a renewal finds the saga taken over,
    the keeper stops and the saga is marked lost: the runner's next write,
    or its next ``fence``, raises ``SagaLost``.
    """

    def __init__(self, saga: Saga):
        self.saga = saga
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"saga-lease-{self.saga.uuid[:8]}")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(lease_seconds() / 3):
            try:
                self.saga.renew()
            except SagaLost:
                LOG.warning("Move %s was taken over by another conductor; this one stops "
                            "working on it", self.saga.uuid)
                return
            except Exception:
                LOG.exception("Renewing the lease of move %s failed; retrying",
                              self.saga.uuid)


class Runner:
    """Advance a saga through its steps; on failure unwind what ran, newest first."""

    def __init__(self, steps: list[Step]):
        self.steps = steps

    def forward(self, saga: Saga) -> None:
        announced = None  # the step the last write already recorded as RUNNING
        for index, step in enumerate(self.steps):
            if saga.step_state(step.name) == DONE:
                continue
            started = time.monotonic()
            if announced != step.name:
                saga._set_step(step.name, RUNNING)
            step.forward(saga)
            check_fault(step.name, saga.instance_uuid)
            # the step's result and its time are one write, made only if the saga is
            # still held: a conductor overtaken during the step records nothing
            phases = dict(saga.resources.get("phases") or {})
            phases[step.name] = round(phases.get(step.name, 0.0)
                                      + time.monotonic() - started, 3)
            saga.resources["phases"] = phases
            # the same write records the next step as RUNNING (one commit, not two): a
            # crash before it starts leaves it to a compensation that finds nothing to
            # undo, the same state as a crash just after a write of its own
            following = next((s.name for s in self.steps[index + 1:]
                              if saga.step_state(s.name) != DONE), None)
            if following is not None:
                saga._mark(following, RUNNING)
            saga._set_step(step.name, DONE)
            announced = following
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
            saga.fence()
            step.undo(saga)
            saga._set_step(step.name, UNDONE)
