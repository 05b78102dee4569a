"""What every kind of saga's conductor task shares: forward, undo, resume.

A move and an unshelve differ in their steps and in how they end, not in how
a failure is handled: before the flip every step has a compensation, so a
failure is undone; after it the saga only ever goes forward, so a failure is
left for the next pass to finish. A saga a dead conductor left is started
(the API's 202 promised it), finished (past its flip) or undone. Keeping this
in one place keeps the kinds from drifting apart in what a crash leaves.
"""

from __future__ import annotations

import logging

from transcell import exception
from transcell.conf import CONF
from transcell.move import saga as sagas
from transcell.move.saga import Runner, Saga, SagaLost

LOG = logging.getLogger(__name__)


class SagaTask:
    """Subclasses set ``runner``, ``noun`` and ``interrupted`` and provide
    ``start``, ``_succeeded``, ``_rolled_back`` and ``_give_up``."""

    runner: Runner
    #: What the logs call one saga of this kind ("move", "unshelve").
    noun = "saga"
    #: The fault a saga undone on resume records when it had no error of its own.
    interrupted = "The saga was interrupted before its point of no return and was undone."

    def start(self, saga: Saga) -> None:
        raise NotImplementedError

    def _succeeded(self, saga: Saga) -> None:
        raise NotImplementedError

    def _rolled_back(self, saga: Saga, error: BaseException) -> None:
        """Every step is undone: release the server and record why."""
        raise NotImplementedError

    def _give_up(self, saga: Saga, error: BaseException) -> None:
        """Compensation keeps failing: stop retrying and show the operator where it stands."""
        raise NotImplementedError

    def run(self, saga: Saga) -> None:
        """Forward until done; on failure before the flip, undo."""
        try:
            self.runner.forward(saga)
        except SagaLost:
            raise  # overtaken: the conductor that holds the saga now decides
        except Exception as exc:
            saga = saga.refresh()
            if saga.flipped:
                LOG.exception("%s %s failed after its point of no return; it will be "
                              "finished on the next pass", self.noun.capitalize(), saga.uuid)
                saga.error = str(exc)
                saga.save()
                return
            LOG.warning("%s %s of %s failed: %s; undoing it", self.noun.capitalize(),
                        saga.uuid, saga.instance_uuid, exc)
            self.roll_back(saga, exc)
            return
        self._succeeded(saga)

    def resume(self, saga: Saga) -> None:
        """Pick up a saga a dead conductor left: start it if nothing ran, finish it
        past its flip, undo it before."""
        if saga.status == sagas.MOVING and not saga.flipped and all(
                step["state"] == sagas.PENDING for step in saga.steps):
            LOG.info("Starting accepted %s %s", self.noun, saga.uuid)
            self.start(saga)
        elif saga.status == sagas.MOVING and saga.flipped:
            LOG.info("Finishing %s %s (past its point of no return)", self.noun, saga.uuid)
            self.run(saga)
        elif saga.status in (sagas.MOVING, sagas.UNDOING):
            LOG.info("Undoing unfinished %s %s", self.noun, saga.uuid)
            self.roll_back(saga, exception.TranscellError(saga.error or self.interrupted))

    def roll_back(self, saga: Saga, error: BaseException) -> None:
        """Undo every step that ran; after ``move_undo_attempts`` failed tries, give up."""
        saga.status = sagas.UNDOING
        saga.error = saga.error or str(error) or type(error).__name__
        saga.save()
        try:
            self.runner.undo(saga)
        except SagaLost:
            raise
        except Exception as undo_error:
            attempts = saga.resources.get("undo_attempts", 0) + 1
            saga.remember(undo_attempts=attempts)
            LOG.exception("Undoing %s %s failed (attempt %d)", self.noun, saga.uuid, attempts)
            if attempts >= CONF.conductor.move_undo_attempts:
                self._give_up(saga, undo_error)
            return  # else the next pass tries again
        self._rolled_back(saga, error)
