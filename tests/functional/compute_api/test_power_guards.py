"""The guards under the everyday server actions: a lock is part of the one conditional
write, so a lock that lands between an action's read and its write still wins; and the
conductor's reclaim takes only soft-deleted servers past the interval."""

from __future__ import annotations

import datetime as dt

import pytest

from transcell import exception
from transcell.compute import instance as inst
from transcell.compute import power_api
from transcell.compute import vm_states as vm
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db.types import utcnow


def test_a_lock_is_part_of_the_conditional_write(cloud):
    sid = cloud.add_instance(cloud.cell1, task_state=None, locked=True, locked_by="owner")
    with pytest.raises(exception.InstanceIsLocked) as caught:
        inst.update(cloud.cell1, sid, expected_task_state=None, expected_vm_state=vm.ACTIVE,
                    expect_unlocked=True, task_state=vm.PAUSING)
    assert caught.value.code == 409
    assert inst.get(cloud.cell1, sid)["task_state"] is None
    # an administrator's action does not ask for it
    inst.update(cloud.cell1, sid, expected_task_state=None, task_state=vm.PAUSING)
    assert inst.get(cloud.cell1, sid)["task_state"] == vm.PAUSING


def test_a_member_cannot_take_a_locked_server_an_admin_can(cloud):
    from transcell.compute.api import API
    sid = cloud.add_instance(cloud.cell1, task_state=None, locked=True, locked_by="owner",
                             host="cell1-host1")
    member = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
    with pytest.raises(exception.InstanceIsLocked):
        power_api.PowerAPI(API())._begin(member, sid, "pause", (vm.ACTIVE,), vm.PAUSING)
    assert inst.get(cloud.cell1, sid)["task_state"] is None


def test_reclaim_takes_only_expired_soft_deleted_servers(cloud):
    CONF.set_override("reclaim_instance_interval", 60, group="compute")
    try:
        old = utcnow() - dt.timedelta(seconds=120)
        expired = cloud.add_instance(cloud.cell1, vm_state=vm.SOFT_DELETED, deleted_at=old)
        fresh = cloud.add_instance(cloud.cell2, vm_state=vm.SOFT_DELETED, deleted_at=utcnow())
        busy = cloud.add_instance(cloud.cell1, vm_state=vm.SOFT_DELETED, deleted_at=old,
                                  task_state=vm.RESTORING)
        active = cloud.add_instance(cloud.cell2, deleted_at=old)
        assert power_api.reclaim_expired() == [expired]
        with pytest.raises(exception.InstanceNotFound):
            inst.get(cloud.cell1, expired)
        for cell, sid in ((cloud.cell2, fresh), (cloud.cell1, busy), (cloud.cell2, active)):
            assert inst.get(cell, sid)["deleted"] == 0
    finally:
        CONF.clear_override("reclaim_instance_interval", group="compute")
    assert power_api.reclaim_expired() == []
