"""Quotas on a real cloud: set and shown with the openstack CLI, enforced on build,
on a resize that grows and on a revert whose old flavor no longer fits; the disk
config a resize asks for crosses cells with the server; private flavor access
through openstacksdk."""

from __future__ import annotations

import movehelpers as mh
import pytest

COMPUTE = mh.COMPUTE


@pytest.fixture
def demo_project(mcloud):
    project = mcloud.sdk(mh.USER).current_project_id
    yield project
    # the cloud is shared with the other move tests: back to the defaults
    resp = mcloud.request("DELETE", f"{COMPUTE}/os-quota-sets/{project}")
    assert resp.status_code == 202, resp.text


def _detail(cloud, project: str) -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/os-quota-sets/{project}/detail")
    assert resp.status_code == 200, resp.text
    return resp.json()["quota_set"]


def _set(cloud, project: str, **limits) -> dict:
    resp = cloud.request("PUT", f"{COMPUTE}/os-quota-sets/{project}",
                         json={"quota_set": limits})
    assert resp.status_code == 200, resp.text
    return resp.json()["quota_set"]


def _delete(cloud, *server_ids: str) -> None:
    for sid in server_ids:
        cloud.request("DELETE", f"{COMPUTE}/servers/{sid}")
    for sid in server_ids:
        cloud.wait_gone(sid)


def _post_server(cloud, name: str, flavor: str):
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": mh.image_id(cloud),
                       "networks": [{"uuid": mh.network_id(cloud)}]}}
    return cloud.request("POST", f"{COMPUTE}/servers", cloud=mh.USER, json=body)


@pytest.mark.cli
def test_quota_show_and_set_with_the_cli_then_a_build_over_it_is_refused(mcloud,
                                                                          demo_project):
    cloud = mcloud
    shown = {row["Resource"]: row["Limit"] for row in cloud.openstack_json(
        "quota", "show", "--compute", demo_project)}
    defaults = cloud.request("GET", f"{COMPUTE}/os-quota-sets/{demo_project}/defaults",
                             cloud=mh.USER).json()["quota_set"]
    assert (shown["instances"], shown["cores"]) == (defaults["instances"], defaults["cores"])

    used = _detail(cloud, demo_project)["instances"]["in_use"]
    cloud.openstack("quota", "set", "--instances", str(used + 1), demo_project)
    shown = {row["Resource"]: row["Limit"] for row in cloud.openstack_json(
        "quota", "show", "--compute", demo_project)}
    assert shown["instances"] == used + 1
    usage = {row["Resource"]: row for row in cloud.openstack_json(
        "quota", "show", "--compute", "--usage", demo_project)}
    assert usage["instances"]["In Use"] == used

    first = mh.boot(cloud, "quota-one", flavor="1")
    try:
        # os-simple-tenant-usage counts the new server, wherever it landed
        usage = cloud.openstack_json("usage", "show", "--project", demo_project)
        assert first["id"] in {s["instance_id"] for s in usage["Servers"]}, usage
        refused = _post_server(cloud, "quota-two", "1")
        assert refused.status_code == 403, refused.text
        assert refused.json()["forbidden"]["message"] == (
            f"Quota exceeded for instances: Requested 1, but already used {used + 1} of "
            f"{used + 1} instances")
        names = {s["name"] for s in cloud.request("GET", f"{COMPUTE}/servers",
                                                  cloud=mh.USER).json()["servers"]}
        assert "quota-two" not in names
        # the member may read its quotas but not change them
        denied = cloud.request("PUT", f"{COMPUTE}/os-quota-sets/{demo_project}",
                               cloud=mh.USER, json={"quota_set": {"instances": 50}})
        assert denied.status_code == 403
    finally:
        _delete(cloud, first["id"])


def test_resize_growth_is_refused_over_quota_and_revert_needs_the_old_flavor_to_fit(
        mcloud, demo_project):
    cloud = mcloud
    made = cloud.request("POST", f"{COMPUTE}/flavors", json={"flavor": {
        "name": "quota-two-cores", "ram": 512, "vcpus": 2, "disk": 5}})
    assert made.status_code == 200, made.text
    big = made.json()["flavor"]["id"]
    srv = mh.boot(cloud, "quota-resize", flavor=big)
    sid = srv["id"]
    try:
        used = _detail(cloud, demo_project)["cores"]["in_use"]
        _set(cloud, demo_project, cores=used)
        # a resize that does not grow passes; the disk config asked for comes along,
        # across cells (gen1 -> gen2)
        mh.action(cloud, sid, {"resize": {"flavorRef": "21", "OS-DCF:diskConfig": "AUTO"}})
        moved = mh.wait_status(cloud, sid, "VERIFY_RESIZE")
        assert mh.cell_of_host(mh.host_of(moved)) == "cell2"
        assert moved["OS-DCF:diskConfig"] == "AUTO"
        # the limits drop under the old flavor while the resize waits: no revert
        _set(cloud, demo_project, cores=used - 1, force=True)
        refused = mh.action(cloud, sid, {"revertResize": None}, expect=403)
        assert refused.json()["forbidden"]["message"] == (
            f"Quota exceeded for cores: Requested 1, but already used {used - 1} of "
            f"{used - 1} cores")
        assert mh.server(cloud, sid)["status"] == "VERIFY_RESIZE"
        mh.action(cloud, sid, {"confirmResize": None}, expect=204)
        mh.wait_status(cloud, sid, "ACTIVE")

        # now at one vCPU: growing back to two is refused, and nothing moves
        grow = mh.action(cloud, sid, {"resize": {"flavorRef": big}}, expect=403)
        assert grow.json()["forbidden"]["message"].startswith("Quota exceeded for cores: "
                                                              "Requested 1")
        after = mh.server(cloud, sid)
        assert after["status"] == "ACTIVE" and after["OS-EXT-STS:task_state"] is None
        assert after["flavor"]["original_name"] == "gen2.small"
        assert after["OS-DCF:diskConfig"] == "AUTO"
    finally:
        _delete(cloud, sid)
        cloud.request("DELETE", f"{COMPUTE}/flavors/{big}")


def test_private_flavor_access_with_openstacksdk(mcloud, demo_project):
    admin = mcloud.sdk(mh.ADMIN)
    demo = mcloud.sdk(mh.USER)
    flavor = admin.compute.create_flavor(name="quota-private", ram=256, vcpus=1, disk=1,
                                         is_public=False)
    try:
        assert demo.compute.find_flavor("quota-private") is None
        admin.compute.flavor_add_tenant_access(flavor, demo_project)
        access = admin.compute.get_flavor_access(flavor)
        assert [a["tenant_id"] for a in access] == [demo_project]
        assert demo.compute.find_flavor("quota-private").id == flavor.id
        admin.compute.flavor_remove_tenant_access(flavor, demo_project)
        assert admin.compute.get_flavor_access(flavor) == []
        assert demo.compute.find_flavor("quota-private") is None
    finally:
        admin.compute.delete_flavor(flavor)
