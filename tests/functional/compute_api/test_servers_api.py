"""Servers read, listed and renamed in-process: the shapes of 2.54 to 2.84.

Building a server needs the whole cloud (see ``tests/functional/cloud``); what
is tested here is what the API does with rows already in the cells, and the
create requests it must refuse before anything is built.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from compute_api_fixtures import ADMIN, DEMO, DEMO_READER
from sqlalchemy import func, select

from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import utcnow
from transcell.image.client import ImageClient
from transcell.image.service import ImageService
from transcell.image.store import ChunkStore
from transcell.registry import services

#: What a show has at 2.74 that an update's answer lacks below 2.75.
SHOW_ONLY = {"key_name", "config_drive", "OS-EXT-AZ:availability_zone",
             "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state", "OS-EXT-STS:power_state",
             "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at",
             "os-extended-volumes:volumes_attached", "security_groups", "host_status",
             "OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
             "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:reservation_id",
             "OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:kernel_id",
             "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:hostname",
             "OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data"}


def _server(cloud, cell=None, **values) -> str:
    return cloud.add_instance(cell or cloud.cell1, **values)


def _vif(cloud, cell, server: str, address: str, version: int = 4) -> None:
    with cell_session(cell) as s:
        s.add(cm.VirtualInterface(uuid=f"port-{server[:8]}", address="fa:16:3e:00:00:01",
                                  network_id="net-1", instance_uuid=server,
                                  info={"network_name": "private", "fixed_ips": [
                                      {"ip_address": address, "version": version}]}))


def _lock(cloud, cell, server: str, reason: str | None) -> None:
    with cell_session(cell) as s:
        row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == server))
        row.locked = True
        row.locked_by = "admin"
        if reason is not None:
            s.add(cm.InstanceSystemMetadata(instance_uuid=server, key="locked_reason",
                                            value=reason))


def _names(cloud, query: str = "", token: str = DEMO, version: str = "2.73",
           path: str = "/servers") -> list[str]:
    resp = cloud.get(f"{path}{'?' + query if query else ''}", token=token, version=version)
    assert resp.status_int == 200, resp.json
    return [s["name"] for s in resp.json["servers"]]


def _mappings() -> int:
    with api_session() as s:
        return s.scalar(select(func.count(am.InstanceMapping.id)))


# -- the server body ------------------------------------------------------------------------

def test_show_grows_trusted_certificates_server_groups_and_locked_reason(cloud):
    server = _server(cloud)
    _lock(cloud, cloud.cell1, server, "maintenance window")
    path = f"/servers/{server}"
    at_262 = cloud.get(path, token=DEMO, version="2.62").json["server"]
    assert not {"trusted_image_certificates", "server_groups", "locked_reason"} & set(at_262)
    at_263 = cloud.get(path, token=DEMO, version="2.63").json["server"]
    assert set(at_263) - set(at_262) == {"trusted_image_certificates"}
    assert at_263["trusted_image_certificates"] is None
    at_271 = cloud.get(path, token=DEMO, version="2.71").json["server"]
    assert set(at_271) - set(at_263) == {"server_groups"}
    assert at_271["server_groups"] == []
    at_273 = cloud.get(path, token=DEMO, version="2.73").json["server"]
    assert set(at_273) - set(at_271) == {"locked_reason"}
    assert (at_273["locked"], at_273["locked_reason"]) == (True, "maintenance window")
    unlocked = cloud.get(f"/servers/{_server(cloud)}", token=DEMO, version="2.73").json
    assert unlocked["server"]["locked_reason"] is None


def test_lists_never_carry_server_groups(cloud):
    _server(cloud)
    listed = cloud.get("/servers/detail", token=DEMO, version="2.73").json["servers"]
    assert listed[0]["trusted_image_certificates"] is None
    assert listed[0]["locked_reason"] is None
    assert "server_groups" not in listed[0]
    # a server whose flavor copy is gone shows an empty flavor, as Nova shows it
    assert listed[0]["flavor"] == {}
    assert cloud.get("/servers/detail", token=DEMO).json["servers"][0]["flavor"] == {}


def test_update_answers_with_a_subset_below_275_and_the_show_body_from_275(cloud):
    server = _server(cloud, host="cell1-host1", node="cell1-host1", key_name="k")
    _vif(cloud, cloud.cell1, server, "10.0.0.5")
    path = f"/servers/{server}"
    renamed = cloud.put(path, {"server": {"name": "renamed"}}, version="2.74")
    assert renamed.status_int == 200
    shown = cloud.get(path, version="2.74").json["server"]
    body = renamed.json["server"]
    assert set(shown) - set(body) == SHOW_ONLY
    assert set(body) <= set(shown)
    assert body["name"] == "renamed" and body["server_groups"] == []
    assert body["addresses"] == {"private": [{"version": 4, "addr": "10.0.0.5"}]}
    assert shown["addresses"]["private"][0]["OS-EXT-IPS-MAC:mac_addr"] == "fa:16:3e:00:00:01"

    again = cloud.put(path, {"server": {"name": "again"}}, version="2.75").json["server"]
    assert again == cloud.get(path, version="2.75").json["server"]
    # a member sees the same show body as an update, without the admin-only fields
    member = cloud.put(path, {"server": {"name": "mine"}}, token=DEMO, version="2.75")
    assert member.json["server"] == cloud.get(path, token=DEMO, version="2.75").json["server"]
    assert "OS-EXT-SRV-ATTR:host" not in member.json["server"]


def test_access_addresses_are_kept_in_their_canonical_spelling(cloud):
    """An IPv6 address written long is shown compressed, as Nova shows it (and as its
    column, sized for the longest compressed address, can hold); a wrong one is a 400."""
    server = _server(cloud, host="cell1-host1", node="cell1-host1")
    path = f"/servers/{server}"
    body = {"server": {"accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2",
                       "accessIPv4": "10.1.2.3"}}
    shown = cloud.put(path, body).json["server"]
    assert (shown["accessIPv6"], shown["accessIPv4"]) == ("::babe:dc0c:1602", "10.1.2.3")
    for wrong in ({"accessIPv4": "::1"}, {"accessIPv6": "not-an-address"}):
        resp = cloud.put(path, {"server": wrong})
        assert resp.status_int == 400, resp.text
    assert cloud.get(path).json["server"]["accessIPv6"] == "::babe:dc0c:1602"
    cleared = cloud.put(path, {"server": {"accessIPv6": ""}}).json["server"]
    assert cleared["accessIPv6"] == ""


# -- lists: 2.66 changes-before, 2.73 locked, sorting, 2.75 closed query, 2.83 filters ----

def test_266_changes_before_bounds_updated_at(cloud):
    now = utcnow()
    for n, name in enumerate(("old", "middle", "new")):
        when = now - dt.timedelta(hours=3 - n)
        _server(cloud, display_name=name, created_at=when, updated_at=when)
    middle = (now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _names(cloud, f"changes-before={middle}", version="2.66") == ["middle", "old"]
    assert _names(cloud, f"changes-since={middle}&changes-before={middle}",
                  version="2.66") == ["middle"]
    assert _names(cloud, f"changes-since={middle}", version="2.66") == ["new", "middle"]
    # not a filter before 2.66
    assert _names(cloud, f"changes-before={middle}", version="2.65") == [
        "new", "middle", "old"]
    inverted = cloud.get(f"/servers?changes-since={middle}&changes-before=2000-01-01",
                         token=DEMO, version="2.66")
    assert inverted.status_int == 400
    assert inverted.json["badRequest"]["message"] == \
        "The value of changes-since must be less than or equal to changes-before."
    bad = cloud.get("/servers?changes-before=tomorrow", token=DEMO, version="2.66")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"] == (
        "Invalid input for query parameters changes-before. Value: tomorrow. 'tomorrow' is "
        "not a 'date-time'")


def test_273_locked_filters_and_sorts(cloud):
    now = utcnow()
    _server(cloud, display_name="a-locked", created_at=now - dt.timedelta(hours=2))
    _server(cloud, display_name="b-open", created_at=now - dt.timedelta(hours=1))
    with cell_session(cloud.cell1) as s:
        s.scalar(select(cm.Instance).where(cm.Instance.display_name == "a-locked")).locked = True
    assert _names(cloud, "locked=true") == ["a-locked"]
    assert _names(cloud, "locked=0", path="/servers/detail") == ["b-open"]
    assert _names(cloud, "locked=true", version="2.72") == ["b-open", "a-locked"]
    bad = cloud.get("/servers?locked=maybe", token=DEMO, version="2.73")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"].startswith(
        "Invalid input received: Unrecognized value 'maybe'")
    # locked sorts from 2.73 (and is quietly ignored as a sort key before)
    assert _names(cloud, "sort_key=locked&sort_dir=desc") == ["a-locked", "b-open"]
    assert _names(cloud, "sort_key=locked&sort_dir=asc") == ["b-open", "a-locked"]
    # below 2.73 the key is dropped with its direction, leaving Nova's default keys in
    # its default direction, ascending: oldest first either way
    assert _names(cloud, "sort_key=locked&sort_dir=asc", version="2.72") == [
        "a-locked", "b-open"]
    assert _names(cloud, "sort_key=locked&sort_dir=desc", version="2.72") == [
        "a-locked", "b-open"]


def test_sorting_follows_novas_rules(cloud):
    now = utcnow()
    for n, name in enumerate(("bravo", "alpha", "charlie")):
        _server(cloud, display_name=name, created_at=now - dt.timedelta(minutes=n),
                host=f"cell1-host{n}")
    assert _names(cloud, version="2.1") == ["bravo", "alpha", "charlie"]
    assert _names(cloud, "sort_key=display_name&sort_dir=asc") == ["alpha", "bravo", "charlie"]
    assert _names(cloud, "sort_key=display_name") == ["charlie", "bravo", "alpha"]
    assert _names(cloud, "all_tenants=1&sort_key=host&sort_dir=asc", token=ADMIN) == [
        "bravo", "alpha", "charlie"]
    assert _names(cloud, "sort_dir=asc") == ["charlie", "alpha", "bravo"]

    def refused(query: str, status: int = 400, version: str = "2.73") -> str:
        resp = cloud.get(f"/servers?{query}", token=DEMO, version=version)
        assert resp.status_int == status, (query, resp.json)
        return next(iter(resp.json.values()))["message"]

    assert refused("sort_key=host", 403) == "Only administrators can sort servers by host"
    assert refused("sort_key=colour").startswith(
        "Invalid input for query parameters sort_key. Value: colour.")
    assert refused("sort_key=display_name&sort_dir=up") == \
        "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
    assert refused("sort_key=display_name&sort_dir=asc&sort_dir=desc") == \
        "Invalid input received: Sort direction size exceeds sort key size"


def test_275_refuses_unknown_parameters_and_ignored_sort_keys(cloud):
    _server(cloud, display_name="only")
    assert _names(cloud, "colour=red", version="2.74") == ["only"]
    assert _names(cloud, "sort_key=vcpus", version="2.74") == ["only"]
    for query, message in (
            ("colour=red", "Additional properties are not allowed ('colour' was unexpected)"),
            ("sort_key=vcpus", "Invalid input for query parameters sort_key. Value: vcpus.")):
        resp = cloud.get(f"/servers/detail?{query}", token=DEMO, version="2.75")
        assert resp.status_int == 400, query
        assert resp.json["badRequest"]["message"].startswith(message)
    # known filters a member may not use are still dropped quietly
    assert _names(cloud, "host=elsewhere", version="2.75") == ["only"]
    assert cloud.get("/servers?host=elsewhere", version="2.75").json["servers"] == []
    # parameters naming joined tables are refused for whom may filter by anything
    refused = cloud.get("/servers?metadata=x", version="2.74")
    assert refused.status_int == 400
    assert refused.json["badRequest"]["message"] == "Invalid filter field: metadata."


def test_283_opens_instance_filters_to_members(cloud):
    now = utcnow()
    _server(cloud, display_name="keyed", key_name="deploy-key", availability_zone="cell1",
            created_at=now - dt.timedelta(hours=1), power_state=1, progress=100)
    _server(cloud, display_name="stopped", vm_state="stopped", user="demo2",
            availability_zone="cell2", created_at=now - dt.timedelta(hours=2), power_state=4)
    everything = ["keyed", "stopped"]
    cases = {"key_name=deploy": ["keyed"], "availability_zone=cell2": ["stopped"],
             "vm_state=stopped": ["stopped"], "user_id=demo2": ["stopped"],
             "power_state=4": ["stopped"], "progress=100": ["keyed"],
             "vm_state=active&vm_state=stopped": everything}
    for query, expected in cases.items():
        assert _names(cloud, query, version="2.82") == everything, query
        assert _names(cloud, query, version="2.83") == expected, query
        # whom policy lets filter by anything always could
        assert _names(cloud, f"all_tenants=1&{query}", token=ADMIN, version="2.1",
                      path="/servers/detail") == expected, query
    created = (now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H")
    assert _names(cloud, f"created_at={created}", version="2.83") == ["stopped"]
    bad = cloud.get("/servers?key_name=(", token=DEMO, version="2.83")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"].startswith(
        "Invalid regular expression for key_name")


def test_ip_filters_and_paging_links_keep_the_query(cloud):
    now = utcnow()
    for n in range(3):
        server = _server(cloud, display_name=f"s{n}", created_at=now - dt.timedelta(minutes=n))
        _vif(cloud, cloud.cell1, server, f"10.0.0.{n + 10}")
    assert _names(cloud, "ip=10.0.0.1[01]") == ["s0", "s1"]
    first = cloud.get("/servers/detail?ip=10.0.0&limit=2", token=DEMO, version="2.73").json
    assert [s["name"] for s in first["servers"]] == ["s0", "s1"]
    marker = first["servers"][1]["id"]
    assert first["servers_links"] == [{"rel": "next", "href": (
        f"http://localhost/v2.1/servers/detail?ip=10.0.0&limit=2&marker={marker}")}]
    rest = cloud.get(f"/servers/detail?ip=10.0.0&limit=2&marker={marker}", token=DEMO,
                     version="2.73").json
    assert [s["name"] for s in rest["servers"]] == ["s2"]
    assert "servers_links" not in rest
    missing = cloud.get("/servers?marker=nope", token=DEMO)
    assert missing.status_int == 400
    assert missing.json["badRequest"]["message"] == "marker [nope] not found"


def test_all_tenants_stays_an_admin_matter(cloud):
    _server(cloud, display_name="mine")
    _server(cloud, display_name="theirs", project="alt-project", user="alt")
    assert _names(cloud, "all_tenants=1", token=ADMIN, version="2.73") == ["theirs", "mine"]
    denied = cloud.get("/servers?all_tenants=1", token=DEMO, version="2.73")
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed."
    assert _names(cloud, token=DEMO_READER) == ["mine"]


# -- create: what is refused before anything is built --------------------------------------

#: The imageRef of the refused creates: an active image, so a refusal is about the field
#: under test and not about an image the API could not read.
IMAGE_REF = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def images(tmp_path):
    """An image service holding ``IMAGE_REF`` (a create reads its imageRef for the block
    device mappings it carries)."""
    service = ImageService(ChunkStore(str(tmp_path / "images"), 1024 * 1024))
    admin = RequestContext.admin()
    service.create(admin, id=IMAGE_REF, name="base", disk_format="raw",
                   container_format="bare", visibility="public")
    service.upload(admin, IMAGE_REF, io.BytesIO(b"a guest's bytes"))
    before = services.image
    services.image = ImageClient(service)
    try:
        yield service
    finally:
        services.image = before


def _create(cloud, version: str, token: str = DEMO, **server):
    body = {"server": {"name": "refused", "flavorRef": "1", "networks": "none",
                       "imageRef": IMAGE_REF, **server}}
    return cloud.post("/servers", body, token=token, version=version)


@pytest.mark.parametrize(("version", "field", "value", "message"), [
    ("2.56", None, None, None),
    ("2.57", "personality", [{"path": "/etc/motd", "contents": "aGk="}],
     "Additional properties are not allowed ('personality' was unexpected)"),
    ("2.62", "trusted_image_certificates", ["cert-1"],
     "Additional properties are not allowed ('trusted_image_certificates' was unexpected)"),
    ("2.63", "trusted_image_certificates", ["cert-1"],
     "Image certificate validation is not supported: this cloud's compute hosts do not "
     "verify image signatures."),
    ("2.63", "trusted_image_certificates", ["dup", "dup"], "has non-unique elements"),
    ("2.63", "trusted_image_certificates", [],
     "Invalid input for field/attribute trusted_image_certificates. Value: []."),
    ("2.66", "block_device_mapping_v2", [{"uuid": "x", "source_type": "image",
                                          "volume_type": "fast"}],
     "Additional properties are not allowed ('volume_type' was unexpected)"),
    ("2.67", "block_device_mapping_v2", [{"uuid": "x", "source_type": "image",
                                          "destination_type": "volume", "boot_index": 0,
                                          "volume_size": 1, "volume_type": "fast"}],
     "Volume type fast could not be found."),
])
def test_create_refusals_change_nothing(cloud, images, version, field, value, message):
    before = _mappings()
    if field is None:  # personality is still accepted (and ignored) below 2.57
        value = [{"path": "/etc/motd", "contents": "aGk="}]
        resp = _create(cloud, version, personality=value)
        # the field passes; whatever stops this in-process create later is not about it
        assert resp.status_int < 500, resp.json
        assert "personality" not in str(resp.json), resp.json
    else:
        resp = _create(cloud, version, **{field: value})
        assert resp.status_int == 400, resp.json
        assert message in resp.json["badRequest"]["message"], resp.json
    assert _mappings() == before


def test_trusted_certificates_need_their_rule_first(cloud, tmp_path):
    from transcell import policy
    from transcell.conf import CONF
    rules = tmp_path / "policy.yaml"
    rules.write_text('"os_compute_api:servers:create:trusted_certs": "rule:admin_api"\n')
    CONF.set_override("policy_file", str(rules), group="oslo_policy")
    policy.reset()
    try:
        resp = _create(cloud, "2.63", trusted_image_certificates=["cert-1"])
        assert resp.status_int == 403
        assert resp.json["forbidden"]["message"] == (
            "Policy doesn't allow os_compute_api:servers:create:trusted_certs to be "
            "performed.")
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()
