"""Listing across three cells: pages walked by marker equal one list sorted at once.

Servers are spread over cell0, cell1 and cell2 with created_at values drawn
from a handful of instants (so ties across cells are the rule, and integer ids
overlap between cells), some without a name or a host. Every page is asked of
every cell, merged, and followed by its ``next`` link; the pages joined must
be the servers sorted in one go by Nova's rules (the requested keys, then
created_at and id in the first direction, then uuid ascending), with cells
read in parallel and one after the other alike.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import urllib.parse
from collections.abc import Iterator

import pytest
from compute_api_fixtures import ADMIN, DEMO
from sqlalchemy import select

from transcell.compute import instance as inst
from transcell.compute import server_list
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session, get_engine

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)


@pytest.fixture(params=[True, False], ids=["parallel", "serial"])
def mode(request) -> Iterator[bool]:
    CONF.set_override("list_parallel_cells", request.param, group="api")
    yield request.param
    CONF.clear_override("list_parallel_cells", group="api")


@pytest.fixture
def spread(cloud) -> list[dict]:
    """45 servers over three cells, two projects, five instants; returns their rows."""
    rng = random.Random(11)
    for n in range(45):
        cell = (cloud.cell0, cloud.cell1, cloud.cell2)[rng.randrange(3)]
        cloud.add_instance(cell, project=rng.choice(["demo-project", "alt-project"]),
                           display_name=rng.choice([None, "alpha", "bravo", f"srv-{n}"]),
                           host=rng.choice([None, "host-a", "host-b"]),
                           created_at=T0 + dt.timedelta(seconds=rng.randrange(5)))
    rows = []
    for cell in (cloud.cell0, cloud.cell1, cloud.cell2):
        with cell_session(cell) as s:
            rows += [{c.key: getattr(r, c.key) for c in r.__table__.columns}
                     for r in s.scalars(select(cm.Instance))]
    return rows


def _expected(rows: list[dict], keys: list[tuple[str, bool]]) -> list[str]:
    """Nova's order, by successive stable sorts: uuid ascending last of all."""
    ordered = sorted(rows, key=lambda r: r["uuid"])
    for name, descending in reversed(keys):
        ordered.sort(key=lambda r, n=name: (r[n] is not None, r[n] if r[n] is not None else 0),
                     reverse=descending)
    return [r["uuid"] for r in ordered]


def _walk(cloud, query: str, token: str = ADMIN, limit: int = 7) -> list[str]:
    path = f"/servers/detail?{query}&limit={limit}" if query else f"/servers/detail?limit={limit}"
    walked: list[str] = []
    for _ in range(100):
        resp = cloud.get(path, token=token, version="2.79")
        assert resp.status_int == 200, resp.text
        walked += [s["id"] for s in resp.json["servers"]]
        links = resp.json.get("servers_links")
        if not links:
            return walked
        parsed = urllib.parse.urlsplit(links[0]["href"])
        path = f"/servers/detail?{parsed.query}"
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("query,keys", [
    ("all_tenants=1", [("created_at", True), ("id", True)]),
    ("all_tenants=1&sort_key=display_name&sort_dir=asc",
     [("display_name", False), ("created_at", False), ("id", False)]),
    ("all_tenants=1&sort_key=host&sort_dir=desc&sort_key=display_name",
     [("host", True), ("display_name", True), ("created_at", True), ("id", True)]),
    ("all_tenants=1&sort_key=created_at&sort_dir=asc&sort_key=uuid&sort_dir=desc",
     [("created_at", False), ("uuid", True), ("id", False)]),
])
def test_pages_across_cells_join_into_one_sorted_list(cloud, spread, mode, query, keys):
    assert _walk(cloud, query) == _expected(spread, keys)


def test_a_projects_pages_and_a_filtered_walk(cloud, spread, mode):
    mine = [r for r in spread if r["project_id"] == "demo-project"]
    default = [("created_at", True), ("id", True)]
    assert _walk(cloud, "", token=DEMO, limit=4) == _expected(mine, default)
    # a regular expression is tested in Python, cell by cell, before each cell's page is cut
    named = [r for r in spread if r["display_name"] and r["display_name"].startswith("srv-")]
    assert _walk(cloud, "all_tenants=1&name=^srv-", limit=3) == _expected(named, default)


def test_a_marker_from_another_cell_or_unknown(cloud, spread, mode):
    everything = _expected(spread, [("created_at", True), ("id", True)])
    marker = everything[10]
    resp = cloud.get(f"/servers?all_tenants=1&limit=5&marker={marker}", token=ADMIN)
    assert [s["id"] for s in resp.json["servers"]] == everything[11:16]
    bad = cloud.get("/servers?marker=00000000-0000-0000-0000-000000000000", token=ADMIN)
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"] == \
        "marker [00000000-0000-0000-0000-000000000000] not found"
    # a non-administrator cannot page from another project's server
    theirs = next(r["uuid"] for r in spread if r["project_id"] == "alt-project")
    assert cloud.get(f"/servers?marker={theirs}", token=DEMO).status_int == 400


def test_a_page_loads_each_servers_data_in_full(cloud):
    """The batched load answers exactly what ``instance.to_dict`` answers, row by row."""
    uuids = [cloud.add_instance(cloud.cell1, display_name=f"full-{n}") for n in range(4)]
    with cell_session(cloud.cell1) as s:
        s.add(cm.InstanceExtra(instance_uuid=uuids[0], flavor={"cur": {"flavorid": "1"}},
                               keypairs=[], request_networks=[]))
        s.add(cm.Tag(resource_id=uuids[0], tag="b"))
        s.add(cm.Tag(resource_id=uuids[0], tag="a"))
        s.add(cm.InstanceMetadata(instance_uuid=uuids[1], key="k", value="v"))
        s.add(cm.InstanceSystemMetadata(instance_uuid=uuids[1], key="locked_reason",
                                        value="why"))
        for n in range(2):
            s.add(cm.VirtualInterface(uuid=f"vif-{n}", address=f"fa:16:3e:00:00:0{n}",
                                      network_id="net", instance_uuid=uuids[2],
                                      info={"fixed_ips": []}))
            s.add(cm.InstanceFault(instance_uuid=uuids[3], code=500, message=f"boom {n}"))
    with cell_session(cloud.cell1) as s:
        loaded = server_list.load(s, uuids)
        for uuid in uuids:
            row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid))
            assert loaded[uuid] == inst.to_dict(s, row)
    assert loaded[uuids[3]]["fault"]["message"] == "boom 1"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_down_cell_is_left_out_of_paged_lists(cloud, spread, mode):
    url = f"postgresql+psycopg2://transcell@127.0.0.1:{_closed_port()}/cell2"
    with api_session() as s:
        s.scalar(select(am.CellMapping).where(am.CellMapping.name == "cell2")
                 ).database_connection = url
    try:
        with cell_session(cloud.cell2) as s:
            in_cell2 = set(s.scalars(select(cm.Instance.uuid)))
        answering = [r for r in spread if r["uuid"] not in in_cell2]
        assert _walk(cloud, "all_tenants=1", limit=6) == _expected(
            answering, [("created_at", True), ("id", True)])
    finally:
        get_engine(url).dispose()


def test_a_cell_holding_most_of_the_page_is_read_again(cloud, mode, monkeypatch):
    """Each cell is first asked for twice its even share; the cell that holds most of
    the page returns all it was asked, every row of it wins, so it is asked again."""
    rows = []
    for n in range(150):
        cell = cloud.cell1 if n % 10 else (cloud.cell0, cloud.cell2)[n // 10 % 2]
        rows.append(cloud.add_instance(cell, project="demo-project", display_name=f"s{n}",
                                       created_at=T0 + dt.timedelta(seconds=n % 40)))
    reads: list[int] = []
    real = server_list.read_keys

    def counted(cell, query, after, limit=None):
        found = real(cell, query, after, limit)
        reads.append(len(found))
        return found

    monkeypatch.setattr(server_list, "read_keys", counted)
    with cell_session(cloud.cell1) as s:
        listed = [{c.key: getattr(r, c.key) for c in r.__table__.columns}
                  for r in s.scalars(select(cm.Instance))]
    for cell in (cloud.cell0, cloud.cell2):
        with cell_session(cell) as s:
            listed += [{c.key: getattr(r, c.key) for c in r.__table__.columns}
                       for r in s.scalars(select(cm.Instance))]
    expected = _expected(listed, [("created_at", True), ("id", True)])
    assert _walk(cloud, "", token=DEMO, limit=120) == expected
    assert server_list.first_share(120, 3) == 80
    assert len(reads) > 3 + 2  # two pages of three cells, and at least one second read
    assert max(reads) <= 80


def test_a_pages_host_statuses_read_at_once_equal_each_servers_own(cloud):
    """The list reads every host's status in one go; each must be what showing the
    server alone says: UP, DOWN (forced), MAINTENANCE (disabled), UNKNOWN (silent),
    and "" for a host no cell knows or no host at all."""
    cloud.add_service(cloud.cell1, "up-host")
    cloud.add_service(cloud.cell1, "forced-host", forced_down=True)
    cloud.add_service(cloud.cell2, "disabled-host", disabled=True)
    cloud.add_service(cloud.cell2, "silent-host", seen=T0 - dt.timedelta(days=1))
    hosts = ["up-host", "forced-host", "disabled-host", "silent-host", "nowhere", None]
    for host in hosts:
        cloud.add_instance(cloud.cell1, host=host, display_name=f"on-{host}")
    resp = cloud.get("/servers/detail?all_tenants=1", token=ADMIN, version="2.16")
    listed = {s["name"]: s["host_status"] for s in resp.json["servers"]}
    for server in resp.json["servers"]:
        alone = cloud.get(f"/servers/{server['id']}", token=ADMIN, version="2.16")
        assert alone.json["server"]["host_status"] == server["host_status"]
    assert listed == {"on-up-host": "UP", "on-forced-host": "DOWN",
                      "on-disabled-host": "MAINTENANCE", "on-silent-host": "UNKNOWN",
                      "on-nowhere": "", "on-None": ""}
