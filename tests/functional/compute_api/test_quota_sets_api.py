"""os-quota-sets and os-quota-class-sets through the compute API, and /limits after them."""

from __future__ import annotations

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import ALT, DEMO, DEMO_READER

from transcell import exception, quota
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.api.compute.routes import ROUTES
from transcell.conf import CONF
from transcell.context import RequestContext

BASE = {"instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups",
        "server_group_members"}
FILES = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
NETWORK = {"floating_ips", "fixed_ips", "security_groups", "security_group_rules"}


@pytest.fixture
def qcloud(cloud):
    cloud.app = ComputeApp(ROUTES, fx.fake_authenticate, nova_fault)
    return cloud


def test_show_names_the_resources_of_each_microversion(qcloud):
    body = qcloud.get("/os-quota-sets/demo-project", token=DEMO).json["quota_set"]
    assert set(body) == BASE | FILES | NETWORK | {"id"}
    assert body["id"] == "demo-project"
    assert body["instances"] == CONF.quota.instances
    assert body["injected_file_path_bytes"] == CONF.quota.injected_file_path_length
    assert (body["floating_ips"], body["fixed_ips"]) == (10, -1)
    at_236 = qcloud.get("/os-quota-sets/demo-project", token=DEMO, version="2.36").json
    assert set(at_236["quota_set"]) == BASE | FILES | {"id"}
    at_257 = qcloud.get("/os-quota-sets/demo-project", token=DEMO, version="2.57").json
    assert set(at_257["quota_set"]) == BASE | {"id"}


def test_detail_counts_use_in_every_cell(qcloud):
    qcloud.add_instance(qcloud.cell1, vcpus=2, memory_mb=1024)
    qcloud.add_instance(qcloud.cell2, vcpus=3, memory_mb=2048)
    qcloud.add_instance(qcloud.cell2, project="alt-project", user="alt", vcpus=8)
    body = qcloud.get("/os-quota-sets/demo-project/detail", token=DEMO,
                      version="2.57").json["quota_set"]
    assert set(body) == BASE | {"id"}
    assert body["instances"] == {"in_use": 2, "limit": CONF.quota.instances, "reserved": 0}
    assert body["cores"]["in_use"] == 5 and body["ram"]["in_use"] == 3072
    assert body["key_pairs"]["in_use"] == 0


def test_update_show_and_delete_a_project_and_a_user(qcloud):
    resp = qcloud.put("/os-quota-sets/demo-project",
                      {"quota_set": {"instances": 7, "cores": "30", "ram": -1}})
    assert resp.status_int == 200, resp.body
    assert "id" not in resp.json["quota_set"]
    assert (resp.json["quota_set"]["instances"], resp.json["quota_set"]["cores"],
            resp.json["quota_set"]["ram"]) == (7, 30, -1)
    shown = qcloud.get("/os-quota-sets/demo-project", token=DEMO).json["quota_set"]
    assert (shown["instances"], shown["cores"]) == (7, 30)
    other = qcloud.get("/os-quota-sets/alt-project", token=ALT).json["quota_set"]
    assert other["instances"] == CONF.quota.instances  # only the one project changed

    user = qcloud.put("/os-quota-sets/demo-project?user_id=demo",
                      {"quota_set": {"instances": 3}})
    assert user.status_int == 200 and user.json["quota_set"]["instances"] == 3
    assert qcloud.get("/os-quota-sets/demo-project?user_id=demo",
                      token=DEMO).json["quota_set"]["instances"] == 3
    too_high = qcloud.put("/os-quota-sets/demo-project?user_id=demo",
                          {"quota_set": {"instances": 8}})
    assert too_high.status_int == 400
    assert too_high.json["badRequest"]["message"] == \
        "Quota limit 8 for instances must be less than or equal to 7."

    assert qcloud.delete("/os-quota-sets/demo-project?user_id=demo").status_int == 202
    assert qcloud.get("/os-quota-sets/demo-project?user_id=demo",
                      token=DEMO).json["quota_set"]["instances"] == 7
    assert qcloud.delete("/os-quota-sets/demo-project").status_int == 202
    assert qcloud.get("/os-quota-sets/demo-project",
                      token=DEMO).json["quota_set"]["instances"] == CONF.quota.instances


@pytest.mark.parametrize("body, message", [
    ({"quota_set": {"instances": -2}},
     "Invalid input for field/attribute instances. Value: -2. -2 is less than the minimum "
     "of -1"),
    ({"quota_set": {"instances": "-5"}},
     "Invalid input for field/attribute instances. Value: -5. -5 is less than the minimum "
     "of -1"),
    ({"quota_set": {"cores": "many"}}, None),
    ({"quota_set": {"bogus": 1}}, None),
    ({"quota_set": {"instances": 1}, "extra": 1}, None),
])
def test_bad_updates_are_400_and_change_nothing(qcloud, body, message):
    resp = qcloud.put("/os-quota-sets/demo-project", body)
    assert resp.status_int == 400, resp.body
    if message:
        assert resp.json["badRequest"]["message"] == message
    assert quota.overrides("demo-project") == {}


def test_network_and_file_keys_are_refused_where_the_microversion_dropped_them(qcloud):
    assert qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"floating_ips": 3}},
                      version="2.35").status_int == 200
    assert qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"floating_ips": 3}},
                      version="2.36").status_int == 400
    assert qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"injected_files": 3}},
                      version="2.56").status_int == 200
    assert qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"injected_files": 3}},
                      version="2.57").status_int == 400


def test_a_limit_below_use_needs_force(qcloud):
    for _ in range(3):
        qcloud.add_instance(qcloud.cell1, vcpus=2)
    refused = qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"instances": 2}})
    assert refused.status_int == 400
    assert refused.json["badRequest"]["message"] == \
        "Quota limit 2 for instances must be greater than or equal to already used and " \
        "reserved 3."
    assert quota.overrides("demo-project") == {}
    forced = qcloud.put("/os-quota-sets/demo-project",
                        {"quota_set": {"instances": 2, "force": True}})
    assert forced.status_int == 200 and forced.json["quota_set"]["instances"] == 2
    # and over it, a build is refused with Nova's message
    ctx = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
    with pytest.raises(exception.OverQuota) as caught:
        quota.check_deltas(ctx, "demo-project", instances=1, cores=1, ram=512)
    assert caught.value.message == \
        "Quota exceeded for instances: Requested 1, but already used 3 of 2 instances"


def test_policy(qcloud):
    denied = qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"instances": 1}},
                        token=DEMO)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed."
    assert qcloud.delete("/os-quota-sets/demo-project", token=DEMO).status_int == 403
    assert qcloud.get("/os-quota-sets/alt-project", token=DEMO).status_int == 403
    assert qcloud.get("/os-quota-sets/alt-project/detail", token=DEMO).status_int == 403
    assert qcloud.get("/os-quota-sets/demo-project", token=DEMO_READER).status_int == 200
    assert qcloud.get("/os-quota-sets/alt-project/defaults", token=DEMO).status_int == 200
    assert qcloud.get("/os-quota-class-sets/default", token=DEMO).status_int == 403
    assert qcloud.put("/os-quota-class-sets/default",
                      {"quota_class_set": {"instances": 1}}, token=DEMO).status_int == 403
    assert quota.overrides("demo-project") == {}
    assert quota.class_limits()["instances"] == CONF.quota.instances


def test_class_default_replaces_the_configured_defaults(qcloud):
    qcloud.add_instance(qcloud.cell1, vcpus=2, memory_mb=1024)
    resp = qcloud.put("/os-quota-class-sets/default",
                      {"quota_class_set": {"instances": 4, "metadata_items": 7}},
                      version="2.57")
    assert resp.status_int == 200, resp.body
    assert set(resp.json["quota_class_set"]) == BASE
    assert resp.json["quota_class_set"]["instances"] == 4
    shown = qcloud.get("/os-quota-class-sets/default", version="2.57").json
    assert shown["quota_class_set"]["id"] == "default"
    assert shown["quota_class_set"]["metadata_items"] == 7
    defaults = qcloud.get("/os-quota-sets/demo-project/defaults", token=DEMO).json
    assert defaults["quota_set"]["instances"] == 4
    assert qcloud.get("/os-quota-sets/demo-project",
                      token=DEMO).json["quota_set"]["instances"] == 4
    limits = qcloud.get("/limits", token=DEMO).json["limits"]["absolute"]
    assert (limits["maxTotalInstances"], limits["maxServerMeta"]) == (4, 7)
    # a project's own limit still wins over the class
    qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"instances": 9}})
    limits = qcloud.get("/limits", token=DEMO).json["limits"]["absolute"]
    assert (limits["maxTotalInstances"], limits["totalInstancesUsed"]) == (9, 1)


def test_class_bodies_per_microversion(qcloud):
    old = qcloud.get("/os-quota-class-sets/default", version="2.49").json["quota_class_set"]
    assert set(old) == (BASE - {"server_groups", "server_group_members"}) | FILES | \
        NETWORK | {"id"}
    mid = qcloud.get("/os-quota-class-sets/default", version="2.50").json["quota_class_set"]
    assert set(mid) == BASE | FILES | {"id"}
    assert qcloud.put("/os-quota-class-sets/default", {"quota_class_set": {"fixed_ips": 1}},
                      version="2.50").status_int == 400
    bad = qcloud.put("/os-quota-class-sets/default", {"quota_class_set": {"cores": -3}})
    assert bad.status_int == 400
    assert quota.class_limits()["cores"] == CONF.quota.cores


def test_limits_follow_a_project_quota_and_counts_server_groups(qcloud):
    qcloud.put("/os-quota-sets/demo-project",
               {"quota_set": {"cores": 12, "server_groups": 3, "key_pairs": 2}})
    absolute = qcloud.get("/limits", token=DEMO).json["limits"]["absolute"]
    assert (absolute["maxTotalCores"], absolute["maxServerGroups"],
            absolute["maxTotalKeypairs"]) == (12, 3, 2)
    assert qcloud.get("/limits", token=ALT).json["limits"]["absolute"]["maxTotalCores"] == \
        CONF.quota.cores


def test_a_project_key_pair_limit_holds_for_its_users(qcloud):
    qcloud.put("/os-quota-sets/demo-project", {"quota_set": {"key_pairs": 1}})
    first = qcloud.post("/os-keypairs", {"keypair": {"name": "one"}}, token=DEMO)
    assert first.status_int == 200, first.body
    second = qcloud.post("/os-keypairs", {"keypair": {"name": "two"}}, token=DEMO)
    assert second.status_int == 403
    assert second.json["forbidden"]["message"] == "Quota exceeded, too many key pairs."
    detail = qcloud.get("/os-quota-sets/demo-project/detail?user_id=demo",
                        token=DEMO).json["quota_set"]
    assert detail["key_pairs"] == {"in_use": 1, "limit": 1, "reserved": 0}
    assert qcloud.post("/os-keypairs", {"keypair": {"name": "two"}},
                       token=ALT).status_int == 200


def test_a_user_limit_holds_that_user_only(qcloud):
    qcloud.add_instance(qcloud.cell1, user="demo")
    qcloud.add_instance(qcloud.cell2, user="other")
    resp = qcloud.put("/os-quota-sets/demo-project?user_id=demo",
                      {"quota_set": {"instances": 1}})
    assert resp.status_int == 200, resp.body
    demo = RequestContext(user_id="demo", project_id="demo-project", roles=["member"])
    other = RequestContext(user_id="other", project_id="demo-project", roles=["member"])
    with pytest.raises(exception.OverQuota) as caught:
        quota.check_deltas(demo, "demo-project", instances=1, cores=1, ram=512)
    assert caught.value.message == \
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    quota.check_deltas(other, "demo-project", instances=1, cores=1, ram=512)
    detail = qcloud.get("/os-quota-sets/demo-project/detail?user_id=demo",
                        token=DEMO).json["quota_set"]
    assert detail["instances"] == {"in_use": 1, "limit": 1, "reserved": 0}
    below = qcloud.put("/os-quota-sets/demo-project?user_id=demo",
                       {"quota_set": {"instances": 0}})
    assert below.status_int == 400


@pytest.mark.parametrize("path, body", [
    ("/os-quota-sets/demo-project", {"quota_set": {"instances": "9" * 5000}}),
    ("/os-quota-sets/demo-project", {"quota_set": {"instances": "2147483648"}}),
    ("/os-quota-sets/demo%00project", {"quota_set": {"instances": 3}}),
    ("/os-quota-sets/demo-project?user_id=%1b", {"quota_set": {"instances": 3}}),
    ("/os-quota-class-sets/de%00fault", {"quota_class_set": {"instances": 3}}),
])
def test_hostile_updates_are_400_and_store_nothing(qcloud, path, body):
    resp = qcloud.put(path, body)
    assert resp.status_int == 400, resp.body
    assert quota.overrides("demo-project") == {}
    assert quota.class_limits("de\x00fault")["instances"] == CONF.quota.instances
