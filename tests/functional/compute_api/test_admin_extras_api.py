"""Flavor access, hypervisor uptime/search/servers, simple tenant usage and os-hosts
through the compute API, over a two-cell cloud."""

from __future__ import annotations

import datetime as dt

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import ALT, DEMO

from transcell.api.compute import microversion
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.db import cell_models as cm
from transcell.db.session import cell_session


@pytest.fixture
def xcloud(cloud):
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    return cloud


# -- flavor access ---------------------------------------------------------------

def _names(cloud, token):
    return {f["id"] for f in cloud.get("/flavors", token=token).json["flavors"]}


def test_private_flavor_access_is_granted_and_taken_away(xcloud):
    xcloud.add_flavor("pub", "public", is_public=True)
    xcloud.add_flavor("priv", "private", is_public=False)
    assert _names(xcloud, DEMO) == {"pub"}
    assert xcloud.get("/flavors/priv", token=DEMO).status_int == 404

    granted = xcloud.post("/flavors/priv/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert granted.status_int == 200, granted.body
    assert granted.json == {"flavor_access": [{"flavor_id": "priv",
                                               "tenant_id": "demo-project"}]}
    assert _names(xcloud, DEMO) == {"pub", "priv"}
    assert xcloud.get("/flavors/priv", token=DEMO).status_int == 200
    assert _names(xcloud, ALT) == {"pub"}
    listed = xcloud.get("/flavors/priv/os-flavor-access").json
    assert listed["flavor_access"] == [{"flavor_id": "priv", "tenant_id": "demo-project"}]

    again = xcloud.post("/flavors/priv/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert again.status_int == 409
    assert again.json["conflictingRequest"]["message"] == \
        "Flavor access already exists for flavor priv and project demo-project combination."

    removed = xcloud.post("/flavors/priv/action",
                          {"removeTenantAccess": {"tenant": "demo-project"}})
    assert removed.status_int == 200 and removed.json == {"flavor_access": []}
    assert _names(xcloud, DEMO) == {"pub"}
    missing = xcloud.post("/flavors/priv/action",
                          {"removeTenantAccess": {"tenant": "demo-project"}})
    assert missing.status_int == 404
    assert missing.json["itemNotFound"]["message"] == \
        "Flavor access not found for priv / demo-project combination."


def test_flavor_access_refusals(xcloud):
    xcloud.add_flavor("pub", "public", is_public=True)
    xcloud.add_flavor("priv", "private", is_public=False)
    public = xcloud.post("/flavors/pub/action", {"addTenantAccess": {"tenant": "demo-project"}})
    assert public.status_int == 409
    assert public.json["conflictingRequest"]["message"] == \
        "Can not add access to a public flavor."
    listed = xcloud.get("/flavors/pub/os-flavor-access")
    assert listed.status_int == 404
    assert listed.json["itemNotFound"]["message"] == \
        "Access list not available for public flavors."
    assert xcloud.post("/flavors/nope/action",
                       {"addTenantAccess": {"tenant": "x"}}).status_int == 404
    assert xcloud.post("/flavors/priv/action",
                       {"addTenantAccess": {"tenant": ""}}).status_int == 400
    assert xcloud.post("/flavors/priv/action",
                       {"addTenantAccess": {"project": "x"}}).status_int == 400
    assert xcloud.post("/flavors/priv/action", {"fly": {}}).status_int == 400
    denied = xcloud.post("/flavors/priv/action",
                         {"addTenantAccess": {"tenant": "demo-project"}}, token=DEMO)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == ("Policy doesn't allow os_compute_api:"
                                                   "os-flavor-access:add_tenant_access to be "
                                                   "performed.")
    assert xcloud.get("/flavors/priv/os-flavor-access", token=DEMO).status_int == 403
    assert xcloud.get("/flavors/priv/os-flavor-access").json == {"flavor_access": []}


# -- hypervisors -------------------------------------------------------------------

def _two_hosts(cloud):
    _, one = cloud.add_compute(cloud.cell1, "cell1-host1")
    _, two = cloud.add_compute(cloud.cell2, "cell2-host1")
    a = cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1")
    b = cloud.add_instance(cloud.cell2, host="cell2-host1", node="cell2-host1")
    return one, two, a, b


def test_uptime_until_288(xcloud):
    one, _, _, _ = _two_hosts(xcloud)
    resp = xcloud.get(f"/os-hypervisors/{one.id}/uptime", version="2.1")
    assert resp.status_int == 200, resp.body
    body = resp.json["hypervisor"]
    assert body["id"] == one.id and body["hypervisor_hostname"] == "cell1-host1"
    assert body["state"] == "up" and body["status"] == "enabled"
    assert " up 0 days, " in body["uptime"] and "load average" in body["uptime"]
    by_uuid = xcloud.get(f"/os-hypervisors/{one.uuid}/uptime", version="2.53")
    assert by_uuid.json["hypervisor"]["id"] == one.uuid
    if microversion.MAX.matches("2.88"):
        assert xcloud.get(f"/os-hypervisors/{one.uuid}/uptime",
                          version="2.88").status_int == 404
    assert xcloud.get("/os-hypervisors/999/uptime", version="2.1").status_int == 404
    assert xcloud.get(f"/os-hypervisors/{one.id}/uptime", version="2.1",
                      token=DEMO).status_int == 403


def test_search_and_servers_before_253_find_hosts_in_every_cell(xcloud):
    _, _, a, b = _two_hosts(xcloud)
    found = xcloud.get("/os-hypervisors/host1/search", version="2.52").json["hypervisors"]
    assert sorted(h["hypervisor_hostname"] for h in found) == ["cell1-host1", "cell2-host1"]
    assert set(found[0]) == {"id", "hypervisor_hostname", "state", "status"}
    with_servers = xcloud.get("/os-hypervisors/cell2/servers",
                              version="2.52").json["hypervisors"]
    assert len(with_servers) == 1
    assert [s["uuid"] for s in with_servers[0]["servers"]] == [b]
    nothing = xcloud.get("/os-hypervisors/zzz/search", version="2.52")
    assert nothing.status_int == 404
    assert nothing.json["itemNotFound"]["message"] == \
        "No hypervisor matching 'zzz' could be found."
    assert xcloud.get("/os-hypervisors/host1/search", version="2.53").status_int == 404
    assert xcloud.get("/os-hypervisors/host1/servers", version="2.53").status_int == 404
    assert xcloud.get("/os-hypervisors/host1/search", version="2.52",
                      token=DEMO).status_int == 403


def test_253_pattern_and_with_servers_on_the_list(xcloud):
    _, _, a, b = _two_hosts(xcloud)
    listed = xcloud.get("/os-hypervisors?hypervisor_hostname_pattern=cell1&with_servers=true",
                        version="2.53").json["hypervisors"]
    assert [h["hypervisor_hostname"] for h in listed] == ["cell1-host1"]
    assert [s["uuid"] for s in listed[0]["servers"]] == [a]


# -- simple tenant usage -------------------------------------------------------------

def _launched(cloud, cell, hours_ago, project="demo-project", user="demo", ended_ago=None,
              **values):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    uuid = cloud.add_instance(cell, project=project, user=user,
                              launched_at=now - dt.timedelta(hours=hours_ago),
                              terminated_at=(None if ended_ago is None
                                             else now - dt.timedelta(hours=ended_ago)),
                              deleted=ended_ago is not None, **values)
    return uuid


def _window(hours=10):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = (now - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    return start, end


def test_usage_counts_servers_of_every_cell_once(xcloud):
    a = _launched(xcloud, xcloud.cell1, 2, vcpus=2, memory_mb=1024, root_gb=10)
    b = _launched(xcloud, xcloud.cell2, 4, vcpus=1, memory_mb=512, root_gb=5)
    # the hidden copy of a server moving between cells is the same server
    _launched(xcloud, xcloud.cell1, 4, uuid=b, mapped=False, hidden=True, vcpus=1)
    gone = _launched(xcloud, xcloud.cell2, 5, ended_ago=3, vcpus=4)
    _launched(xcloud, xcloud.cell1, 20, ended_ago=15)  # ended before the window
    _launched(xcloud, xcloud.cell2, 1, project="alt-project", user="alt")
    start, end = _window()
    resp = xcloud.get(f"/os-simple-tenant-usage/demo-project?start={start}&end={end}",
                      token=DEMO)
    assert resp.status_int == 200, resp.body
    usage = resp.json["tenant_usage"]
    servers = {s["instance_id"]: s for s in usage["server_usages"]}
    assert set(servers) == {a, b, gone}
    assert servers[gone]["state"] == "terminated"
    assert servers[gone]["hours"] == pytest.approx(2, abs=0.01)
    assert servers[a]["hours"] == pytest.approx(3, abs=0.01)  # to the window's end
    assert servers[a]["local_gb"] == 10 and servers[a]["vcpus"] == 2
    assert usage["total_vcpus_usage"] == pytest.approx(2 * 3 + 1 * 5 + 4 * 2, abs=0.05)
    assert usage["tenant_id"] == "demo-project"

    listed = xcloud.get(f"/os-simple-tenant-usage?start={start}&end={end}").json
    projects = {u["tenant_id"]: u for u in listed["tenant_usages"]}
    assert set(projects) == {"demo-project", "alt-project"}
    assert "server_usages" not in projects["demo-project"]
    detailed = xcloud.get(f"/os-simple-tenant-usage?start={start}&end={end}&detailed=1").json
    assert all("server_usages" in u for u in detailed["tenant_usages"])


def test_usage_paging_at_240_and_refusals(xcloud):
    made = [_launched(xcloud, cell, 2) for cell in (xcloud.cell1, xcloud.cell2, xcloud.cell1)]
    start, end = _window()
    first = xcloud.get(f"/os-simple-tenant-usage?start={start}&end={end}&detailed=1&limit=2",
                       version="2.40").json
    page = [s["instance_id"] for s in first["tenant_usages"][0]["server_usages"]]
    assert len(page) == 2
    assert "marker=" + page[-1] in first["tenant_usages_links"][0]["href"]
    rest = xcloud.get(f"/os-simple-tenant-usage?start={start}&end={end}&detailed=1&limit=2"
                      f"&marker={page[-1]}", version="2.40").json
    page2 = [s["instance_id"] for s in rest["tenant_usages"][0]["server_usages"]]
    assert sorted(page + page2) == sorted(made)
    backwards = xcloud.get(f"/os-simple-tenant-usage?start={end}&end={start}")
    assert backwards.status_int == 400
    assert backwards.json["badRequest"]["message"] == \
        "Invalid start time. The start time cannot occur after the end time."
    assert xcloud.get("/os-simple-tenant-usage?start=yesterday").status_int == 400
    assert xcloud.get("/os-simple-tenant-usage", token=DEMO).status_int == 403
    assert xcloud.get("/os-simple-tenant-usage/alt-project", token=DEMO).status_int == 403
    empty = xcloud.get(f"/os-simple-tenant-usage/nobody?start={start}&end={end}")
    assert empty.json == {"tenant_usage": {}}
    assert xcloud.get(f"/os-simple-tenant-usage/?start={start}&end={end}").status_int == 404


# -- os-hosts -----------------------------------------------------------------------

def test_hosts_list_and_show_before_243(xcloud):
    _two_hosts(xcloud)
    xcloud.add_service(xcloud.cell1, "ctl", binary="nova-conductor")
    with cell_session(xcloud.cell1) as s:
        inst = s.query(cm.Instance).filter_by(host="cell1-host1").one()
        inst.vcpus, inst.memory_mb, inst.root_gb = 2, 2048, 20
    hosts = xcloud.get("/os-hosts", version="2.42").json["hosts"]
    assert {"host_name": "cell1-host1", "service": "compute", "zone": "cell1"} in hosts
    assert {"host_name": "cell2-host1", "service": "compute", "zone": "cell2"} in hosts
    assert {"host_name": "ctl", "service": "conductor", "zone": "internal"} in hosts
    in_zone = xcloud.get("/os-hosts?zone=cell2", version="2.42").json["hosts"]
    assert [h["host_name"] for h in in_zone] == ["cell2-host1"]
    shown = xcloud.get("/os-hosts/cell1-host1", version="2.42").json["host"]
    by_project = {r["resource"]["project"]: r["resource"] for r in shown}
    assert by_project["(total)"]["cpu"] == 16
    assert by_project["(used_max)"] == {"host": "cell1-host1", "project": "(used_max)",
                                        "cpu": 2, "memory_mb": 2048, "disk_gb": 20}
    assert by_project["demo-project"]["cpu"] == 2
    missing = xcloud.get("/os-hosts/nowhere", version="2.42")
    assert missing.status_int == 404
    assert xcloud.get("/os-hosts", version="2.43").status_int == 404
    assert xcloud.get("/os-hosts", version="2.42", token=DEMO).status_int == 403


def test_host_update_switches_its_compute_service_and_power_actions_are_refused(xcloud):
    _two_hosts(xcloud)
    path = "/os-hosts/cell1-host1"
    off = xcloud.put(path, {"status": "disable"}, version="2.42")
    assert off.status_int == 200, off.body
    assert off.json == {"host": "cell1-host1", "status": "disabled"}
    services = xcloud.get("/os-services?binary=nova-compute").json["services"]
    assert {s["host"]: s["status"] for s in services}["cell1-host1"] == "disabled"
    on = xcloud.put(path, {"status": "Enable"}, version="2.42")
    assert on.json["status"] == "enabled"
    assert xcloud.put(path, {"status": "sleep"}, version="2.42").status_int == 400
    assert xcloud.put(path, {}, version="2.42").status_int == 400
    assert xcloud.put(path, {"status": "disable"}, version="2.42",
                      token=DEMO).status_int == 403
    assert xcloud.put("/os-hosts/nowhere", {"status": "disable"},
                      version="2.42").status_int == 404
    maintenance = xcloud.put(path, {"maintenance_mode": "enable"}, version="2.42")
    assert maintenance.status_int == 400
    assert maintenance.json["badRequest"]["message"] == \
        "Host maintenance mode is not supported: the virt driver does not implement it."
    for action in ("reboot", "shutdown", "startup"):
        assert xcloud.get(f"{path}/{action}", version="2.42").status_int == 400
        assert xcloud.get(f"/os-hosts/nowhere/{action}", version="2.42").status_int == 404
        assert xcloud.get(f"{path}/{action}", version="2.42", token=DEMO).status_int == 403
    assert xcloud.get(f"{path}/reboot", version="2.43").status_int == 404
