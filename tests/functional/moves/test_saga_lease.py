"""Several conductors against one API database: a saga is held through a lease, and every
write checks the generation it was claimed at.

Two ``MoveTasks`` with two owner ids stand for two conductor processes. The move they run
is a stand-in with the real resume rule (finish after the flip, undo before it), so what
is checked is the ownership: who may claim, who may write, and that a conductor frozen
past its lease (its step and its renewals both stopped, as under SIGSTOP) wakes up unable
to write anything, so the move is neither done twice nor undone under the new owner.
The claim and the compare-and-swap run on every engine; the conductor scenarios on SQLite.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from collections.abc import Iterator

import pytest
import sqlalchemy

from transcell.conductor.moves import MoveTasks
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import dispose_all
from transcell.move import saga as sagas
from transcell.move.saga import LeaseKeeper, Runner, Saga, SagaLost, Step
from transcell.move.task import MoveTask

NAMES = ["a", "b", "flip", "d"]
WAIT = 20.0  # the longest any condition below may take before the test fails


def _use_api_db(url: str, tmp_path, lease: int) -> None:
    migration.sync(url, "api")
    CONF.set_override("connection", url, group="api_database")
    CONF.set_override("state_dir", str(tmp_path))
    CONF.set_override("move_lease_seconds", lease, group="conductor")


def _forget_api_db() -> None:
    CONF.clear_override("connection", group="api_database")
    CONF.clear_override("state_dir")
    CONF.clear_override("move_lease_seconds", group="conductor")
    dispose_all()


@pytest.fixture
def any_api_db(db_factory, tmp_path) -> Iterator[str]:
    """A migrated API database on each engine, sagas leased for one second."""
    url = db_factory.create()
    _use_api_db(url, tmp_path, lease=1)
    yield url
    _forget_api_db()


@pytest.fixture
def api_db(tmp_path) -> Iterator[str]:
    """SQLite, sagas leased for two seconds: long enough that a loaded machine does not
    let a lease run out where a test expects it held."""
    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    _use_api_db(url, tmp_path, lease=2)
    yield url
    _forget_api_db()


def _record() -> str:
    uuid = str(uuidlib.uuid4())
    Saga.create(uuid, "inst-" + uuid[:8], "resize", NAMES, {}, {"request_id": "req-1"})
    return uuid


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.05)


def _expired(uuid: str) -> bool:
    return Saga.load(uuid).lease_expired()


# the claim and the compare-and-swap, on every engine -----------------------------------

def test_of_two_conductors_racing_for_a_saga_exactly_one_claims_it(any_api_db):
    uuid = _record()
    owners = [sagas.new_owner_id(), sagas.new_owner_id()]
    assert owners[0] != owners[1]
    barrier = threading.Barrier(2)
    won: dict[str, Saga | None] = {}

    def race(owner: str) -> None:
        barrier.wait()
        won[owner] = Saga.claim(uuid, (sagas.MOVING,), owner=owner)

    threads = [threading.Thread(target=race, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o, saga in won.items() if saga is not None]
    assert len(winners) == 1
    loser = next(o for o in owners if o not in winners)
    row = Saga.load(uuid)
    assert row.owner == winners[0] and row.generation == 1
    # held and not expired: the loser cannot take it, neither as new nor as expired
    assert Saga.claim(uuid, (sagas.MOVING,), from_owner=None, owner=loser) is None
    assert Saga.claim(uuid, (sagas.MOVING,), owner=loser) is None


def test_an_expired_lease_is_taken_over_and_the_old_owner_writes_nothing(any_api_db):
    uuid = _record()
    old = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")
    assert old is not None
    old._set_step("a", sagas.DONE)   # while held, it writes
    _until(lambda: _expired(uuid), "the lease ran out")
    new = Saga.claim(uuid, (sagas.MOVING,), owner="host-b:2:bbbb")
    assert new is not None and new.generation == old.generation + 1
    new.remember(by="b")

    old.status = sagas.FAILED
    old.resources["by"] = "a"
    with pytest.raises(SagaLost):
        old.save()
    with pytest.raises(SagaLost):
        old.renew()
    with pytest.raises(SagaLost):
        old.fence()
    with pytest.raises(SagaLost):   # re-reading does not hand it the new claim
        old.refresh().save()
    old.release()
    row = Saga.load(uuid)
    assert (row.owner, row.generation, row.status) == ("host-b:2:bbbb", new.generation,
                                                        sagas.MOVING)
    assert row.resources == {"by": "b"} and row.step_state("a") == sagas.DONE
    new.status = sagas.ROLLED_BACK
    new.save()                       # the new owner is not disturbed by any of it
    assert Saga.load(uuid).status == sagas.ROLLED_BACK


def test_an_ending_chosen_by_the_api_shuts_out_the_conductor_that_ran_the_move(any_api_db):
    uuid = _record()
    runner = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")
    runner.status = sagas.MOVED
    runner.save()
    assert Saga.transition(uuid, sagas.MOVED, sagas.CONFIRMING) is not None
    with pytest.raises(SagaLost):
        runner.remember(late=True)
    ending = Saga.claim(uuid, (sagas.CONFIRMING,), from_owner=None, owner="host-b:2:bbbb")
    assert ending is not None and ending.generation == runner.generation + 2


def test_a_stale_copy_held_under_the_same_owner_id_cannot_write_after_a_new_claim(
        any_api_db):
    """The generation, not the owner id, is what a write is checked against: the same
    conductor may hold a saga again (it reclaims its own expired lease, or claims the
    ending of a move it ran) while an older copy of it is still around."""
    me = "host-a:1:aaaa"
    uuid = _record()
    first = Saga.claim(uuid, (sagas.MOVING,), owner=me)
    _until(lambda: _expired(uuid), "the lease ran out")
    again = Saga.claim(uuid, (sagas.MOVING,), owner=me)
    assert again is not None and again.generation == first.generation + 1
    first.status = sagas.UNDOING
    with pytest.raises(SagaLost):
        first.save()
    again.status = sagas.MOVED
    again.save()
    assert Saga.transition(uuid, sagas.MOVED, sagas.CONFIRMING) is not None
    ending = Saga.claim(uuid, (sagas.CONFIRMING,), from_owner=None, owner=me)
    assert ending is not None
    with pytest.raises(SagaLost):
        again.remember(late=True)   # a stale copy of the run, under the same owner id
    ending.status = sagas.CONFIRMED
    ending.save()
    row = Saga.load(uuid)
    assert row.status == sagas.CONFIRMED and "late" not in row.resources


def test_the_flip_moves_the_mapping_only_while_the_saga_is_held(any_api_db):
    from transcell import mapping as mappings
    from transcell.db import api_models as am
    from transcell.db.session import api_session
    uuid = _record()
    server = Saga.load(uuid).instance_uuid
    with api_session() as s:
        source = am.CellMapping(uuid=str(uuidlib.uuid4()), name="source",
                                database_connection="x", transport_url="x")
        target = am.CellMapping(uuid=str(uuidlib.uuid4()), name="target",
                                database_connection="x", transport_url="x")
        s.add_all([source, target])
        s.flush()
        s.add(am.InstanceMapping(instance_uuid=server, cell_id=source.id, project_id="p"))
        source_id, target_id = source.id, target.id

    def mapped() -> int:
        with api_session() as s:
            return s.scalar(sqlalchemy.select(am.InstanceMapping.cell_id)
                            .where(am.InstanceMapping.instance_uuid == server))

    overtaken = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")
    Saga.transition(uuid, sagas.MOVING, sagas.UNDOING)
    overtaken.flipped = True
    with pytest.raises(SagaLost):
        overtaken.save(also=lambda s: mappings.map_to(server, target, s))
    assert mapped() == source_id and not Saga.load(uuid).flipped

    held = Saga.claim(uuid, (sagas.UNDOING,), owner="host-b:2:bbbb")
    held.flipped = True

    def broken(s) -> None:
        mappings.map_to(server, target, s)
        raise RuntimeError("the flip broke")
    with pytest.raises(RuntimeError):
        held.save(also=broken)
    assert mapped() == source_id and not Saga.load(uuid).flipped   # neither, together
    held.save(also=lambda s: mappings.map_to(server, target, s))
    assert mapped() == target_id and Saga.load(uuid).flipped


# renewal ---------------------------------------------------------------------------------

def test_renewals_keep_a_step_longer_than_the_lease_owned(api_db):
    uuid = _record()
    held = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")
    held._set_step("a", sagas.RUNNING)
    stolen = []
    with LeaseKeeper(held):
        # the step runs for three leases; the other conductor keeps trying
        deadline = time.monotonic() + 3 * CONF.conductor.move_lease_seconds
        while time.monotonic() < deadline:
            stolen.append(Saga.claim(uuid, (sagas.MOVING,), owner="host-b:2:bbbb"))
            time.sleep(0.1)
    assert len(stolen) > 10 and not any(stolen)
    held._set_step("a", sagas.DONE)
    assert Saga.load(uuid).generation == held.generation


def test_a_keeper_that_finds_the_saga_taken_over_marks_it_lost(api_db):
    uuid = _record()
    held = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")
    with LeaseKeeper(held):
        Saga.transition(uuid, sagas.MOVING, sagas.UNDOING)  # anything that bumps the generation
        _until(lambda: held.lost, "the keeper noticed")
    with pytest.raises(SagaLost):
        held.fence()


# two conductors ----------------------------------------------------------------------------

class FakeMove:
    """Stands in for ``MoveTask``: its steps journal who did what, and one can be held."""

    def __init__(self, name: str, journal: list[tuple[str, str, str]]):
        self.name = name
        self.journal = journal
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.fences = True
        self.runner = Runner([Step(n, self._do(n), self._undo(n)) for n in NAMES])

    def hold(self, step: str) -> tuple[threading.Event, threading.Event]:
        self.holds[step] = (threading.Event(), threading.Event())
        return self.holds[step]

    def _do(self, step: str):
        def run(saga: Saga) -> None:
            if step in self.holds:
                reached, release = self.holds.pop(step)
                reached.set()
                release.wait(WAIT)
            if self.fences:
                saga.fence()
            self.journal.append((self.name, "do", step))
            if step == "flip":
                saga.flipped = True
            saga.resources[f"{step}_by"] = self.name
        return run

    def _undo(self, step: str):
        def run(saga: Saga) -> None:
            self.journal.append((self.name, "undo", step))
            if step == "flip":
                saga.flipped = False
        return run

    def start(self, saga: Saga) -> None:
        self.run(saga)

    def run(self, saga: Saga) -> None:
        try:
            self.runner.forward(saga)
        except SagaLost:
            raise
        except Exception:
            self.roll_back(saga.refresh())
            return
        saga.status = sagas.MOVED
        saga.save()

    def resume(self, saga: Saga) -> None:
        if saga.flipped:
            self.run(saga)
        else:
            self.roll_back(saga)

    def roll_back(self, saga: Saga) -> None:
        saga.status = sagas.UNDOING
        saga.save()
        self.runner.undo(saga)
        saga.status = sagas.ROLLED_BACK
        saga.save()


class Frozen:
    """Freezes one conductor's renewals (as SIGSTOP would) until ``thaw``."""

    def __init__(self, monkeypatch, owner: str):
        self._thawed = threading.Event()
        renew = Saga.renew

        def frozen_renew(saga: Saga) -> None:
            if saga.holder == owner:
                self._thawed.wait(WAIT)
            renew(saga)
        monkeypatch.setattr(Saga, "renew", frozen_renew)

    def thaw(self) -> None:
        self._thawed.set()


def _conductors(journal) -> tuple[MoveTasks, MoveTasks]:
    a = MoveTasks(owner=sagas.new_owner_id(), move=FakeMove("A", journal))
    b = MoveTasks(owner=sagas.new_owner_id(), move=FakeMove("B", journal))
    assert a.owner != b.owner
    return a, b


def _migrate(conductor: MoveTasks, uuid: str) -> threading.Thread:
    thread = threading.Thread(target=conductor.migrate_server,
                              args=(RequestContext.admin(), Saga.load(uuid).instance_uuid,
                                    uuid))
    thread.start()
    return thread


def test_two_conductors_sent_the_same_move_run_it_once(api_db):
    journal: list[tuple[str, str, str]] = []
    a, b = _conductors(journal)
    uuid = _record()
    threads = [_migrate(a, uuid), _migrate(b, uuid)]
    for t in threads:
        t.join(WAIT)
    assert Saga.load(uuid).status == sagas.MOVED
    assert [(what, step) for _, what, step in journal] == [("do", n) for n in NAMES]
    assert len({who for who, _, _ in journal}) == 1
    b.pass_once()  # nothing left to resume
    assert len(journal) == len(NAMES)


def test_a_conductor_in_a_step_longer_than_the_lease_keeps_its_move(api_db):
    journal: list[tuple[str, str, str]] = []
    a, b = _conductors(journal)
    uuid = _record()
    reached, release = a.move.hold("flip")
    running = _migrate(a, uuid)
    assert reached.wait(WAIT)
    deadline = time.monotonic() + 3 * CONF.conductor.move_lease_seconds
    passes = 0
    while time.monotonic() < deadline:
        b.pass_once()   # A's keeper renews: B finds nothing to take
        passes += 1
        time.sleep(0.1)
    assert passes > 10 and Saga.load(uuid).owner == a.owner
    release.set()
    running.join(WAIT)
    assert Saga.load(uuid).status == sagas.MOVED
    assert journal == [("A", "do", n) for n in NAMES]


@pytest.mark.parametrize("fences", [True, False], ids=["step-fences", "step-does-not-fence"])
def test_a_conductor_frozen_before_the_flip_wakes_up_to_a_move_undone_by_another(
        api_db, monkeypatch, fences):
    journal: list[tuple[str, str, str]] = []
    a, b = _conductors(journal)
    a.move.fences = fences
    uuid = _record()
    reached, release = a.move.hold("b")
    frozen = Frozen(monkeypatch, a.owner)
    running = _migrate(a, uuid)
    assert reached.wait(WAIT)

    b.pass_once()                              # A's lease still holds: B leaves it alone
    assert journal == [("A", "do", "a")]
    _until(lambda: _expired(uuid), "A's lease ran out")
    b.pass_once()                              # B takes over and undoes, from the record
    done = Saga.load(uuid)
    assert done.status == sagas.ROLLED_BACK and done.owner == b.owner

    frozen.thaw()
    release.set()                              # A wakes up inside step b
    running.join(WAIT)
    assert not running.is_alive()
    after = Saga.load(uuid)
    assert (after.status, after.owner, after.generation) == (
        sagas.ROLLED_BACK, b.owner, done.generation)
    assert [s["state"] for s in after.steps] == [sagas.UNDONE, sagas.UNDONE, sagas.PENDING,
                                                 sagas.PENDING]
    assert "b_by" not in after.resources       # A's step result was not recorded
    expected = [("A", "do", "a"), ("B", "undo", "b"), ("B", "undo", "a")]
    if not fences:   # a step that never asks still runs to its end, then records nothing
        expected.append(("A", "do", "b"))
    assert journal == expected                 # A never undid, nor went on to the flip


def test_a_conductor_frozen_after_the_flip_wakes_up_to_a_move_finished_by_another(
        api_db, monkeypatch):
    journal: list[tuple[str, str, str]] = []
    a, b = _conductors(journal)
    uuid = _record()
    reached, release = a.move.hold("d")
    frozen = Frozen(monkeypatch, a.owner)
    running = _migrate(a, uuid)
    assert reached.wait(WAIT)
    _until(lambda: _expired(uuid), "A's lease ran out")
    b.pass_once()                              # past the flip: B finishes the move
    done = Saga.load(uuid)
    assert done.status == sagas.MOVED and done.owner == b.owner

    frozen.thaw()
    release.set()
    running.join(WAIT)
    assert not running.is_alive()
    after = Saga.load(uuid)
    assert (after.status, after.generation, after.resources["d_by"]) == (
        sagas.MOVED, done.generation, "B")
    assert journal == [("A", "do", "a"), ("A", "do", "b"), ("A", "do", "flip"),
                       ("B", "do", "d")]       # d done once, nothing undone


def test_a_conductor_takes_over_at_once_from_a_process_that_is_gone(api_db):
    journal: list[tuple[str, str, str]] = []
    _, b = _conductors(journal)
    uuid = _record()
    import socket
    dead = f"{socket.gethostname()}:{2 ** 22 + 7}:dead"   # above any pid_max: never running
    assert Saga.claim(uuid, (sagas.MOVING,), owner=dead) is not None
    assert not _expired(uuid)
    b.pass_once()
    assert Saga.load(uuid).status == sagas.ROLLED_BACK and journal == []


def test_a_move_overtaken_mid_step_is_not_rolled_back_by_the_conductor_that_lost_it(
        api_db, monkeypatch):
    task = MoveTask()
    uuid = _record()
    saga = Saga.claim(uuid, (sagas.MOVING,), owner="host-a:1:aaaa")

    def overtaken(saga: Saga) -> None:
        Saga.transition(uuid, sagas.MOVING, sagas.UNDOING)
        saga.remember(x=1)
    task.runner = Runner([Step("a", overtaken, lambda saga: None)])
    rolled_back = []
    monkeypatch.setattr(task, "roll_back", lambda saga, exc: rolled_back.append(exc))
    with pytest.raises(SagaLost):
        task.run(saga)
    assert rolled_back == []
