"""A cell whose database cannot be reached: servers and services from 2.69.

cell2's mapping is pointed at a PostgreSQL server nobody listens for (a port
just closed), so every read of cell2 fails the way an outage does while cell0,
cell1 and the API database answer. Below 2.69 such a cell is left out of lists
and a server in it cannot be shown (500); from 2.69 its servers and compute
hosts are shown by what the API database knows of them, status ``UNKNOWN``.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import pytest
from compute_api_fixtures import ADMIN, ALT, DEMO
from sqlalchemy import select

from transcell.api.compute import common
from transcell.db import api_models as am
from transcell.db.session import api_session, get_engine
from transcell.registry import services

TINY = {"id": 1, "flavorid": "1", "name": "m1.tiny", "vcpus": 1, "memory_mb": 512,
        "root_gb": 1, "ephemeral_gb": 0, "swap": 0, "extra_specs": {"hw:cpu_policy": "shared"}}
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeNetwork:
    """The network service's port list, all a detailed list asks of it."""

    def __init__(self, device_ids: set[str]):
        self.device_ids = device_ids
        self.calls: list[list[str]] = []

    def list_ports(self, ctx, device_id: list[str]) -> list[dict]:
        self.calls.append(list(device_id))
        return [{"id": f"port-{d[:8]}", "device_id": d} for d in device_id
                if d in self.device_ids]


def _spec(uuid: str, project: str = "demo-project", user: str = "demo",
          zone: str | None = None) -> None:
    with api_session() as s:
        s.add(am.RequestSpec(instance_uuid=uuid, spec={
            "instance_uuid": uuid, "project_id": project, "user_id": user, "flavor": TINY,
            "image": {"id": IMAGE, "name": "cirros"}, "availability_zone": zone}))


def _set_mapping_created(uuid: str, when: dt.datetime) -> None:
    with api_session() as s:
        s.scalar(select(am.InstanceMapping)
                 .where(am.InstanceMapping.instance_uuid == uuid)).created_at = when


@pytest.fixture
def down(cloud) -> Iterator:
    """cell1 answers with two servers of demo's; cell2, holding two of demo's (one being
    deleted) and one of alt's, and a compute host, is down."""
    cloud.add_compute(cloud.cell1, "cell1-host1")
    cloud.add_compute(cloud.cell2, "cell2-host1")
    cloud.map_host(cloud.cell2, "cell2-host2")
    up = [cloud.add_instance(cloud.cell1, display_name=n) for n in ("up-1", "up-2")]
    gone = cloud.add_instance(cloud.cell2, display_name="gone")
    stranded = cloud.add_instance(cloud.cell2, display_name="stranded")
    theirs = cloud.add_instance(cloud.cell2, project="alt-project", user="alt",
                                display_name="theirs")
    _spec(stranded, zone="cell2")
    _spec(gone)
    _spec(theirs, project="alt-project", user="alt")
    _set_mapping_created(stranded, dt.datetime(2024, 5, 1, 12, 0, 0))
    with api_session() as s:
        s.scalar(select(am.InstanceMapping)
                 .where(am.InstanceMapping.instance_uuid == gone)).queued_for_delete = True
    url = f"postgresql+psycopg2://transcell@127.0.0.1:{_closed_port()}/cell2"
    with api_session() as s:
        s.scalar(select(am.CellMapping).where(am.CellMapping.name == "cell2")
                 ).database_connection = url
    network, services.network = services.network, FakeNetwork({stranded})
    yield {"up": up, "stranded": stranded, "gone": gone, "theirs": theirs}
    services.network = network
    get_engine(url).dispose()


def _listed(cloud, path: str, version: str, token: str = DEMO) -> list[dict]:
    resp = cloud.get(path, token=token, version=version)
    assert resp.status_int == 200, resp.text
    return resp.json["servers"]


def _links(server_id: str) -> list[dict]:
    return [{"rel": "self", "href": f"http://localhost/v2.1/servers/{server_id}"},
            {"rel": "bookmark", "href": f"http://localhost/servers/{server_id}"}]


def test_lists_below_269_leave_the_down_cell_out(cloud, down):
    for path in ("/servers", "/servers/detail"):
        listed = _listed(cloud, path, "2.68")
        assert sorted(s["id"] for s in listed) == sorted(down["up"])
        assert all(s["name"].startswith("up-") for s in listed)


def test_lists_from_269_show_what_the_mappings_know(cloud, down):
    stranded = down["stranded"]
    listed = _listed(cloud, "/servers", "2.69")
    # the down cell's servers first, then the others newest first; not the one being
    # deleted, nor another project's
    assert listed[0] == {"id": stranded, "status": "UNKNOWN", "links": _links(stranded)}
    assert [s["id"] for s in listed[1:]] == down["up"][::-1]
    assert all(set(s) == {"id", "name", "links"} for s in listed[1:])

    detailed = _listed(cloud, "/servers/detail", "2.69")
    assert detailed[0] == {"id": stranded, "status": "UNKNOWN", "tenant_id": "demo-project",
                           "created": "2024-05-01T12:00:00Z",
                           "security_groups": [{"name": "default"}],
                           "links": _links(stranded)}
    assert [s["id"] for s in detailed[1:]] == down["up"][::-1]
    assert all(s["status"] == "ACTIVE" and "user_id" in s for s in detailed[1:])
    # the network service is asked once, for the unreachable servers only
    assert services.network.calls == [[stranded]]


def test_a_server_without_ports_has_no_security_groups(cloud, down):
    services.network.device_ids.clear()
    detailed = _listed(cloud, "/servers/detail", "2.73")
    assert set(detailed[0]) == {"id", "status", "tenant_id", "created", "links"}


def test_all_tenants_lists_every_projects_servers_of_the_down_cell(cloud, down):
    listed = _listed(cloud, "/servers/detail?all_tenants=1", "2.69", token=ADMIN)
    unknown = {s["id"]: s["tenant_id"] for s in listed if s["status"] == "UNKNOWN"}
    assert unknown == {down["stranded"]: "demo-project", down["theirs"]: "alt-project"}
    assert [s["status"] for s in listed[:2]] == ["UNKNOWN", "UNKNOWN"]
    alt = _listed(cloud, "/servers", "2.69", token=ALT)
    assert [s["id"] for s in alt] == [down["theirs"]]


@pytest.mark.parametrize("query", ["limit=5", "marker={up}", "sort_key=display_name",
                                   "sort_dir=asc", "name=up", "status=ACTIVE",
                                   "all_tenants=1&project_id=demo-project"])
def test_filtered_sorted_or_paged_lists_leave_the_down_cell_out(cloud, down, query):
    token = ADMIN if "project_id" in query else DEMO
    listed = _listed(cloud, f"/servers/detail?{query.format(up=down['up'][1])}", "2.69",
                     token=token)
    assert listed and all(s["status"] != "UNKNOWN" for s in listed)
    assert {s["id"] for s in listed} <= set(down["up"])


def test_a_parameter_the_caller_may_not_use_does_not_narrow_the_list(cloud, down):
    # a member's host filter is dropped quietly, so the list is not filtered at all
    listed = _listed(cloud, "/servers?host=cell1-host1", "2.69")
    assert listed[0]["status"] == "UNKNOWN"


def test_the_down_cells_servers_fill_only_the_room_a_page_has_left(cloud, down,
                                                                    monkeypatch):
    # Nova pages the servers it could read first; the unreachable ones get what is left
    monkeypatch.setattr(common, "MAX_LIMIT", 3)
    listed = _listed(cloud, "/servers?all_tenants=1", "2.69", token=ADMIN)
    assert len(listed) == 3
    assert listed[0]["status"] == "UNKNOWN"
    assert [s["id"] for s in listed[1:]] == down["up"][::-1]
    monkeypatch.setattr(common, "MAX_LIMIT", 2)
    assert [s["id"] for s in _listed(cloud, "/servers?all_tenants=1", "2.69",
                                     token=ADMIN)] == down["up"][::-1]


def test_show_from_269_answers_from_the_request_spec(cloud, down):
    stranded = down["stranded"]
    resp = cloud.get(f"/servers/{stranded}", token=DEMO, version="2.69")
    assert resp.status_int == 200, resp.text
    assert resp.json["server"] == {
        "id": stranded, "status": "UNKNOWN", "tenant_id": "demo-project",
        "created": "2024-05-01T12:00:00Z", "links": _links(stranded),
        "image": {"id": IMAGE, "links": [{"rel": "bookmark",
                                          "href": f"http://localhost/images/{IMAGE}"}]},
        "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
                   "original_name": "m1.tiny", "extra_specs": {"hw:cpu_policy": "shared"}},
        "OS-EXT-AZ:availability_zone": "cell2", "OS-EXT-STS:power_state": 0,
        "user_id": "demo"}
    at_271 = cloud.get(f"/servers/{stranded}", token=DEMO, version="2.71").json["server"]
    assert at_271["server_groups"] == []
    # no zone was asked for at build: Nova says UNKNOWN
    theirs = cloud.get(f"/servers/{down['theirs']}", version="2.69").json["server"]
    assert (theirs["OS-EXT-AZ:availability_zone"], theirs["user_id"]) == ("UNKNOWN", "alt")


def test_show_below_269_fails_as_nova_does(cloud, down):
    resp = cloud.get(f"/servers/{down['stranded']}", token=DEMO, version="2.68")
    assert resp.status_int == 500
    message = resp.json["computeFault"]["message"]
    assert message == (f"Cell {cloud.cell2.uuid} is not responding or returned an exception, "
                       "hence instance info is not available.")


def test_what_the_down_cell_hides_stays_hidden(cloud, down):
    # being deleted: gone; another project's: not yours; without a spec: gone
    assert cloud.get(f"/servers/{down['gone']}", token=DEMO, version="2.69").status_int == 404
    assert cloud.get(f"/servers/{down['theirs']}", token=DEMO,
                     version="2.69").status_int == 404
    with api_session() as s:
        s.delete(s.scalar(select(am.RequestSpec)
                          .where(am.RequestSpec.instance_uuid == down["stranded"])))
    assert cloud.get(f"/servers/{down['stranded']}", token=DEMO,
                     version="2.69").status_int == 404


def test_servers_of_cells_that_answer_are_shown_in_full(cloud, down):
    server = cloud.get(f"/servers/{down['up'][0]}", token=DEMO, version="2.69").json["server"]
    assert (server["status"], server["name"]) == ("ACTIVE", "up-1")


def test_acting_on_a_server_of_the_down_cell_fails_without_a_change(cloud, down):
    resp = cloud.put(f"/servers/{down['stranded']}", {"server": {"name": "renamed"}},
                     token=DEMO, version="2.69")
    assert resp.status_int == 500
    assert "is not responding" in resp.json["computeFault"]["message"]


def test_services_from_269_list_the_down_cells_hosts(cloud, down):
    below = cloud.get("/os-services", version="2.68").json["services"]
    assert [s["host"] for s in below] == ["cell1-host1"]
    listed = cloud.get("/os-services", version="2.69").json["services"]
    assert listed[0]["host"] == "cell1-host1" and listed[0]["state"] == "up"
    assert listed[1:] == [
        {"binary": "nova-compute", "host": "cell2-host1", "status": "UNKNOWN"},
        {"binary": "nova-compute", "host": "cell2-host2", "status": "UNKNOWN"}]
    # the filters apply to them too
    only = cloud.get("/os-services?host=cell2-host2", version="2.69").json["services"]
    assert only == [{"binary": "nova-compute", "host": "cell2-host2", "status": "UNKNOWN"}]
    none = cloud.get("/os-services?binary=nova-scheduler", version="2.69").json["services"]
    assert none == []


def test_a_cell_that_comes_back_is_shown_in_full_again(cloud, down):
    with api_session() as s:
        s.scalar(select(am.CellMapping).where(am.CellMapping.name == "cell2")
                 ).database_connection = cloud.cell2.database_connection
    listed = _listed(cloud, "/servers", "2.69")
    # the one being deleted is listed too while its row lives, as any deleting server
    assert {s.get("name") for s in listed} == {"up-1", "up-2", "stranded", "gone"}
