"""The saga runner: what runs, what is undone, and in which order, from the record alone."""

from __future__ import annotations

import os

import pytest

from transcell.faults import StepFault
from transcell.move import saga as sagas
from transcell.move.saga import Runner, Saga, Step


class Journal:
    def __init__(self, fail_in: str | None = None):
        self.calls: list[str] = []
        self.fail_in = fail_in

    def steps(self, names: list[str]) -> list[Step]:
        def forward(name):
            def run(saga: Saga) -> None:
                self.calls.append(f"do {name}")
                saga.remember(**{name: True})
                if name == self.fail_in:
                    raise RuntimeError(f"{name} broke")
            return run

        def undo(name):
            def run(saga: Saga) -> None:
                self.calls.append(f"undo {name}")
            return run
        return [Step(n, forward(n), undo(n)) for n in names]


NAMES = ["a", "b", "c", "d"]


def _saga() -> Saga:
    return Saga.create("11111111-2222-3333-4444-555555555555", "inst", "resize", NAMES, {},
                       {"request_id": "req-1"}, owner=sagas.OWNER)


def test_forward_runs_every_step_once_and_records_it(api_db):
    journal = Journal()
    runner = Runner(journal.steps(NAMES))
    saga = _saga()
    runner.forward(saga)
    runner.forward(Saga.load(saga.uuid))  # a resumed run does nothing twice
    assert journal.calls == [f"do {n}" for n in NAMES]
    loaded = Saga.load(saga.uuid)
    assert [s["state"] for s in loaded.steps] == [sagas.DONE] * 4
    assert all(loaded.resources[n] for n in NAMES)
    assert set(loaded.resources["phases"]) == set(NAMES)


def test_a_failed_step_is_compensated_with_the_ones_before_it_newest_first(api_db):
    journal = Journal(fail_in="c")
    runner = Runner(journal.steps(NAMES))
    saga = _saga()
    with pytest.raises(RuntimeError):
        runner.forward(saga)
    loaded = Saga.load(saga.uuid)
    assert [s["state"] for s in loaded.steps] == [sagas.DONE, sagas.DONE, sagas.RUNNING,
                                                  sagas.PENDING]
    runner.undo(loaded)
    assert journal.calls == ["do a", "do b", "do c", "undo c", "undo b", "undo a"]
    assert [s["state"] for s in Saga.load(saga.uuid).steps] == [
        sagas.UNDONE, sagas.UNDONE, sagas.UNDONE, sagas.PENDING]


def test_an_interrupted_undo_resumes_where_it_stopped(api_db):
    journal = Journal(fail_in="b")
    steps = journal.steps(NAMES)
    saga = _saga()
    with pytest.raises(RuntimeError):
        Runner(steps).forward(saga)

    def broken(saga):
        raise OSError("host down")
    flaky = [steps[0], Step("b", steps[1].forward, broken), *steps[2:]]
    with pytest.raises(OSError):
        Runner(flaky).undo(Saga.load(saga.uuid))
    Runner(steps).undo(Saga.load(saga.uuid))
    assert journal.calls[-2:] == ["undo b", "undo a"]


def test_fault_files_fail_a_named_step_once(api_db):
    os.makedirs(api_db / "faults" / "saga")
    (api_db / "faults" / "saga" / "b").write_text("disk on fire")
    journal = Journal()
    runner = Runner(journal.steps(NAMES))
    saga = _saga()
    with pytest.raises(StepFault, match="disk on fire"):
        runner.forward(saga)
    assert journal.calls == ["do a", "do b"]
    runner.forward(Saga.load(saga.uuid))  # consumed: the retry goes through
    assert journal.calls[-3:] == ["do b", "do c", "do d"]


def test_an_unowned_saga_is_claimed_by_exactly_one_of_many_racing_conductors(api_db):
    import threading
    Saga.create("22222222-2222-3333-4444-555555555555", "inst", "resize", NAMES, {},
                {"request_id": "req-1"})
    barrier = threading.Barrier(8)
    won: list[Saga | None] = []

    def race() -> None:
        barrier.wait()
        won.append(Saga.claim("22222222-2222-3333-4444-555555555555", (sagas.MOVING,),
                              from_owner=None))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([w for w in won if w is not None]) == 1
    assert Saga.load("22222222-2222-3333-4444-555555555555").owner == sagas.OWNER


def test_a_conductor_that_lost_its_saga_cannot_write_to_it(api_db):
    saga = _saga()
    with sagas.api_session() as s:
        row = s.scalar(sagas.select(sagas.am.MoveSaga).where(sagas.am.MoveSaga.uuid == saga.uuid))
        row.owner = "elsewhere:1"
    saga.status = sagas.FAILED
    with pytest.raises(sagas.SagaLost):
        saga.save()
    assert Saga.load(saga.uuid).status == sagas.MOVING


def test_confirm_and_revert_racing_for_one_move_exactly_one_wins(api_db):
    import threading
    saga = _saga()
    saga.status = sagas.MOVED
    saga.save()
    barrier = threading.Barrier(2)
    results: dict[str, Saga | None] = {}

    def end(status: str) -> None:
        barrier.wait()
        results[status] = Saga.transition(saga.uuid, sagas.MOVED, status, who=status)

    threads = [threading.Thread(target=end, args=(st,))
               for st in (sagas.CONFIRMING, sagas.REVERTING)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [st for st, won in results.items() if won is not None]
    assert len(winners) == 1
    loaded = Saga.load(saga.uuid)
    assert loaded.status == winners[0] and loaded.resources["who"] == winners[0]
    assert loaded.owner is None  # left for a conductor to claim
