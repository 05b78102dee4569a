"""Where a move goes: the source cell when a host there fits, another cell when the
flavor or the operator says so, and never the server's own host."""

from __future__ import annotations

import os

import movehelpers as mh

COMPUTE = mh.COMPUTE


def _finish(cloud, sid: str) -> None:
    mh.action(cloud, sid, {"confirmResize": None}, expect=204)
    mh.wait_status(cloud, sid, "ACTIVE")
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_cold_migrate_stays_in_the_source_cell_when_a_host_there_fits(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "migrate-same-cell", flavor="1")
    sid, src = srv["id"], mh.host_of(srv)
    mh.action(cloud, sid, {"migrate": None})
    found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    dst = mh.host_of(found)
    assert dst != src and mh.cell_of_host(dst) == mh.cell_of_host(src)
    mig = mh.migrations(cloud, sid)[0]
    assert mig["migration_type"] == "migration" and mig["status"] == "finished"
    assert mh.provider_allocations(cloud, src)[mig["uuid"]]
    assert [r["cell"] for r in mh.locate(cloud, sid)["rows"]] == [mh.cell_of_host(src)]
    mh.assert_audit_clean(cloud)
    _finish(cloud, sid)


def test_cold_migrate_to_a_host_in_another_cell(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "migrate-to-host", flavor="1")
    sid, src = srv["id"], mh.host_of(srv)
    target = "cell2-host2" if mh.cell_of_host(src) == "cell1" else "cell1-host2"
    mh.action(cloud, sid, {"migrate": {"host": target}}, version="2.56")
    found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
    assert mh.host_of(found) == target
    assert found["flavor"]["original_name"] == "m1.tiny"
    assert {r["cell"]: r["hidden"] for r in mh.locate(cloud, sid)["rows"]} == {
        mh.cell_of_host(src): True, mh.cell_of_host(target): False}
    mh.action(cloud, sid, {"revertResize": None})
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.host_of(found) == src
    mh.assert_audit_clean(cloud)
    cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    cloud.wait_gone(sid)


def test_migrate_to_its_own_host_is_refused(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "migrate-own-host", flavor="1")
    resp = mh.action(cloud, srv["id"], {"migrate": {"host": mh.host_of(srv)}}, expect=400,
                     version="2.56")
    assert "same" in resp.json()["badRequest"]["message"]
    cloud.request("DELETE", f"{COMPUTE}/servers/{srv['id']}")
    cloud.wait_gone(srv["id"])


def test_a_negative_aggregate_multiplier_drains_the_source_cell(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "drain", flavor="1")
    sid, src = srv["id"], mh.host_of(srv)
    cell = mh.cell_of_host(src)
    resp = cloud.request("POST", f"{COMPUTE}/os-aggregates",
                         json={"aggregate": {"name": f"drain-{cell}"}})
    assert resp.status_code == 200, resp.text
    agg = resp.json()["aggregate"]["id"]
    try:
        for host in (f"{cell}-host1", f"{cell}-host2"):
            resp = cloud.request("POST", f"{COMPUTE}/os-aggregates/{agg}/action",
                                 json={"add_host": {"host": host}})
            assert resp.status_code == 200, resp.text
        resp = cloud.request("POST", f"{COMPUTE}/os-aggregates/{agg}/action", json={
            "set_metadata": {"metadata": {"cross_cell_move_weight_multiplier": "-1000000"}}})
        assert resp.status_code == 200, resp.text
        mh.action(cloud, sid, {"migrate": None})
        found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
        assert mh.cell_of_host(mh.host_of(found)) != cell
        _finish(cloud, sid)
    finally:
        for host in (f"{cell}-host1", f"{cell}-host2"):
            cloud.request("POST", f"{COMPUTE}/os-aggregates/{agg}/action",
                          json={"remove_host": {"host": host}})
        cloud.request("DELETE", f"{COMPUTE}/os-aggregates/{agg}")


def test_without_the_cross_cell_rule_a_resize_needing_another_cell_fails(mcloud):
    """Policy forbids crossing cells: the gen2 flavor fits nowhere in the source cell,
    so the move ends in NoValidHost and the server is untouched."""
    cloud = mcloud
    policy = os.path.join(cloud.state_dir, "policy.yaml")
    srv = mh.boot(cloud, "no-cross")
    sid, src = srv["id"], mh.host_of(srv)
    with open(policy, "w") as fh:
        fh.write('"compute:servers:resize:cross_cell": "!"\n')
    try:
        mh.action(cloud, sid, {"resize": {"flavorRef": "21"}})
        found = mh.wait_task_done(cloud, sid)
        assert found["status"] == "ACTIVE" and mh.host_of(found) == src
        assert mh.wait_migration(cloud, sid, "error")
        history = mh.actions(cloud, sid)["resize"]
        assert [e["result"] for e in history if e["event"] == "conductor_migrate_server"] == [
            "Error"]
        # a move inside the cell is still allowed
        mh.action(cloud, sid, {"migrate": None})
        found = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
        assert mh.cell_of_host(mh.host_of(found)) == mh.cell_of_host(src)
    finally:
        with open(policy, "w") as fh:
            fh.write("{}\n")
    mh.assert_audit_clean(cloud)
    _finish(cloud, sid)
