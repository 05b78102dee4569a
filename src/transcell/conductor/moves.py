"""The conductor's side of moves: start them, end them, and never forget one.

Sagas live in the API database, so this module keeps no state a restart
could lose: on start and on every pass it looks for moves whose conductor is
gone and resumes them, and confirms moves left in VERIFY_RESIZE longer than
``resize_confirm_window``.

A conductor works on a saga only while it holds the saga's lease, renewed
by a ``LeaseKeeper`` thread for as long as the work runs. Another conductor,
in this process or any other, takes over a saga once its lease ran out;
that is all it needs to know. A conductor on the same machine also takes
over at once when the owner's process no longer exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from sqlalchemy import select

from transcell import cell as cells
from transcell import exception
from transcell.compute import actions
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.power_api import reclaim_expired
from transcell.conductor import unshelve
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.db.types import utcnow
from transcell.faults import hold_point
from transcell.lifecycle import pid_exists
from transcell.move import saga as sagas
from transcell.move.finish import FinishTask
from transcell.move.saga import LeaseKeeper, Saga, SagaLost
from transcell.move.task import MoveTask

LOG = logging.getLogger(__name__)

CONFIRM_ACTION = "confirmResize"
#: A move's task state this old with no saga behind it was left by a dead API process.
STRANDED_AFTER = 60
STRANDED_SWEEP_INTERVAL = 60


def _process_gone(owner: str) -> bool:
    """Whether ``owner`` (``host:pid:...``) ran on this machine in a process that is gone.

    Only a shortcut past waiting for the lease: a process that is merely
    stopped still exists, and an owner elsewhere is judged by its lease alone.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not pid_exists(int(pid))


class MoveTasks:
    def __init__(self, owner: str | None = None, move: MoveTask | None = None,
                 finish: FinishTask | None = None) -> None:
        #: this conductor's name on the sagas it holds: its own even when another
        #: conductor runs in the same process, as each resumes what its owner holds
        self.owner = owner or sagas.new_owner_id()
        self.move = move or MoveTask()
        self.finish = finish or FinishTask()
        self._running: set[str] = set()
        #: guards ``_running``; notified when a server is released
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._swept_at = float("-inf")

    def _claim(self, instance_uuid: str) -> bool:
        with self._lock:
            if instance_uuid in self._running:
                return False
            self._running.add(instance_uuid)
            return True

    def _claim_waiting(self, instance_uuid: str) -> None:
        """Claim the server once whatever this conductor runs on it ended: woken by its
        release, not polling (a resize sent right after a confirm would wait a poll)."""
        with self._lock:
            while instance_uuid in self._running:
                self._lock.wait()
            self._running.add(instance_uuid)

    def _release(self, instance_uuid: str) -> None:
        with self._lock:
            self._running.discard(instance_uuid)
            self._lock.notify_all()

    def _work(self, saga: Saga, work: Callable[[], None]) -> None:
        """Run ``work`` on a claimed saga while a keeper renews its lease.

        When another conductor took the saga over meanwhile, this one stops
        where it noticed, without compensating anything: the new owner
        undoes or finishes the move from the record.
        """
        try:
            # one pass of a saga maps its cells and hosts once (cells.remembered)
            with LeaseKeeper(saga), cells.remembered():
                work()
        except SagaLost:
            LOG.warning("Move %s was taken over by another conductor; %s stopped working "
                        "on it", saga.uuid, self.owner)

    # RPC entry points ----------------------------------------------------------
    def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_uuid: str,
                       kind: str | None = None, flavor: dict | None = None,
                       host: str | None = None, allow_cross_cell: bool | None = None) -> None:
        """Run the move the API recorded as saga ``migration_uuid``.

        Everything the move needs is in the saga; the other arguments are what
        older API services still send and are ignored. If a resume pass took
        the saga first, it runs there and this message has nothing to do.
        """
        hold_point("accepted-move", instance_uuid)
        self._claim_waiting(instance_uuid)
        try:
            saga = Saga.claim(migration_uuid, (sagas.MOVING,), from_owner=None,
                              owner=self.owner)
            if saga is not None:
                self._work(saga, lambda: self.move.start(saga))
        finally:
            self._release(instance_uuid)

    def confirm_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._end(instance_uuid, sagas.CONFIRMING, sagas.CONFIRMED, self.finish.confirm,
                  "confirm_context")

    def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._end(instance_uuid, sagas.REVERTING, sagas.REVERTED, self.finish.revert,
                  "revert_context")

    def _end(self, instance_uuid: str, ending: str, done: str, how, context_key: str) -> None:
        """Carry out the ending the API chose (it already moved the saga to ``ending``).

        Returns once the saga reached ``done``, whoever ran it, so a delete
        that waits on its confirm deletes only a confirmed server.
        """
        hold_point(f"accepted-{ending}", instance_uuid)
        self._claim_waiting(instance_uuid)
        try:
            saga = Saga.latest_for(instance_uuid)
            if saga is None or saga.status not in (ending, done):
                raise exception.Conflict(f"Instance {instance_uuid} has no move to take to "
                                         f"{done}.")
            if saga.status == ending:
                claimed = Saga.claim(saga.uuid, (ending,), from_owner=None, owner=self.owner)
                if claimed is not None:
                    self._work(claimed, lambda: how(_context(claimed, context_key), claimed))
        finally:
            self._release(instance_uuid)
        self._wait_for(saga.uuid, done)

    @staticmethod
    def _wait_for(saga_uuid: str, status: str) -> None:
        deadline = time.monotonic() + CONF.rpc.long_rpc_timeout
        while Saga.load(saga_uuid).status != status:
            if time.monotonic() > deadline:
                raise exception.Conflict(f"Move {saga_uuid} did not reach {status} in time.")
            time.sleep(0.1)

    # recovery and auto-confirm -------------------------------------------------
    def start_periodic(self) -> None:
        threading.Thread(target=self._loop, name="conductor-moves", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:
            try:
                self.pass_once()
            except Exception:
                LOG.exception("pass over unfinished moves failed")
            if self._stop.wait(CONF.conductor.move_check_interval):
                return

    def pass_once(self) -> None:
        if time.monotonic() - self._swept_at >= STRANDED_SWEEP_INTERVAL:
            self.sweep_stranded(older_than=STRANDED_AFTER)
            unshelve.release_stranded(older_than=STRANDED_AFTER)
            self._swept_at = time.monotonic()
        now = utcnow()
        for saga in Saga.with_status(*sagas.ACTIVE):
            # nobody took it yet (its cast was lost with the process that sent it),
            # ours but no thread here runs it (it failed after its flip), or its
            # lease ran out (its conductor died or froze): nobody else will finish it
            if saga.owner is None or saga.owner == self.owner or saga.lease_expired(now):
                self._resume(saga, sagas.EXPIRED)
            elif _process_gone(saga.owner):
                self._resume(saga, saga.owner)
        window = CONF.conductor.resize_confirm_window
        if window > 0:
            for saga in Saga.with_status(sagas.MOVED):
                moved_at = saga.resources.get("moved_at") or 0
                if time.time() - moved_at >= window:
                    self._auto_confirm(saga)
        # not a move, but the same periodic pass over every cell: soft-deleted servers
        # past [compute] reclaim_instance_interval are deleted for good
        reclaim_expired()

    def sweep_stranded(self, older_than: float) -> list[str]:
        """Give back servers a dead API process left in a move's task state.

        The API takes the task state first and records the move right after;
        a process that dies between the two never answered 202, but left the
        server looking busy with no move behind it. Only rows untouched for
        ``older_than`` seconds are taken, so an API process still between
        those two writes is never overtaken; the update is conditional on the
        task state found, so it loses to any request that got there first.
        """
        moving = {saga.instance_uuid for saga in Saga.with_status(*sagas.ACTIVE)}
        cutoff = utcnow() - dt.timedelta(seconds=older_than)
        released = []
        for cell in cells.list_cells(include_cell0=False):
            with cell_session(cell) as s:
                rows = s.execute(select(cm.Instance.uuid, cm.Instance.task_state).where(
                    cm.Instance.task_state.in_(sorted(vm.MOVING_TASK_STATES)),
                    cm.Instance.deleted == 0, cm.Instance.hidden.is_(False),
                    cm.Instance.updated_at < cutoff)).all()
            for uuid, task_state in rows:
                if uuid in moving:
                    continue
                try:
                    inst.update(cell, uuid, expected_task_state=task_state, task_state=None,
                                progress=None)
                except exception.Conflict:
                    continue
                LOG.warning("Server %s was left in %s with no move behind it; released it",
                            uuid, task_state)
                released.append(uuid)
        return released

    def _resume(self, saga: Saga, from_owner: str | sagas.Takeover) -> None:
        if not self._claim(saga.instance_uuid):
            return
        try:
            claimed = Saga.claim(saga.uuid, (saga.status,), from_owner=from_owner,
                                 owner=self.owner)
            if claimed is None:
                return  # another conductor (or this one's RPC handler) got there first
            if saga.owner is not None and saga.owner != self.owner:
                LOG.warning("Took over move %s from %s (generation %d)", saga.uuid,
                            saga.owner, claimed.generation)
            if claimed.kind == unshelve.KIND:
                if claimed.status in (sagas.MOVING, sagas.UNDOING):
                    self._work(claimed, lambda: unshelve.TASK.resume(claimed))
            elif claimed.status in (sagas.MOVING, sagas.UNDOING):
                self._work(claimed, lambda: self.move.resume(claimed))
            elif claimed.status == sagas.CONFIRMING:
                self._work(claimed, lambda: self.finish.confirm(
                    _context(claimed, "confirm_context"), claimed))
            elif claimed.status == sagas.REVERTING:
                self._work(claimed, lambda: self.finish.revert(
                    _context(claimed, "revert_context"), claimed))
        except Exception:
            LOG.exception("Resuming move %s failed; it will be retried", saga.uuid)
        finally:
            self._release(saga.instance_uuid)

    def _auto_confirm(self, saga: Saga) -> None:
        if not self._claim(saga.instance_uuid):
            return
        try:
            ctx = RequestContext.admin()
            confirming = Saga.transition(saga.uuid, sagas.MOVED, sagas.CONFIRMING,
                                         confirm_context=ctx.to_dict())
            if confirming is None:
                return  # the user confirmed or reverted it meanwhile
            claimed = Saga.claim(saga.uuid, (sagas.CONFIRMING,), from_owner=None,
                                 owner=self.owner)
            if claimed is None:
                return
            cell = cells.cell_of_instance(saga.instance_uuid)
            actions.record_action(ctx, cell, saga.instance_uuid, CONFIRM_ACTION)
            LOG.info("Confirming move %s of %s: resize_confirm_window passed", saga.uuid,
                     saga.instance_uuid)
            self._work(claimed, lambda: self.finish.confirm(ctx, claimed))
        except Exception:
            LOG.exception("Automatic confirm of move %s failed", saga.uuid)
        finally:
            self._release(saga.instance_uuid)


def _context(saga: Saga, key: str) -> RequestContext:
    return RequestContext.from_dict(saga.resources.get(key) or saga.context)
