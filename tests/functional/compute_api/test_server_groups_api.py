"""/os-server-groups: create, list, show, delete; the 2.64 body and its rules; quotas."""

from __future__ import annotations

import pytest
from compute_api_fixtures import ADMIN, ALT, DEMO, DEMO_READER, fake_authenticate
from test_down_cells_api import down  # noqa: F401 (a fixture: cell2 is down)

from transcell.api.compute import routes
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db.session import api_session


@pytest.fixture
def gcloud(cloud):
    cloud.app = ComputeApp(routes.ROUTES, fake_authenticate, nova_fault)
    return cloud


def _create(cloud, body, token=DEMO, version=None):
    return cloud.post("/os-server-groups", {"server_group": body}, token=token, version=version)


def test_lifecycle_before_264(gcloud):
    made = _create(gcloud, {"name": "web", "policies": ["anti-affinity"]}, version="2.13")
    assert made.status_int == 200
    group = made.json["server_group"]
    assert group["name"] == "web" and group["policies"] == ["anti-affinity"]
    assert group["members"] == [] and group["metadata"] == {}
    assert group["project_id"] == "demo-project" and group["user_id"] == "demo"
    assert "policy" not in group and "rules" not in group
    shown = gcloud.get(f"/os-server-groups/{group['id']}", token=DEMO_READER, version="2.13")
    assert shown.json["server_group"] == group
    # 2.1 shows no owner
    old = gcloud.get(f"/os-server-groups/{group['id']}", token=DEMO).json["server_group"]
    assert "project_id" not in old
    listed = gcloud.get("/os-server-groups", token=DEMO).json["server_groups"]
    assert [g["id"] for g in listed] == [group["id"]]
    assert gcloud.delete(f"/os-server-groups/{group['id']}", token=DEMO).status_int == 204
    gone = gcloud.get(f"/os-server-groups/{group['id']}", token=DEMO)
    assert gone.status_int == 404
    assert gone.json["itemNotFound"]["message"] == \
        f"Instance group {group['id']} could not be found."
    assert gcloud.delete(f"/os-server-groups/{group['id']}", token=DEMO).status_int == 404


@pytest.mark.parametrize("policy", ["affinity", "anti-affinity", "soft-affinity",
                                    "soft-anti-affinity"])
def test_every_policy_from_264(gcloud, policy):
    made = _create(gcloud, {"name": "g", "policy": policy}, version="2.64")
    assert made.status_int == 200, made.json
    group = made.json["server_group"]
    assert group["policy"] == policy and group["rules"] == {}
    assert "policies" not in group and "metadata" not in group
    # the same group seen before 2.64
    old = gcloud.get(f"/os-server-groups/{group['id']}", token=DEMO, version="2.63")
    assert old.json["server_group"]["policies"] == [policy]


def test_max_server_per_host_only_with_anti_affinity(gcloud):
    made = _create(gcloud, {"name": "g", "policy": "anti-affinity",
                            "rules": {"max_server_per_host": 2}}, version="2.64")
    assert made.status_int == 200
    assert made.json["server_group"]["rules"] == {"max_server_per_host": 2}
    refused = _create(gcloud, {"name": "g", "policy": "affinity",
                               "rules": {"max_server_per_host": 2}}, version="2.64")
    assert refused.status_int == 400
    assert refused.json["badRequest"]["message"] == "Only anti-affinity policy supports rules."


@pytest.mark.parametrize("version,body", [
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": -1}}),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": "x"}}),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"other": 1}}),
    ("2.64", {"name": "g", "policy": "spread"}),
    ("2.64", {"name": "g", "policies": ["affinity"]}),
    ("2.64", {"name": "g"}),
    ("2.64", {"policy": "affinity"}),
    ("2.63", {"name": "g", "policy": "affinity"}),
    ("2.63", {"name": "g", "policies": ["affinity", "anti-affinity"]}),
    ("2.63", {"name": "g", "policies": []}),
    ("2.63", {"name": "g", "policies": ["affinity"], "rules": {}}),
    ("2.14", {"name": "g", "policies": ["soft-affinity"]}),
    ("2.1", {"name": "", "policies": ["affinity"]}),
    ("2.1", {"name": " lead", "policies": ["affinity"]}),
    ("2.1", {"name": "x" * 256, "policies": ["affinity"]}),
])
def test_bad_bodies_are_400_and_create_nothing(gcloud, version, body):
    resp = _create(gcloud, body, version=version)
    assert resp.status_int == 400, resp.json
    assert gcloud.get("/os-server-groups", token=DEMO).json["server_groups"] == []


def test_soft_policies_from_215(gcloud):
    assert _create(gcloud, {"name": "g", "policies": ["soft-anti-affinity"]},
                   version="2.15").status_int == 200


def test_projects_and_all_projects(gcloud):
    mine = _create(gcloud, {"name": "d", "policies": ["affinity"]}).json["server_group"]
    theirs = _create(gcloud, {"name": "a", "policies": ["affinity"]},
                     token=ALT).json["server_group"]
    assert [g["id"] for g in gcloud.get("/os-server-groups", token=DEMO).json[
        "server_groups"]] == [mine["id"]]
    # all_projects is the administrator's; anyone else just sees their own
    assert [g["id"] for g in gcloud.get("/os-server-groups?all_projects=True", token=DEMO
                                        ).json["server_groups"]] == [mine["id"]]
    everyone = gcloud.get("/os-server-groups?all_projects=True", token=ADMIN).json
    assert {g["id"] for g in everyone["server_groups"]} == {mine["id"], theirs["id"]}
    assert gcloud.get("/os-server-groups", token=ADMIN).json["server_groups"] == []
    paged = gcloud.get("/os-server-groups?all_projects=True&limit=1&offset=1", token=ADMIN)
    assert [g["id"] for g in paged.json["server_groups"]] == [theirs["id"]]
    assert gcloud.get("/os-server-groups?limit=-1", token=DEMO).status_int == 400
    assert gcloud.get("/os-server-groups?bogus=1", token=DEMO, version="2.75"
                      ).status_int == 400
    # another project's group: not theirs to show or delete
    assert gcloud.get(f"/os-server-groups/{theirs['id']}", token=DEMO).status_int == 403
    assert gcloud.delete(f"/os-server-groups/{theirs['id']}", token=DEMO).status_int == 403
    assert gcloud.get(f"/os-server-groups/{theirs['id']}", token=ADMIN).status_int == 200


def test_reader_cannot_create_or_delete(gcloud):
    denied = _create(gcloud, {"name": "g", "policies": ["affinity"]}, token=DEMO_READER)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-server-groups:create to be performed."
    group = _create(gcloud, {"name": "g", "policies": ["affinity"]}).json["server_group"]
    assert gcloud.delete(f"/os-server-groups/{group['id']}", token=DEMO_READER
                         ).status_int == 403


def test_server_groups_quota_is_403(gcloud):
    CONF.set_override("server_groups", 2, group="quota")
    try:
        for name in ("a", "b"):
            assert _create(gcloud, {"name": name, "policies": ["affinity"]}).status_int == 200
        over = _create(gcloud, {"name": "c", "policies": ["affinity"]})
        assert over.status_int == 403
        assert over.json["forbidden"]["message"] == "Quota exceeded, too many server groups."
        assert len(gcloud.get("/os-server-groups", token=DEMO).json["server_groups"]) == 2
        # the quota is per project
        assert _create(gcloud, {"name": "c", "policies": ["affinity"]},
                       token=ALT).status_int == 200
    finally:
        CONF.clear_override("server_groups", group="quota")


def test_audit_reports_broken_policies_and_fixes_gone_members(gcloud):
    from transcell.audit import server_groups as audit_groups
    from transcell.audit import state
    from transcell.compute import server_groups as groups

    def made(policy: str, rules: dict | None = None) -> groups.Group:
        body = {"name": policy, "policy": policy, **({"rules": rules} if rules else {})}
        gid = _create(gcloud, body, version="2.64").json["server_group"]["id"]
        return groups.get(gid)

    anti = made("anti-affinity", {"max_server_per_host": 2})
    together = made("affinity")
    for host in ("h1", "h1"):
        groups.add_member(anti, gcloud.add_instance(gcloud.cell1, host=host))
    groups.add_member(together, gcloud.add_instance(gcloud.cell1, host="h1"))
    groups.add_member(together, gcloud.add_instance(gcloud.cell2, host="h2"))
    assert [p.subject for p in audit_groups.check(state.load())] == [together.uuid]
    # a third member on h1 breaks the anti-affinity rule, across cells too
    groups.add_member(anti, gcloud.add_instance(gcloud.cell2, host="h1"))
    found = {p.subject: p for p in audit_groups.check(state.load())}
    assert set(found) == {anti.uuid, together.uuid}
    assert "more than 2 member(s) on h1" in found[anti.uuid].detail
    # a membership whose server is gone is reported and repaired
    gone = "4a3c9b52-0000-4000-8000-000000000001"
    with api_session() as s:
        s.add(am.InstanceGroupMember(group_id=anti.id, instance_uuid=gone))
    stale = [p for p in audit_groups.check(state.load()) if p.kind == "group-member-gone"]
    assert [p.subject for p in stale] == [gone]
    assert "removed server" in stale[0].repair()
    assert not [p for p in audit_groups.check(state.load()) if p.kind == "group-member-gone"]


def test_a_server_whose_cell_is_down_still_shows_its_group(gcloud, down):  # noqa: F811
    from transcell.compute import server_groups as groups

    gid = _create(gcloud, {"name": "g", "policies": ["affinity"]}).json["server_group"]["id"]
    groups.add_member(groups.get(gid), down["stranded"])
    shown = gcloud.get(f"/servers/{down['stranded']}", token=DEMO, version="2.71")
    assert shown.status_int == 200, shown.text
    assert shown.json["server"]["status"] == "UNKNOWN"
    assert shown.json["server"]["server_groups"] == [gid]
    assert gcloud.get(f"/os-server-groups/{gid}", token=DEMO).json["server_group"][
        "members"] == [down["stranded"]]
