"""The conductor's side of moves: start them, end them, and never forget one.

Sagas live in the API database, so this module keeps no state a restart
could lose: on start and on every pass it looks for moves whose conductor is
gone and resumes them, and confirms moves left in VERIFY_RESIZE longer than
``resize_confirm_window``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from transcell import cell as cells
from transcell import exception
from transcell.compute import actions
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.move import saga as sagas
from transcell.move.finish import FinishTask
from transcell.move.saga import Saga
from transcell.move.task import MoveTask

LOG = logging.getLogger(__name__)

CONFIRM_ACTION = "confirmResize"


def _owner_gone(owner: str | None, updated_at: dt.datetime | None) -> bool:
    """Whether the conductor that last wrote a saga can no longer be working on it."""
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    if updated_at is None:
        return True
    age = (utcnow() - updated_at).total_seconds()
    return age > CONF.conductor.move_takeover_after


class MoveTasks:
    def __init__(self) -> None:
        self.move = MoveTask()
        self.finish = FinishTask()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _claim(self, instance_uuid: str) -> bool:
        with self._lock:
            if instance_uuid in self._running:
                return False
            self._running.add(instance_uuid)
            return True

    def _release(self, instance_uuid: str) -> None:
        with self._lock:
            self._running.discard(instance_uuid)

    # RPC entry points ----------------------------------------------------------
    def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_uuid: str,
                       kind: str, flavor: dict, host: str | None,
                       allow_cross_cell: bool) -> None:
        # the API admitted this move only with no task running on the server, so
        # whoever holds the claim (a resume pass) is about to let go
        while not self._claim(instance_uuid):
            time.sleep(0.05)
        try:
            self.move.start(ctx, instance_uuid, migration_uuid, kind, flavor, host,
                            allow_cross_cell)
        finally:
            self._release(instance_uuid)

    def confirm_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._end(ctx, instance_uuid, self.finish.confirm)

    def revert_move(self, ctx: RequestContext, instance_uuid: str) -> None:
        self._end(ctx, instance_uuid, self.finish.revert)

    def _end(self, ctx: RequestContext, instance_uuid: str, how) -> None:
        done = sagas.CONFIRMED if how == self.finish.confirm else sagas.REVERTED
        while not self._claim(instance_uuid):
            time.sleep(0.05)
        try:
            saga = Saga.latest_for(instance_uuid)
            if saga is not None and saga.status == done:
                return  # a concurrent request (a delete's confirm) already ended it
            if saga is None or saga.status not in (sagas.MOVED, sagas.CONFIRMING,
                                                   sagas.REVERTING):
                raise exception.Conflict(f"Instance {instance_uuid} has no move waiting to "
                                         "be confirmed or reverted.")
            how(ctx, saga)
        finally:
            self._release(instance_uuid)

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
        for saga in Saga.with_status(*sagas.ACTIVE):
            # ours but no thread here runs it (it failed after its flip), or its
            # conductor is gone: either way nobody else will finish it
            if saga.owner == sagas.OWNER or _owner_gone(saga.owner, saga.updated_at):
                self._resume(saga)
        window = CONF.conductor.resize_confirm_window
        if window > 0:
            for saga in Saga.with_status(sagas.MOVED):
                moved_at = saga.resources.get("moved_at") or 0
                if time.time() - moved_at >= window:
                    self._auto_confirm(saga)

    def _resume(self, saga: Saga) -> None:
        if not self._claim(saga.instance_uuid):
            return
        try:
            saga = Saga.load(saga.uuid)
            if saga.status in (sagas.MOVING, sagas.UNDOING):
                self.move.resume(saga)
            elif saga.status == sagas.CONFIRMING:
                self.finish.confirm(_context(saga, "confirm_context"), saga)
            elif saga.status == sagas.REVERTING:
                self.finish.revert(_context(saga, "revert_context"), saga)
        except Exception:
            LOG.exception("Resuming move %s failed; it will be retried", saga.uuid)
        finally:
            self._release(saga.instance_uuid)

    def _auto_confirm(self, saga: Saga) -> None:
        if not self._claim(saga.instance_uuid):
            return
        try:
            ctx = RequestContext.admin()
            cell = cells.cell_of_instance(saga.instance_uuid)
            actions.record_action(ctx, cell, saga.instance_uuid, CONFIRM_ACTION)
            LOG.info("Confirming move %s of %s: resize_confirm_window passed", saga.uuid,
                     saga.instance_uuid)
            self.finish.confirm(ctx, Saga.load(saga.uuid))
        except Exception:
            LOG.exception("Automatic confirm of move %s failed", saga.uuid)
        finally:
            self._release(saga.instance_uuid)


def _context(saga: Saga, key: str) -> RequestContext:
    return RequestContext.from_dict(saga.resources.get(key) or saga.context)
