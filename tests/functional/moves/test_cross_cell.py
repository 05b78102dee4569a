"""Cross-cell resize, confirm, revert and delete through the public API of a running
cloud, checked against the reference lists: V at VERIFY_RESIZE, C after confirm,
R after revert, D after delete."""

from __future__ import annotations

import time

import movehelpers as mh
import pytest

COMPUTE = mh.COMPUTE


def wait_for(check, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} never held (last: {last})")


def usage(cloud, host: str) -> tuple[int, int, int]:
    hyp = mh.hypervisors(cloud)[host]
    return hyp["vcpus_used"], hyp["memory_mb_used"], hyp["local_gb_used"]


def plus(a, b, sign=1):
    return tuple(x + sign * y for x, y in zip(a, b, strict=True))


def fl_usage(flavor: dict) -> tuple[int, int, int]:
    return flavor["vcpus"], flavor["ram"], flavor["disk"]


def resize_to_verify(cloud, server_id: str, body: dict) -> dict:
    """As the server's owner (a project member), not as an admin."""
    mh.action(cloud, server_id, body, cloud_name=mh.USER)
    return mh.wait_status(cloud, server_id, "VERIFY_RESIZE", timeout=120)


def check_verify(cloud, server_id: str, src_host: str, old: dict, new: dict,
                 power_state: int, before: dict) -> dict:
    """Check-list V: one server, one migration, history, allocations, usage, rows."""
    found = mh.server(cloud, server_id)
    dst_host = mh.host_of(found)
    assert mh.cell_of_host(dst_host) != mh.cell_of_host(src_host)                  # V1
    listed = [s for s in cloud.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1",
                                       version="2.53").json()["servers"]
              if s["id"] == server_id]
    assert len(listed) == 1 and mh.host_of(listed[0]) == dst_host                   # V2
    migs = mh.migrations(cloud, server_id)
    assert len(migs) == 1 and migs[0]["status"] == "finished"                       # V3
    history = mh.actions(cloud, server_id)
    assert all(history.values()), history                                           # V4
    assert found["tags"] == ["test"]                                                # V5
    mig = migs[0]["uuid"]
    src_allocs = mh.provider_allocations(cloud, src_host)                           # V6
    assert src_allocs.get(mig) == mh.flavor_resources(old)
    assert server_id not in src_allocs
    assert mh.provider_allocations(cloud, dst_host).get(server_id) == \
        mh.flavor_resources(new)
    assert found["OS-EXT-AZ:availability_zone"] == mh.cell_of_host(dst_host)        # V7
    assert found["flavor"]["original_name"] == new["name"]                          # V8
    wait_for(lambda: usage(cloud, src_host) == before[src_host], what="source usage")
    wait_for(lambda: usage(cloud, dst_host) == plus(before[dst_host], fl_usage(new)),
             what="target usage")                                                   # V12
    assert found["OS-EXT-STS:power_state"] == power_state                           # V15
    assert found["image"]["id"] == mh.image_id(cloud)                               # V16
    where = mh.locate(cloud, server_id)
    rows = {r["cell"]: r for r in where["rows"]}
    assert where["mapping"]["cell"] == mh.cell_of_host(dst_host)
    assert rows[mh.cell_of_host(src_host)]["hidden"] is True
    assert rows[mh.cell_of_host(dst_host)]["hidden"] is False
    assert rows[mh.cell_of_host(dst_host)]["flavor"] == new["name"]
    snapshots = cloud.request("GET", "/image/v2/images?os_hidden=true").json()["images"]
    assert not [i for i in snapshots if i.get("transcell_migration") == mig]
    mh.assert_audit_clean(cloud)
    return {"dst_host": dst_host, "migration": mig}


def test_resize_across_cells_then_confirm(mcloud):
    cloud = mcloud
    old, new = mh.flavor(cloud, "11"), mh.flavor(cloud, "21")
    srv = mh.boot(cloud, "resize-confirm")
    sid, src = srv["id"], mh.host_of(srv)
    before = {h: usage(cloud, h) for h in mh.hypervisors(cloud)}
    resize_to_verify(cloud, sid, {"resize": {"flavorRef": "21"}})
    got = check_verify(cloud, sid, src, old, new, 1, before)
    dst, mig = got["dst_host"], got["migration"]

    mh.action(cloud, sid, {"confirmResize": None}, expect=204, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(found) == dst
    assert mh.wait_migration(cloud, sid, "confirmed")["uuid"] == mig               # C1
    assert mig not in mh.provider_allocations(cloud, src)                          # C2
    assert mh.provider_allocations(cloud, dst)[sid] == mh.flavor_resources(new)
    assert mh.consumer_allocations(cloud, mig) == {}
    events = {e["event"]: e["result"] for e in mh.actions(cloud, sid)["confirmResize"]}
    assert events == {"conductor_confirm_snapshot_based_resize": "Success",       # C3
                      "compute_confirm_snapshot_based_resize_at_source": "Success"}
    wait_for(lambda: usage(cloud, src) == plus(before[src], fl_usage(old), -1),
             what="source usage dropped")                                         # C5
    rows = mh.locate(cloud, sid)["rows"]
    assert [r["cell"] for r in rows] == [mh.cell_of_host(dst)]
    assert not [d for d in mh.locate(cloud, sid)["disks"] if d["host"] == src]    # C4
    names = mh.events_of(cloud, sid)
    assert names[-2:] == ["instance.resize_confirm.start", "instance.resize_confirm.end"]  # C6
    assert "instance.resize.start" in names and "instance.resize.end" in names
    mh.assert_audit_clean(cloud)
    result = cloud.transcell("migration", "show", mig, "--json")
    assert '"status": "confirmed"' in result.stdout
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_resize_across_cells_then_revert(mcloud):
    cloud = mcloud
    old, new = mh.flavor(cloud, "11"), mh.flavor(cloud, "22")
    srv = mh.boot(cloud, "resize-revert")
    sid, src = srv["id"], mh.host_of(srv)
    before = {h: usage(cloud, h) for h in mh.hypervisors(cloud)}
    got = check_verify(cloud, sid, src, old, new, 1,
                       before) if resize_to_verify(cloud, sid,
                                                   {"resize": {"flavorRef": "22"}}) else None
    dst, mig = got["dst_host"], got["migration"]
    mh.action(cloud, sid, {"revertResize": None}, expect=202, cloud_name=mh.USER)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(found) == src and found["flavor"]["original_name"] == old["name"]  # R1
    assert mh.wait_migration(cloud, sid, "reverted")["uuid"] == mig                     # R2
    assert sid not in mh.provider_allocations(cloud, dst)                                # R3
    assert mh.provider_allocations(cloud, src)[sid] == mh.flavor_resources(old)
    assert mh.consumer_allocations(cloud, mig) == {}
    events = mh.actions(cloud, sid)["revertResize"]                                      # R4
    hosts = {"conductor_revert_snapshot_based_resize": None,
             "compute_revert_snapshot_based_resize_at_dest": dst,
             "compute_finish_revert_snapshot_based_resize_at_source": src}
    # events carry their host from microversion 2.62
    assert {e["event"]: (e["result"], e.get("host", hosts.get(e["event"]))) for e in events} \
        == {name: ("Success", host) for name, host in hosts.items()}
    disks = {d["host"] for d in mh.locate(cloud, sid)["disks"]}                          # R5
    assert disks == {src}
    wait_for(lambda: usage(cloud, dst) == before[dst], what="target usage back")        # R6
    wait_for(lambda: usage(cloud, src) == before[src], what="source usage kept")
    names = mh.events_of(cloud, sid)                                                     # R7
    assert names[-3:] == ["instance.resize_revert.start", "instance.exists",
                          "instance.resize_revert.end"]
    assert [r["cell"] for r in mh.locate(cloud, sid)["rows"]] == [mh.cell_of_host(src)]
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_resize_from_stopped_keeps_it_stopped(mcloud):
    cloud = mcloud
    old, new = mh.flavor(cloud, "11"), mh.flavor(cloud, "21")
    srv = mh.boot(cloud, "resize-stopped", stopped=True)
    sid, src = srv["id"], mh.host_of(srv)
    before = {h: usage(cloud, h) for h in mh.hypervisors(cloud)}
    resize_to_verify(cloud, sid, {"resize": {"flavorRef": "21"}})
    check_verify(cloud, sid, src, old, new, 4, before)
    assert len(mh.actions(cloud, sid)) >= 3                                              # V4
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    found = mh.wait_status(cloud, sid, "SHUTOFF")
    assert found["OS-EXT-STS:power_state"] == 4
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_delete_in_verify_resize_cleans_both_cells(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "delete-verify")
    sid, src = srv["id"], mh.host_of(srv)
    found = resize_to_verify(cloud, sid, {"resize": {"flavorRef": "21"}})
    dst = mh.host_of(found)
    mig = mh.migrations(cloud, sid)[0]["uuid"]                                          # D1
    resp = cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    assert resp.status_code == 204, resp.text
    cloud.wait_gone(sid)                                                                 # D2
    wait_for(lambda: mh.consumer_allocations(cloud, sid) == {}, what="server allocations")
    assert mh.consumer_allocations(cloud, mig) == {}                                     # D3
    for host in (src, dst):
        assert sid not in mh.provider_allocations(cloud, host)
        assert mig not in mh.provider_allocations(cloud, host)
    where = mh.locate(cloud, sid)                                                        # D5
    assert [(r["cell"], r["deleted"]) for r in where["rows"]] == [
        (mh.cell_of_host(dst), True)]
    assert where["disks"] == []
    snapshots = cloud.request("GET", "/image/v2/images?os_hidden=true").json()["images"]
    assert not [i for i in snapshots if i.get("transcell_migration") == mig]
    mh.assert_audit_clean(cloud)


def test_revert_after_the_old_flavor_was_deleted(mcloud):
    cloud = mcloud
    body = {"flavor": {"name": "gen1.doomed", "ram": 768, "vcpus": 1, "disk": 3,
                       "id": "gen1-doomed"}}
    resp = cloud.request("POST", f"{COMPUTE}/flavors", json=body)
    assert resp.status_code == 200, resp.text
    resp = cloud.request("POST", f"{COMPUTE}/flavors/gen1-doomed/os-extra_specs",
                         json={"extra_specs": {"trait:CUSTOM_HW_GEN1": "required"}})
    assert resp.status_code == 200, resp.text
    srv = mh.boot(cloud, "revert-deleted-flavor", flavor="gen1-doomed")
    sid, src = srv["id"], mh.host_of(srv)
    resize_to_verify(cloud, sid, {"resize": {"flavorRef": "21"}})
    assert cloud.request("DELETE", f"{COMPUTE}/flavors/gen1-doomed").status_code == 202
    mh.action(cloud, sid, {"revertResize": None})
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(found) == src
    assert found["flavor"]["original_name"] == "gen1.doomed"
    assert (found["flavor"]["vcpus"], found["flavor"]["ram"], found["flavor"]["disk"]) == \
        (1, 768, 3)
    assert mh.provider_allocations(cloud, src)[sid] == {"VCPU": 1, "MEMORY_MB": 768,
                                                        "DISK_GB": 3}
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_back_and_forth_twice(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "ping-pong")
    sid = srv["id"]
    hosts = [mh.host_of(srv)]
    for flavor_id in ("21", "12", "22", "12"):
        found = resize_to_verify(cloud, sid, {"resize": {"flavorRef": flavor_id}})
        mh.action(cloud, sid, {"confirmResize": None}, expect=204)
        found = mh.wait_status(cloud, sid, "ACTIVE")
        hosts.append(mh.host_of(found))
        assert [r["cell"] for r in mh.locate(cloud, sid)["rows"]] == [
            mh.cell_of_host(hosts[-1])]
    cells = [mh.cell_of_host(h) for h in hosts]
    assert cells == ["cell1", "cell2", "cell1", "cell2", "cell1"]
    statuses = [m["status"] for m in mh.migrations(cloud, sid)]
    assert statuses == ["confirmed"] * 4
    assert len(mh.actions(cloud, sid)) >= 3
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


@pytest.mark.parametrize("body, status, fragment", [
    ({"resize": {"flavorRef": "11"}}, 400, "must change flavor"),
    ({"resize": {"flavorRef": "nope"}}, 400, "could not be found"),
    ({"resize": {"flavorRef": None}}, 400, "flavorRef"),
    ({"resize": {"flavorRef": "1"}}, 400, "resize disk down"),
    ({"resize": {}}, 400, "flavorRef"),
    ({"confirmResize": None}, 409, "vm_state active"),
    ({"revertResize": None}, 409, "vm_state active"),
    ({"migrate": {"host": "nowhere"}}, 400, "nowhere"),
])
def test_bad_moves_change_nothing(mcloud, body, status, fragment):
    cloud = mcloud
    srv = getattr(test_bad_moves_change_nothing, "server", None)
    if srv is None:
        srv = mh.boot(cloud, "bad-moves")
        test_bad_moves_change_nothing.server = srv
    before = mh.server(cloud, srv["id"])
    resp = mh.action(cloud, srv["id"], body, expect=status, version="2.56")
    fault = next(iter(resp.json().values()))
    assert fault["code"] == status and fragment in fault["message"], fault
    after = mh.server(cloud, srv["id"])
    assert (after["status"], after["flavor"], mh.host_of(after), after["updated"]) == \
        (before["status"], before["flavor"], mh.host_of(before), before["updated"])
    assert mh.migrations(cloud, srv["id"]) == []


def test_unknown_server_moves_are_404(mcloud):
    for body in ({"resize": {"flavorRef": "21"}}, {"migrate": None},
                 {"confirmResize": None}, {"revertResize": None}):
        resp = mh.action(mcloud, "00000000-1111-2222-3333-444444444444", body, expect=404)
        assert resp.json()["itemNotFound"]["code"] == 404


def test_resize_while_resizing_is_409(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "double-resize")
    sid = srv["id"]
    mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
    resp = mh.action(cloud, sid, {"resize": {"flavorRef": "22"}}, expect=409)
    assert "task_state" in resp.json()["conflictingRequest"]["message"]
    mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    assert len(mh.migrations(cloud, sid)) == 1
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)
