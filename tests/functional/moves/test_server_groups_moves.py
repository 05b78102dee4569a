"""Server groups on a real two-cell cloud (2 hosts per cell): builds into a group land
as its policy says, across both cells, and every move is held to the group."""

from __future__ import annotations

import movehelpers as mh

COMPUTE = mh.COMPUTE
ALL_HOSTS = {"cell1-host1", "cell1-host2", "cell2-host1", "cell2-host2"}


def _group(cloud, policy: str, rules: dict | None = None, cloud_name: str = mh.USER) -> str:
    body: dict = {"name": f"g-{policy}", "policy": policy}
    if rules:
        body["rules"] = rules
    resp = cloud.request("POST", f"{COMPUTE}/os-server-groups", cloud=cloud_name,
                         json={"server_group": body}, version="2.64")
    assert resp.status_code == 200, resp.text
    return resp.json()["server_group"]["id"]


def _members(cloud, group_id: str) -> list[str]:
    resp = cloud.request("GET", f"{COMPUTE}/os-server-groups/{group_id}", version="2.64")
    assert resp.status_code == 200, resp.text
    return resp.json()["server_group"]["members"]


def _boot_into(cloud, name: str, group_id: str, count: int = 1, flavor: str = "1",
               cloud_name: str = mh.USER, host: str | None = None) -> list[str]:
    server = {"name": name, "flavorRef": flavor, "imageRef": mh.image_id(cloud),
              "networks": [{"uuid": mh.network_id(cloud)}], "min_count": count,
              "max_count": count, "return_reservation_id": True}
    if host:
        server["host"] = host
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=cloud_name, version="2.74",
                         json={"server": server, "os:scheduler_hints": {"group": group_id}})
    assert resp.status_code == 202, resp.text
    reservation = resp.json()["reservation_id"]
    listed = cloud.request("GET", f"{COMPUTE}/servers?all_tenants=1&reservation_id="
                           f"{reservation}").json()["servers"]
    assert len(listed) == count
    return sorted(s["id"] for s in listed)


def _wait_built(cloud, server_id: str) -> dict:
    """The server once its build ended, ACTIVE or ERROR."""
    import time
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = mh.server(cloud, server_id)
        if found["status"] in ("ACTIVE", "ERROR") and found["OS-EXT-STS:task_state"] is None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{server_id} still building")


def _delete(cloud, *server_ids: str) -> None:
    for sid in server_ids:
        cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    for sid in server_ids:
        cloud.wait_gone(sid)


def _delete_group(cloud, group_id: str) -> None:
    cloud.request("DELETE", f"{COMPUTE}/os-server-groups/{group_id}")


def test_anti_affinity_spreads_over_both_cells_and_holds_on_migrate(mcloud):
    cloud = mcloud
    gid = _group(cloud, "anti-affinity")
    servers = _boot_into(cloud, "spread", gid, count=4)
    try:
        hosts = {sid: mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers}
        assert set(hosts.values()) == ALL_HOSTS  # one per host, both cells
        assert sorted(_members(cloud, gid)) == servers
        shown = mh.server(cloud, servers[0], version="2.71")
        assert shown["server_groups"] == [gid]
        # a fifth member fits nowhere: its build fails, naming the group
        fifth = _boot_into(cloud, "spread-5", gid)[0]
        found = _wait_built(cloud, fifth)
        assert found["status"] == "ERROR"
        assert gid in found["fault"]["message"] and "anti-affinity" in found["fault"]["message"]
        _delete(cloud, fifth)
        assert fifth not in _members(cloud, gid)
        # every host runs a member: a migration has nowhere to go and changes nothing
        moving = servers[0]
        mh.action(cloud, moving, {"migrate": None})
        found = mh.wait_task_done(cloud, moving)
        assert found["status"] == "ACTIVE" and mh.host_of(found) == hosts[moving]
        assert mh.wait_migration(cloud, moving, "error")
        # free a host in the other cell: the migration must cross cells to reach it
        other_cell = next(sid for sid in servers if mh.cell_of_host(hosts[sid])
                          != mh.cell_of_host(hosts[moving]))
        _delete(cloud, other_cell)
        servers.remove(other_cell)
        assert other_cell not in _members(cloud, gid)
        mh.action(cloud, moving, {"migrate": None})
        found = mh.wait_status(cloud, moving, "VERIFY_RESIZE")
        assert mh.host_of(found) == hosts[other_cell]
        mh.action(cloud, moving, {"confirmResize": None}, expect=204)
        mh.wait_status(cloud, moving, "ACTIVE")
        placed = {mh.host_of(mh.server(cloud, sid)) for sid in servers}
        assert len(placed) == len(servers)  # still one member per host
        mh.assert_audit_clean(cloud)
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_affinity_keeps_members_together_and_refuses_a_migration(mcloud):
    cloud = mcloud
    gid = _group(cloud, "affinity")
    servers = _boot_into(cloud, "together", gid, count=3)
    try:
        hosts = {mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers}
        assert len(hosts) == 1
        mh.action(cloud, servers[0], {"migrate": None})
        found = mh.wait_task_done(cloud, servers[0])
        assert found["status"] == "ACTIVE" and {mh.host_of(found)} == hosts
        assert mh.wait_migration(cloud, servers[0], "error")
        # a resize may not take a member elsewhere either
        mh.action(cloud, servers[1], {"resize": {"flavorRef": "2"}})
        found = mh.wait_task_done(cloud, servers[1])
        assert found["status"] == "ACTIVE" and {mh.host_of(found)} == hosts
        assert found["flavor"]["original_name"] == "m1.tiny"
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_soft_affinity_gathers_where_the_free_space_weigher_would_spread(mcloud):
    cloud = mcloud
    gid = _group(cloud, "soft-affinity")
    servers = _boot_into(cloud, "soft-together", gid, count=3)
    try:
        hosts = {mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers}
        assert len(hosts) == 1
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_soft_anti_affinity_spreads_and_never_refuses(mcloud):
    cloud = mcloud
    gid = _group(cloud, "soft-anti-affinity")
    servers = _boot_into(cloud, "soft-spread", gid, count=5)
    try:
        hosts = [mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers]
        assert set(hosts) == ALL_HOSTS  # the fifth shares a host, the first four do not
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_max_server_per_host_allows_that_many_on_one_host(mcloud):
    cloud = mcloud
    gid = _group(cloud, "anti-affinity", {"max_server_per_host": 2}, cloud_name=mh.ADMIN)
    servers = _boot_into(cloud, "two-per-host", gid, count=2, cloud_name=mh.ADMIN,
                         host="cell1-host1")
    try:
        for sid in servers:
            assert mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) == "cell1-host1"
        third = _boot_into(cloud, "two-per-host-3", gid, cloud_name=mh.ADMIN,
                           host="cell1-host1")[0]
        servers.append(third)
        found = _wait_built(cloud, third)
        assert found["status"] == "ERROR" and "at most 2 per host" in found["fault"]["message"]
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_anti_affinity_builds_sent_at_once_still_get_a_host_each(mcloud):
    """Four separate requests at the same moment: the group's scheduling is one at a
    time and counts members that hold a host only in Placement so far."""
    from concurrent.futures import ThreadPoolExecutor

    cloud = mcloud
    gid = _group(cloud, "anti-affinity")
    mh.image_id(cloud), mh.network_id(cloud), cloud.token(mh.USER)  # warm caches
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: _boot_into(cloud, f"race-{i}", gid)[0], range(4)))
    try:
        hosts = [mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in made]
        assert sorted(hosts) == sorted(ALL_HOSTS)
    finally:
        _delete(cloud, *made)
        _delete_group(cloud, gid)


def test_cross_cell_resize_lands_only_where_the_anti_affinity_group_allows(mcloud):
    """gen2 flavors fit only cell2: while both cell2 hosts run a member, a member's
    resize from cell1 to gen2 has nowhere to go; once one leaves, it crosses there."""
    cloud = mcloud
    gid = _group(cloud, "anti-affinity")
    in_cell2 = _boot_into(cloud, "gen2-member", gid, count=2, flavor="21")
    mover = _boot_into(cloud, "gen1-member", gid, flavor="11")[0]
    servers = [*in_cell2, mover]
    try:
        hosts = {sid: mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers}
        assert {hosts[sid] for sid in in_cell2} == {"cell2-host1", "cell2-host2"}
        assert mh.cell_of_host(hosts[mover]) == "cell1"
        mh.action(cloud, mover, {"resize": {"flavorRef": "21"}})
        found = mh.wait_task_done(cloud, mover)
        assert found["status"] == "ACTIVE" and mh.host_of(found) == hosts[mover]
        assert found["flavor"]["original_name"] == "gen1.small"
        assert mh.wait_migration(cloud, mover, "error")
        _delete(cloud, in_cell2[0])
        servers.remove(in_cell2[0])
        resp = cloud.request("PUT", f"{COMPUTE}/servers/{mover}/metadata", cloud=mh.USER,
                             json={"metadata": {"role": "db", "tier": "2"}})
        assert resp.status_code == 200, resp.text
        mh.action(cloud, mover, {"resize": {"flavorRef": "21"}})
        found = mh.wait_status(cloud, mover, "VERIFY_RESIZE")
        assert mh.host_of(found) == hosts[in_cell2[0]]
        mh.action(cloud, mover, {"confirmResize": None}, expect=204)
        found = mh.wait_status(cloud, mover, "ACTIVE")
        assert mh.host_of(found) != hosts[in_cell2[1]]
        assert mh.server(cloud, mover, version="2.71")["server_groups"] == [gid]
        # its metadata came along into the other cell, and changes there
        resp = cloud.request("POST", f"{COMPUTE}/servers/{mover}/metadata", cloud=mh.USER,
                             json={"metadata": {"tier": "3"}})
        assert resp.json() == {"metadata": {"role": "db", "tier": "3"}}
        mh.assert_audit_clean(cloud)
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def test_unshelve_of_a_member_lands_only_where_its_group_allows(mcloud):
    """An offloaded member holds no host; another member may take the one it left, and
    then the unshelve has nowhere to go until a host is free again, in either cell."""
    cloud = mcloud
    gid = _group(cloud, "anti-affinity")
    servers = _boot_into(cloud, "shelved-member", gid, count=4)
    try:
        hosts = {sid: mh.host_of(mh.wait_status(cloud, sid, "ACTIVE")) for sid in servers}
        shelved = servers[0]
        mh.action(cloud, shelved, {"shelve": None}, cloud_name=mh.USER)
        mh.wait_status(cloud, shelved, "SHELVED_OFFLOADED")
        newcomer = _boot_into(cloud, "newcomer", gid)[0]
        servers.append(newcomer)
        assert mh.host_of(mh.wait_status(cloud, newcomer, "ACTIVE")) == hosts[shelved]
        mh.action(cloud, shelved, {"unshelve": None}, cloud_name=mh.USER)
        found = mh.wait_task_done(cloud, shelved)
        assert found["status"] == "SHELVED_OFFLOADED", found["status"]
        # a member in the other cell leaves: the unshelve goes there
        leaving = next(sid for sid in servers[1:4]
                       if mh.cell_of_host(hosts[sid]) != mh.cell_of_host(hosts[shelved]))
        _delete(cloud, leaving)
        servers.remove(leaving)
        mh.action(cloud, shelved, {"unshelve": None}, cloud_name=mh.USER)
        found = mh.wait_status(cloud, shelved, "ACTIVE")
        assert mh.host_of(found) == hosts[leaving]
        placed = [mh.host_of(mh.server(cloud, sid)) for sid in servers]
        assert len(set(placed)) == len(placed)
        assert sorted(_members(cloud, gid)) == sorted(servers)
    finally:
        _delete(cloud, *servers)
        _delete_group(cloud, gid)


def _boot_hinted(cloud, name: str, hints: dict, expect: int = 202) -> str | None:
    body = {"server": {"name": name, "flavorRef": "1", "imageRef": mh.image_id(cloud),
                       "networks": [{"uuid": mh.network_id(cloud)}]},
            "os:scheduler_hints": hints}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body)
    assert resp.status_code == expect, resp.text
    return resp.json()["server"]["id"] if expect == 202 else None


def test_same_host_and_different_host_hints_across_cells(mcloud):
    cloud = mcloud
    first = mh.boot(cloud, "hint-anchor", flavor="1")
    made = [first["id"]]
    try:
        anchor = mh.host_of(first)
        beside = _boot_hinted(cloud, "hint-beside", {"same_host": first["id"]})
        made.append(beside)
        assert mh.host_of(mh.wait_status(cloud, beside, "ACTIVE")) == anchor
        away = _boot_hinted(cloud, "hint-away", {"different_host": [first["id"], beside]})
        made.append(away)
        assert mh.host_of(mh.wait_status(cloud, away, "ACTIVE")) != anchor
        # away from servers on every host: nowhere to go
        others = []
        for i in range(2):
            others.append(_boot_hinted(cloud, f"hint-fill-{i}", {
                "different_host": made + others}))
            made.append(others[-1])
            mh.wait_status(cloud, others[-1], "ACTIVE")
        assert {mh.host_of(mh.server(cloud, s)) for s in made} == ALL_HOSTS
        nowhere = _boot_hinted(cloud, "hint-nowhere", {"different_host": made})
        made.append(nowhere)
        found = _wait_built(cloud, nowhere)
        assert found["status"] == "ERROR" and "different_host" in found["fault"]["message"]
        _boot_hinted(cloud, "hint-bad", {"same_host": "not-a-uuid"}, expect=400)
    finally:
        _delete(cloud, *made)
