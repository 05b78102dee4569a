"""Limits and quota usage counted across cells."""

from __future__ import annotations

import pytest
from compute_api_fixtures import ALT, DEMO

from transcell import exception, quota
from transcell.conf import CONF
from transcell.context import RequestContext

KEYS_21 = {"maxServerMeta", "maxPersonality", "maxPersonalitySize", "maxImageMeta",
           "maxTotalKeypairs", "maxServerGroups", "maxServerGroupMembers", "maxTotalCores",
           "maxTotalInstances", "maxTotalRAMSize", "maxSecurityGroups",
           "maxSecurityGroupRules", "maxTotalFloatingIps", "totalCoresUsed",
           "totalInstancesUsed", "totalRAMUsed", "totalSecurityGroupsUsed",
           "totalFloatingIpsUsed", "totalServerGroupsUsed"}
NETWORK = {"maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps",
           "totalSecurityGroupsUsed", "totalFloatingIpsUsed"}


def _arrange(cloud):
    cloud.add_instance(cloud.cell1, vcpus=2, memory_mb=2048)
    moving = cloud.add_instance(cloud.cell2, vcpus=1, memory_mb=1024)
    cloud.add_instance(cloud.cell1, uuid=moving, vcpus=1, memory_mb=1024, hidden=True,
                       mapped=False)  # the hidden copy of a cross-cell move counts once
    cloud.add_instance(cloud.cell1, vcpus=8, memory_mb=8192, deleted=True)
    cloud.add_instance(cloud.cell0, vcpus=1, memory_mb=512, vm_state="error")
    cloud.add_instance(cloud.cell2, project="alt-project", user="alt", vcpus=4)


def test_usage_is_counted_in_every_cell(cloud):
    _arrange(cloud)
    resp = cloud.get("/limits", token=DEMO)
    assert resp.status_int == 200
    limits = resp.json["limits"]
    assert limits["rate"] == []
    absolute = limits["absolute"]
    assert set(absolute) == KEYS_21
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"],
            absolute["totalRAMUsed"]) == (3, 4, 3584)
    assert (absolute["maxTotalInstances"], absolute["maxTotalCores"],
            absolute["maxTotalRAMSize"]) == (CONF.quota.instances, CONF.quota.cores,
                                             CONF.quota.ram)
    assert absolute["maxServerMeta"] == 128 and absolute["maxTotalFloatingIps"] == 10


def test_keys_change_at_236_and_239(cloud):
    at_236 = set(cloud.get("/limits", token=DEMO, version="2.36").json["limits"]["absolute"])
    assert at_236 == KEYS_21 - NETWORK
    at_239 = set(cloud.get("/limits", token=DEMO, version="2.39").json["limits"]["absolute"])
    assert at_239 == KEYS_21 - NETWORK - {"maxImageMeta"}


def test_257_drops_the_personality_limits(cloud):
    before = set(cloud.get("/limits", token=DEMO, version="2.56").json["limits"]["absolute"])
    assert {"maxPersonality", "maxPersonalitySize"} <= before
    after = set(cloud.get("/limits", token=DEMO, version="2.57").json["limits"]["absolute"])
    assert after == before - {"maxPersonality", "maxPersonalitySize"}


def test_other_projects_need_admin(cloud):
    _arrange(cloud)
    other = cloud.get("/limits?tenant_id=alt-project").json["limits"]["absolute"]
    assert (other["totalInstancesUsed"], other["totalCoresUsed"]) == (1, 4)
    denied = cloud.get("/limits?tenant_id=demo-project", token=ALT)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:limits:other_project_limit to be performed."


def test_check_deltas_names_the_resource(cloud):
    _arrange(cloud)
    CONF.set_override("cores", 6, group="quota")
    try:
        ctx = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
        quota.check_deltas(ctx, "demo-project", instances=1, cores=2, ram=512)
        with pytest.raises(exception.OverQuota) as caught:
            quota.check_deltas(ctx, "demo-project", instances=1, cores=3, ram=512)
        assert caught.value.code == 403
        assert caught.value.message == \
            "Quota exceeded for cores: Requested 3, but already used 4 of 6 cores"
        quota.check_deltas(ctx, "demo-project", cores=-2)  # shrinking always passes
    finally:
        CONF.clear_override("cores", group="quota")
