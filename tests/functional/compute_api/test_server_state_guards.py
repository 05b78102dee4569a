"""The guards under the API's answers: the one conditional write of a server's state (its
race on every engine is in tests/functional/db/test_conditional_state.py), the count of a
project's usage while a move is in flight, and the sweep that gives back a server a dead
API process left looking busy."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

import pytest

from transcell import exception, quota
from transcell.compute import instance as inst
from transcell.conductor.moves import MoveTasks
from transcell.db.types import utcnow
from transcell.move import saga as sagas
from transcell.move.saga import Saga


def test_an_unexpected_vm_state_is_a_conflict_and_changes_nothing(cloud):
    sid = cloud.add_instance(cloud.cell1, vm_state="stopped", task_state=None)
    with pytest.raises(inst.UnexpectedVMState) as caught:
        inst.update(cloud.cell1, sid, expected_task_state=None, expected_vm_state="active",
                    task_state="powering-off")
    assert caught.value.code == 409
    assert inst.get(cloud.cell1, sid)["task_state"] is None
    with pytest.raises(exception.InstanceNotFound):
        inst.update(cloud.cell1, str(uuidlib.uuid4()), expected_task_state=None, task_state="x")


def _moving(cloud, sid: str, old: dict, new: dict, status: str = sagas.MOVING) -> Saga:
    saga = Saga.create(str(uuidlib.uuid4()), sid, "resize", ["a"],
                       {"project_id": "demo-project", "old_flavor": old, "new_flavor": new},
                       {"user_id": "demo"}, owner=sagas.OWNER)
    saga.status = status
    saga.save()
    return saga


def test_a_moving_server_counts_at_the_larger_of_its_flavors(cloud):
    small = {"vcpus": 1, "memory_mb": 512}
    large = {"vcpus": 4, "memory_mb": 4096}
    growing = cloud.add_instance(cloud.cell1, vcpus=1, memory_mb=512)
    shrunk = cloud.add_instance(cloud.cell2, vcpus=1, memory_mb=512)
    cloud.add_instance(cloud.cell1, vcpus=2, memory_mb=1024)
    assert quota.usage("demo-project") == {"instances": 3, "cores": 4, "ram": 2048}
    _moving(cloud, growing, small, large)                  # before its flip: old flavor shows
    _moving(cloud, shrunk, large, small, sagas.MOVED)      # after: revert would need 4 again
    assert quota.usage("demo-project") == {"instances": 3, "cores": 10, "ram": 9216}


def test_recheck_refuses_only_a_change_that_grew_a_resource_over_its_limit(cloud):
    from transcell.conf import CONF
    cloud.add_instance(cloud.cell1, vcpus=3, memory_mb=512)
    CONF.set_override("cores", 2, group="quota")
    try:
        with pytest.raises(exception.OverQuota) as caught:
            quota.recheck("demo-project", instances=1, cores=3)
        assert caught.value.message == \
            "Quota exceeded for cores: Requested 3, but already used 0 of 2 cores"
        quota.recheck("demo-project", ram=512)  # cores did not grow: over, but not refused
    finally:
        CONF.clear_override("cores", group="quota")


def test_the_sweep_gives_back_only_servers_left_busy_with_no_move(cloud):
    old = utcnow() - dt.timedelta(minutes=5)
    stranded = cloud.add_instance(cloud.cell1, task_state="resize_prep", updated_at=old)
    recent = cloud.add_instance(cloud.cell1, task_state="resize_prep", updated_at=utcnow())
    owned = cloud.add_instance(cloud.cell2, task_state="resize_migrating", updated_at=old)
    _moving(cloud, owned, {"vcpus": 1}, {"vcpus": 1})
    powering = cloud.add_instance(cloud.cell1, task_state="powering-off", updated_at=old)
    assert MoveTasks().sweep_stranded(older_than=60) == [stranded]
    assert inst.get(cloud.cell1, stranded)["task_state"] is None
    assert inst.get(cloud.cell1, recent)["task_state"] == "resize_prep"
    assert inst.get(cloud.cell2, owned)["task_state"] == "resize_migrating"
    assert inst.get(cloud.cell1, powering)["task_state"] == "powering-off"
