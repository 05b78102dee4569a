"""Soft delete with ``[compute] reclaim_instance_interval``: a deleted server stays
listed as SOFT_DELETED, ``restore`` brings it back, ``forceDelete`` ends it at once,
and the conductor reclaims it once the interval has passed."""

from __future__ import annotations

import time

from powerhelpers import (
    ADMIN,
    COMPUTE,
    OTHER,
    RECLAIM_SECONDS,
    USER,
    act,
    assert_audit_clean,
    boot,
    error,
    events,
    force_delete,
    ok,
    show,
)


def _delete(cloud, server_id: str, cloud_name: str = USER) -> None:
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}", cloud=cloud_name)
    assert resp.status_code == 204, resp.text


def _listed(cloud, cloud_name: str = USER) -> dict[str, str]:
    resp = cloud.request("GET", f"{COMPUTE}/servers/detail", cloud=cloud_name)
    assert resp.status_code == 200, resp.text
    return {s["id"]: s["status"] for s in resp.json()["servers"]}


def test_delete_is_soft_and_restore_brings_the_server_back(pcloud):
    sid = boot(pcloud, "soft-restore")["id"]
    try:
        _delete(pcloud, sid)
        gone = pcloud.wait_status(sid, "SOFT_DELETED")
        assert (gone["OS-EXT-STS:vm_state"], gone["OS-EXT-STS:power_state"]) == \
            ("soft-delete", 4)
        assert _listed(pcloud)[sid] == "SOFT_DELETED"
        # soft-deleted: nothing but restore, forceDelete and delete
        for body in ({"reboot": {"type": "HARD"}}, {"pause": None}, {"os-start": None}):
            error(act(pcloud, sid, body), 409, "conflictingRequest")
        error(act(pcloud, sid, {"restore": None}, cloud_name=OTHER), 404, "itemNotFound")
        ok(pcloud, sid, {"restore": None})
        restored = pcloud.wait_status(sid, "ACTIVE")
        assert restored["OS-EXT-STS:power_state"] == 1
        error(act(pcloud, sid, {"restore": None}), 409, "conflictingRequest")
        assert [a["action"] for a in events(pcloud, sid)][:2] == ["restore", "delete"]
        # restored for good: the conductor's pass does not take it later
        time.sleep(RECLAIM_SECONDS + 3)
        assert show(pcloud, sid)["status"] == "ACTIVE"
    finally:
        force_delete(pcloud, sid)


def test_force_delete_ends_a_soft_deleted_server_at_once(pcloud):
    sid = boot(pcloud, "soft-force")["id"]
    _delete(pcloud, sid)
    pcloud.wait_status(sid, "SOFT_DELETED")
    ok(pcloud, sid, {"forceDelete": None})
    pcloud.wait_gone(sid, timeout=RECLAIM_SECONDS - 1)
    assert sid not in _listed(pcloud)


def test_a_locked_server_is_neither_restored_nor_force_deleted_by_a_member(pcloud):
    sid = boot(pcloud, "soft-locked")["id"]
    try:
        _delete(pcloud, sid)
        pcloud.wait_status(sid, "SOFT_DELETED")
        ok(pcloud, sid, {"lock": None}, cloud_name=ADMIN)
        for body in ({"restore": None}, {"forceDelete": None}):
            assert "is locked" in error(act(pcloud, sid, body), 409, "conflictingRequest")
        assert show(pcloud, sid)["status"] == "SOFT_DELETED"
    finally:
        force_delete(pcloud, sid)


def test_the_conductor_reclaims_expired_soft_deleted_servers(pcloud):
    sid = boot(pcloud, "soft-reclaim")["id"]
    _delete(pcloud, sid)
    deleted_at = time.monotonic()
    pcloud.wait_status(sid, "SOFT_DELETED")
    pcloud.wait_gone(sid, timeout=RECLAIM_SECONDS + 30)
    assert time.monotonic() - deleted_at >= RECLAIM_SECONDS - 1
    assert sid not in _listed(pcloud)
    # gone with its port and its allocation, like any delete
    ports = pcloud.request("GET", f"/network/v2.0/ports?device_id={sid}").json()["ports"]
    assert ports == []
    # its mapping was queued for delete with it: nothing the audit would call a leftover
    assert_audit_clean(pcloud)
