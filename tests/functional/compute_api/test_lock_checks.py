"""One lock check for every server action: a member's request on a locked server is
refused with Nova's 409 and the same words whichever module serves it (power, moves,
delete, volumes, images, shelve), and nothing about the server changes."""

from __future__ import annotations

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import ADMIN, DEMO

from transcell import exception
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.compute import instance as inst
from transcell.compute import shelving
from transcell.compute.api import API
from transcell.compute.shelve_api import ShelveAPI
from transcell.context import RequestContext

VOLUME = "8d7f3c2e-3b57-4e0e-9a8e-0d6f1f0c2a11"

#: (action body, vm_state the server is in): each would pass its state check
ACTIONS = [
    ({"os-stop": None}, "active"),
    ({"os-start": None}, "stopped"),
    ({"resize": {"flavorRef": "2"}}, "active"),
    ({"confirmResize": None}, "resized"),
    ({"revertResize": None}, "resized"),
    ({"createImage": {"name": "snap"}}, "active"),
    ({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}, "active"),
    ({"shelve": None}, "active"),
    ({"unshelve": None}, shelving.SHELVED_OFFLOADED),
    ({"pause": None}, "active"),
]


@pytest.fixture
def lcloud(cloud):
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    return cloud


def _locked(cloud, vm_state: str) -> str:
    return cloud.add_instance(cloud.cell1, task_state=None, vm_state=vm_state, locked=True,
                              locked_by="admin", host="cell1-host1", node="cell1-host1")


def _refused(resp, sid: str) -> None:
    assert resp.status_int == 409, resp.body
    assert resp.json == {"conflictingRequest": {"code": 409,
                                                "message": f"Instance {sid} is locked"}}


def _unchanged(cloud, sid: str, vm_state: str) -> None:
    row = inst.get(cloud.cell1, sid)
    assert (row["vm_state"], row["task_state"], row["deleted"]) == (vm_state, None, 0)


@pytest.mark.parametrize(("body", "vm_state"), ACTIONS, ids=lambda v: next(iter(v))
                         if isinstance(v, dict) else v)
def test_a_member_cannot_act_on_a_locked_server(lcloud, body, vm_state):
    lcloud.add_flavor("2", "other", memory_mb=1024)
    sid = _locked(lcloud, vm_state)
    _refused(lcloud.post(f"/servers/{sid}/action", body, token=DEMO, version="2.79"), sid)
    _unchanged(lcloud, sid, vm_state)


def test_delete_and_volume_changes_of_a_locked_server(lcloud):
    sid = _locked(lcloud, "active")
    _refused(lcloud.delete(f"/servers/{sid}", token=DEMO), sid)
    _refused(lcloud.post(f"/servers/{sid}/os-volume_attachments",
                         {"volumeAttachment": {"volumeId": VOLUME}}, token=DEMO), sid)
    _refused(lcloud.delete(f"/servers/{sid}/os-volume_attachments/{VOLUME}", token=DEMO), sid)
    _unchanged(lcloud, sid, "active")


def test_admin_only_actions_check_the_lock_too(lcloud):
    """Migrate and shelveOffload are an administrator's by default policy; a deployment
    that gives them to members still finds the lock in their way."""
    member = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
    sid = _locked(lcloud, "active")
    with pytest.raises(exception.InstanceIsLocked) as caught:
        API().migrate(member, sid, None, allow_cross_cell=True)
    assert (caught.value.code, caught.value.message) == (409, f"Instance {sid} is locked")
    shelved = _locked(lcloud, shelving.SHELVED)
    with pytest.raises(exception.InstanceIsLocked):
        ShelveAPI(API()).shelve_offload(member, shelved)
    _unchanged(lcloud, sid, "active")
    _unchanged(lcloud, shelved, shelving.SHELVED)


def test_an_admin_passes_the_lock(lcloud):
    """The administrator is past the lock: the answer is whatever comes next, not 409
    for the lock (here the volume is unknown, 404)."""
    sid = _locked(lcloud, "active")
    resp = lcloud.post(f"/servers/{sid}/os-volume_attachments",
                       {"volumeAttachment": {"volumeId": VOLUME}}, token=ADMIN)
    assert resp.status_int != 409 and b"is locked" not in resp.body, resp.body
