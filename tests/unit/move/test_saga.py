"""The saga runner: what runs, what is undone, and in which order, from the record alone."""

from __future__ import annotations

import os

import pytest

from transcell.conf import CONF
from transcell.db import migration
from transcell.db.session import dispose_all
from transcell.move import saga as sagas
from transcell.move.saga import Runner, Saga, Step


@pytest.fixture
def api_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    migration.sync(url, "api")
    CONF.set_override("connection", url, group="api_database")
    CONF.set_override("state_dir", str(tmp_path))
    yield tmp_path
    CONF.clear_override("connection", group="api_database")
    CONF.clear_override("state_dir")
    dispose_all()


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
                       {"request_id": "req-1"})


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
    with pytest.raises(sagas.StepFault, match="disk on fire"):
        runner.forward(saga)
    assert journal.calls == ["do a", "do b"]
    runner.forward(Saga.load(saga.uuid))  # consumed: the retry goes through
    assert journal.calls[-3:] == ["do b", "do c", "do d"]
