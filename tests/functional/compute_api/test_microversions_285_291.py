"""Microversions 2.85 to 2.91 through the compute API, in-process over two cells.

For each: the behaviour below the version and at it, bad input answered 400 in
Nova's envelope with nothing changed, and the policy that guards it. What the
hosts then do (a rescue booted, a server unshelved on a host of the other
cell) is tested on a running cloud (``tests/functional/moves``) and by Tempest.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import ALT, DEMO, DEMO_READER
from sqlalchemy import func, select

from transcell.api.compute import image_actions, power_actions
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.compute import image_api
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.registry import services
from transcell.rpc.bus import get_bus

IMAGE = "5b4ecbd1-0fb0-4b07-9b68-1a3f4a1a2b3c"
RESCUE_IMAGE = "0f3a4a1e-8d2b-4c55-9d1e-6f7a8b9c0d1e"
PLAIN_IMAGE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
VOLUME = "9a1c6f1e-3c2b-4b8e-9a55-0d6b7f3e2a10"


class FakeImages:
    """Three images; the rescue one names its rescue disk's bus (a stable rescue)."""

    def get(self, ctx, image_id: str) -> dict:
        from transcell import exception
        if image_id not in (IMAGE, RESCUE_IMAGE, PLAIN_IMAGE):
            raise exception.ImageNotFound(image_id=image_id)
        image = {"id": image_id, "name": "base", "status": "active", "size": 1024,
                 "min_disk": 0, "min_ram": 0, "disk_format": "raw", "os_hash_value": None}
        if image_id == RESCUE_IMAGE:
            image["hw_rescue_bus"] = "virtio"
        return image


class Recorder:
    """Stands in for the conductor and the compute hosts: keeps what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def schedule_and_build(self, ctx, request_spec: dict, instance: dict) -> dict:
        self.calls.append(("build", (instance,), {}))
        return {"uuid": instance["uuid"]}

    def rescue_instance(self, *args, **kwargs) -> None:
        self.calls.append(("rescue_instance", args, kwargs))

    def rebuild_instance(self, *args, **kwargs) -> None:
        self.calls.append(("rebuild_instance", args, kwargs))


@pytest.fixture
def mv(cloud, monkeypatch) -> Iterator[Recorder]:
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    cloud.add_flavor("1", "m1.tiny")
    monkeypatch.setattr(services, "image", FakeImages())
    recorder = Recorder()
    monkeypatch.setattr(power_actions.power_api, "rpc", recorder)
    monkeypatch.setattr(image_api, "_compute", lambda: recorder)
    bus = get_bus(CONF.rpc.transport_url)
    bus.serve("conductor", recorder)
    try:
        yield recorder
    finally:
        bus.unserve("conductor")


def _bad(resp, text: str) -> None:
    assert resp.status_int == 400, resp.text
    assert text in resp.json["badRequest"]["message"], resp.json


def _server(cloud, **values) -> str:
    return cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1",
                              image_ref=IMAGE, hostname="first", **values)


def _row(cloud, server: str) -> cm.Instance:
    with cell_session(cloud.cell1) as s:
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == server))
        s.expunge(row)
        return row


# -- the versions documents -----------------------------------------------------------------

def test_versions_documents_report_291_and_292_is_not_acceptable(mv, cloud):
    root = cloud.get("/", token=None).json["versions"]
    assert [v["version"] for v in root if v["id"] == "v2.1"] == ["2.91"]
    assert cloud.get("/v2.1", token=None).json["version"]["version"] == "2.91"
    latest = cloud.get("/os-hypervisors", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.91"
    assert cloud.get("/os-hypervisors", version="2.91").status_int == 200
    refused = cloud.get("/os-hypervisors", version="2.92")
    assert refused.status_int == 406
    assert "maximum is 2.91" in refused.text


# -- 2.85 and 2.89: volume attachments -------------------------------------------------------

def _attached(cloud, server: str, **values) -> str:
    bdm_uuid = str(uuidlib.uuid4())
    with cell_session(cloud.cell1) as s:
        s.add(cm.BlockDeviceMapping(
            uuid=bdm_uuid, instance_uuid=server, source_type="volume",
            destination_type="volume", device_name="/dev/vdb", volume_id=VOLUME,
            attachment_id="c1d2e3f4-0000-4000-8000-000000000001", **values))
    return bdm_uuid


def _delete_on_termination(cloud, server: str) -> bool:
    with cell_session(cloud.cell1) as s:
        return s.scalar(select(cm.BlockDeviceMapping.delete_on_termination).where(
            cm.BlockDeviceMapping.instance_uuid == server))


def test_285_updates_delete_on_termination_in_place(mv, cloud):
    server = _server(cloud)
    _attached(cloud, server, delete_on_termination=False)
    path = f"/servers/{server}/os-volume_attachments/{VOLUME}"
    body = {"volumeAttachment": {"volumeId": VOLUME, "delete_on_termination": True}}
    # below 2.85 a PUT is a swap: the owner may not, and the field is unknown
    assert cloud.put(path, body, token=DEMO, version="2.84").status_int == 400
    swap = cloud.put(path, {"volumeAttachment": {"volumeId": VOLUME}}, token=DEMO,
                     version="2.84")
    assert swap.status_int == 403, swap.text
    assert _delete_on_termination(cloud, server) is False

    assert cloud.put(path, body, token=DEMO_READER, version="2.85").status_int == 403
    assert cloud.put(path, body, token=ALT, version="2.85").status_int == 404
    _bad(cloud.put(path, {"volumeAttachment": {"volumeId": VOLUME,
                                               "delete_on_termination": "maybe"}},
                   token=DEMO, version="2.85"), "delete_on_termination")
    _bad(cloud.put(path, {"volumeAttachment": {"volumeId": VOLUME, "device": "/dev/vdc",
                                               "delete_on_termination": True}},
                   token=DEMO, version="2.85"), "The device property is not mutable")
    assert _delete_on_termination(cloud, server) is False

    done = cloud.put(path, body, token=DEMO, version="2.85")
    assert done.status_int == 202, done.text
    assert _delete_on_termination(cloud, server) is True
    shown = cloud.get(path, token=DEMO, version="2.85").json["volumeAttachment"]
    assert shown["delete_on_termination"] is True


def test_289_attachments_are_known_by_attachment_and_mapping_ids(mv, cloud):
    server = _server(cloud)
    bdm_uuid = _attached(cloud, server)
    path = f"/servers/{server}/os-volume_attachments"
    old = cloud.get(f"{path}/{VOLUME}", token=DEMO, version="2.88").json["volumeAttachment"]
    assert old["id"] == VOLUME
    assert "attachment_id" not in old and "bdm_uuid" not in old
    new = cloud.get(f"{path}/{VOLUME}", token=DEMO, version="2.89").json["volumeAttachment"]
    assert "id" not in new
    assert new["attachment_id"] == "c1d2e3f4-0000-4000-8000-000000000001"
    assert new["bdm_uuid"] == bdm_uuid
    (listed,) = cloud.get(path, token=DEMO, version="2.89").json["volumeAttachments"]
    assert listed == new
    assert cloud.get(path, token=ALT, version="2.89").status_int == 404


# -- 2.86: flavor extra specs validated ------------------------------------------------------

SPECS = "/flavors/1/os-extra_specs"


def _specs(cloud) -> dict:
    return cloud.get(SPECS).json["extra_specs"]


def test_286_specs_of_known_namespaces_are_validated(mv, cloud):
    # below 2.86 a misspelt key is stored as it is
    assert cloud.post(SPECS, {"extra_specs": {"hw:cpu_polcy": "dedicated"}},
                      version="2.85").status_int == 200
    assert _specs(cloud) == {"hw:cpu_polcy": "dedicated"}
    cloud.delete(f"{SPECS}/hw:cpu_polcy")

    for specs, text in (
            ({"hw:cpu_polcy": "dedicated"}, "'hw:cpu_polcy' is not a key of the 'hw'"),
            ({"hw:cpu_policy": "dedicatd"}, "'dedicatd', which is not one of"),
            ({"hw:numa_nodes": "two"}, "is not an integer"),
            ({"hw:numa_nodes": "0"}, "is less than 1"),
            ({"hw_rng:allowed": "perhaps"}, "is not a boolean"),
            ({"trait:CUSTOM_GEN2": "wanted"}, "is not one of 'required', 'forbidden'"),
            ({"resources:VCPU": "-1"}, "is less than 0"),
            ({"resources1:vcpu": "1"}, "is not a key of the 'resources1' namespace"),
            ({"quota:disk_read_bytes_sec": "fast"}, "is not an integer"),
            ({"group_policy": "together"}, "is not one of 'none', 'isolate'"),
            # one bad key spoils the whole body: nothing of it is stored
            ({"hw:cpu_policy": "shared", "hw:mem_page_size": "huge"},
             "'hw:mem_page_size' has the value 'huge'")):
        _bad(cloud.post(SPECS, {"extra_specs": specs}, version="2.86"), text)
    assert _specs(cloud) == {}

    good = {"hw:cpu_policy": "shared", "hw:numa_nodes": "1", "hw:numa_cpus.0": "0-1",
            "hw:mem_page_size": "2MB", "hw_rng:allowed": "True",
            "trait:CUSTOM_HW_GEN2": "required", "trait1:HW_CPU_X86_AVX": "forbidden",
            "resources:VCPU": "2", "resources_gpu:CUSTOM_GPU": "1",
            "aggregate_instance_extra_specs:ssd": "true", "capabilities:hypervisor_type": "QEMU",
            "quota:cpu_quota": "-1", "group_policy": "isolate",
            # namespaces this cloud does not know belong to someone else
            "foo:bar": "baz", "plain": "anything"}
    made = cloud.post(SPECS, {"extra_specs": good}, version="2.86")
    assert made.status_int == 200, made.text
    assert _specs(cloud) == good


def test_286_update_is_validated_and_policy_comes_first(mv, cloud):
    cloud.post(SPECS, {"extra_specs": {"hw:cpu_policy": "shared"}}, version="2.86")
    _bad(cloud.put(f"{SPECS}/hw:cpu_policy", {"hw:cpu_policy": "exclusive"}, version="2.86"),
         "'exclusive', which is not one of")
    _bad(cloud.put(f"{SPECS}/hw:cpu_pol", {"hw:cpu_pol": "shared"}, version="2.86"),
         "is not a key of the 'hw' namespace")
    assert _specs(cloud) == {"hw:cpu_policy": "shared"}
    # a member is refused for the rule before the spec is looked at
    denied = cloud.put(f"{SPECS}/hw:cpu_policy", {"hw:cpu_policy": "exclusive"}, token=DEMO,
                       version="2.86")
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-flavor-extra-specs:update to be performed."
    # below 2.86 the same value is stored, as Nova stores it
    assert cloud.put(f"{SPECS}/hw:cpu_policy", {"hw:cpu_policy": "exclusive"},
                     version="2.85").status_int == 200
    done = cloud.put(f"{SPECS}/hw:cpu_policy", {"hw:cpu_policy": "dedicated"}, version="2.86")
    assert (done.status_int, done.json) == (200, {"hw:cpu_policy": "dedicated"})
    assert _specs(cloud) == {"hw:cpu_policy": "dedicated"}


# -- 2.87: rescue of a volume-backed server ---------------------------------------------------

def _volume_backed(cloud) -> str:
    server = cloud.add_instance(cloud.cell1, host="cell1-host1", node="cell1-host1",
                                image_ref="")
    with cell_session(cloud.cell1) as s:
        s.add(cm.BlockDeviceMapping(uuid=str(uuidlib.uuid4()), instance_uuid=server,
                                    source_type="volume", destination_type="volume",
                                    device_name="/dev/vda", boot_index=0, volume_id=VOLUME))
    return server


def test_287_a_volume_backed_server_is_rescued_from_a_stable_rescue_image(mv, cloud):
    server = _volume_backed(cloud)
    path = f"/servers/{server}/action"
    stable = {"rescue": {"rescue_image_ref": RESCUE_IMAGE}}
    _bad(cloud.post(path, stable, token=DEMO, version="2.86"),
         "Cannot rescue a volume-backed instance")
    _bad(cloud.post(path, {"rescue": None}, token=DEMO, version="2.87"),
         "Cannot rescue a volume-backed instance")
    _bad(cloud.post(path, {"rescue": {"rescue_image_ref": PLAIN_IMAGE}}, token=DEMO,
                    version="2.87"), "neither hw_rescue_device nor hw_rescue_bus")
    _bad(cloud.post(path, {"rescue": {"rescue_image_ref": "not-a-uuid"}}, token=DEMO,
                    version="2.87"), "rescue_image_ref")
    assert cloud.post(path, stable, token=DEMO_READER, version="2.87").status_int == 403
    assert cloud.post(path, stable, token=ALT, version="2.87").status_int == 404
    assert _row(cloud, server).task_state is None
    assert mv.calls == []

    done = cloud.post(path, stable, token=DEMO, version="2.87")
    assert done.status_int == 200, done.text
    assert done.json["adminPass"]
    assert _row(cloud, server).task_state == "rescuing"
    ((name, args, _),) = mv.calls
    assert name == "rescue_instance" and args[-1] == RESCUE_IMAGE


def test_287_an_image_backed_server_is_rescued_as_before(mv, cloud):
    server = _server(cloud)
    done = cloud.post(f"/servers/{server}/action", {"rescue": None}, token=DEMO,
                      version="2.87")
    assert done.status_int == 200, done.text
    assert [c[0] for c in mv.calls] == ["rescue_instance"]


# -- 2.88: hypervisors without usage figures ---------------------------------------------------

USAGE = {"cpu_info", "current_workload", "disk_available_least", "free_disk_gb", "free_ram_mb",
         "local_gb", "local_gb_used", "memory_mb", "memory_mb_used", "running_vms", "vcpus",
         "vcpus_used"}


def test_288_hypervisors_drop_usage_and_show_uptime(mv, cloud):
    _, node = cloud.add_compute(cloud.cell1, "cell1-host1")
    _, down = cloud.add_compute(cloud.cell2, "cell2-host1")
    with cell_session(cloud.cell2) as s:
        s.execute(cm.Service.__table__.update().values(forced_down=True))
    before = cloud.get("/os-hypervisors/detail", version="2.87").json["hypervisors"]
    assert all(USAGE <= set(h) for h in before)
    after = cloud.get("/os-hypervisors/detail", version="2.88").json["hypervisors"]
    assert [set(h) & USAGE for h in after] == [set(), set()]
    assert {"id", "hypervisor_hostname", "state", "status", "hypervisor_type",
            "hypervisor_version", "host_ip", "service"} <= set(after[0])
    assert "uptime" not in after[0]
    listed = cloud.get("/os-hypervisors", version="2.88").json["hypervisors"]
    assert set(listed[0]) == {"id", "hypervisor_hostname", "state", "status"}

    shown = cloud.get(f"/os-hypervisors/{node.uuid}", version="2.88").json["hypervisor"]
    assert not set(shown) & USAGE
    assert " up 0 days, " in shown["uptime"]
    old = cloud.get(f"/os-hypervisors/{node.uuid}", version="2.87").json["hypervisor"]
    assert "uptime" not in old and USAGE <= set(old)
    # a host whose compute service is down cannot tell its uptime
    gone = cloud.get(f"/os-hypervisors/{down.uuid}", version="2.88").json["hypervisor"]
    assert (gone["state"], gone["uptime"]) == ("down", None)

    assert cloud.get("/os-hypervisors/statistics", version="2.87").status_int == 200
    for path in ("/os-hypervisors/statistics", f"/os-hypervisors/{node.uuid}/uptime"):
        resp = cloud.get(path, version="2.88")
        assert resp.status_int == 404, path
        assert "itemNotFound" in resp.json
    assert cloud.get(f"/os-hypervisors/{node.uuid}", token=DEMO,
                     version="2.88").status_int == 403
    _bad(cloud.get("/os-hypervisors/1", version="2.88"), "Invalid uuid 1")


# -- 2.90: the hostname a server's owner chooses ------------------------------------------------

def _create(cloud, version: str, **server):
    body = {"server": {"name": "named", "flavorRef": "1", "networks": "none",
                       "imageRef": IMAGE, **server}}
    return cloud.post("/servers", body, token=DEMO, version=version)


def _mappings() -> int:
    with api_session() as s:
        return s.scalar(select(func.count(am.InstanceMapping.id)))


@pytest.mark.parametrize(("version", "extra", "text"), [
    ("2.89", {"hostname": "web-1"},
     "Additional properties are not allowed ('hostname' was unexpected)"),
    ("2.90", {"hostname": "w"}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": "-web"}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": "web_1"}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": "web.example.org"}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": "w" * 64}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": 12}, "Invalid input for field/attribute hostname."),
    ("2.90", {"hostname": "web-1", "min_count": 2},
     "Cannot use the hostname parameter when creating more than one server"),
    ("2.90", {"hostname": "web-1", "max_count": 3},
     "Cannot use the hostname parameter when creating more than one server"),
])
def test_290_create_refusals_build_nothing(mv, cloud, version, extra, text):
    before = _mappings()
    _bad(_create(cloud, version, **extra), text)
    assert _mappings() == before
    assert mv.calls == []


def test_290_create_keeps_the_hostname_asked_for(mv, cloud):
    made = _create(cloud, "2.90", hostname="Web-01")
    assert made.status_int == 202, made.text
    made = _create(cloud, "2.90", name="Named By Its Name")
    assert made.status_int == 202, made.text
    assert [c[1][0]["hostname"] for c in mv.calls] == ["Web-01", "named-by-its-name"]


def test_290_update_sets_the_hostname_and_everyone_sees_it(mv, cloud):
    server = _server(cloud)
    path = f"/servers/{server}"
    key = "OS-EXT-SRV-ATTR:hostname"
    assert key not in cloud.get(path, token=DEMO, version="2.89").json["server"]
    assert cloud.get(path, version="2.89").json["server"][key] == "first"
    assert cloud.get(path, token=DEMO, version="2.90").json["server"][key] == "first"
    (listed,) = cloud.get("/servers/detail", token=DEMO, version="2.90").json["servers"]
    assert listed[key] == "first"

    _bad(cloud.put(path, {"server": {"hostname": "second"}}, token=DEMO, version="2.89"),
         "('hostname' was unexpected)")
    _bad(cloud.put(path, {"server": {"hostname": "no_underscores"}}, token=DEMO,
                   version="2.90"), "Invalid input for field/attribute hostname.")
    assert cloud.put(path, {"server": {"hostname": "second"}}, token=DEMO_READER,
                     version="2.90").status_int == 403
    assert cloud.put(path, {"server": {"hostname": "second"}}, token=ALT,
                     version="2.90").status_int == 404
    assert _row(cloud, server).hostname == "first"

    done = cloud.put(path, {"server": {"hostname": "second"}}, token=DEMO, version="2.90")
    assert done.status_int == 200, done.text
    assert done.json["server"][key] == "second"
    assert _row(cloud, server).hostname == "second"
    # renaming a server leaves the hostname alone
    cloud.put(path, {"server": {"name": "renamed"}}, token=DEMO, version="2.90")
    assert _row(cloud, server).hostname == "second"


def test_290_rebuild_sets_the_hostname(mv, cloud, monkeypatch):
    monkeypatch.setattr(image_api, "REBUILD_CHECKS", ())
    monkeypatch.setattr(image_api.mappings, "set_spec_image", lambda *a: None)
    server = _server(cloud)
    path = f"/servers/{server}/action"
    _bad(cloud.post(path, {"rebuild": {"imageRef": IMAGE, "hostname": "again"}}, token=DEMO,
                    version="2.89"), "('hostname' was unexpected)")
    _bad(cloud.post(path, {"rebuild": {"imageRef": IMAGE, "hostname": "a.b"}}, token=DEMO,
                    version="2.90"), "Invalid input for field/attribute hostname.")
    assert _row(cloud, server).hostname == "first"
    assert mv.calls == []
    done = cloud.post(path, {"rebuild": {"imageRef": IMAGE, "hostname": "again"}}, token=DEMO,
                      version="2.90")
    assert done.status_int == 202, done.text
    assert done.json["server"]["OS-EXT-SRV-ATTR:hostname"] == "again"
    assert _row(cloud, server).hostname == "again"
    assert image_actions.REBUILD_RULE == "os_compute_api:servers:rebuild"


# -- 2.91: unshelve onto a host, or out of any zone ------------------------------------------

def test_291_unshelve_host_and_null_zone_are_checked_before_anything(mv, cloud):
    cloud.add_compute(cloud.cell1, "cell1-host1")
    server = cloud.add_instance(cloud.cell1, vm_state="shelved_offloaded", image_ref=IMAGE)
    path = f"/servers/{server}/action"
    _bad(cloud.post(path, {"unshelve": {"host": "cell1-host1"}}, version="2.90"),
         "('host' was unexpected)")
    _bad(cloud.post(path, {"unshelve": {"availability_zone": None}}, version="2.90"),
         "availability_zone")
    _bad(cloud.post(path, {"unshelve": {"host": "bad host!"}}, version="2.91"), "host")
    denied = cloud.post(path, {"unshelve": {"host": "cell1-host1"}}, token=DEMO,
                        version="2.91")
    assert denied.status_int == 403, denied.text
    _bad(cloud.post(path, {"unshelve": {"host": "no-such-host"}}, version="2.91"),
         "no-such-host")
    row = _row(cloud, server)
    assert (row.vm_state, row.task_state) == ("shelved_offloaded", None)
