"""Policy defaults (Nova's rule names) and operator overrides."""

from __future__ import annotations

import pytest

from transcell import exception, policy
from transcell.conf import CONF
from transcell.context import RequestContext

PROJECT = "p-demo"
OTHER = "p-alt"


def ctx(*roles: str, project: str = PROJECT, user: str = "u-demo") -> RequestContext:
    return RequestContext(user_id=user, project_id=project, roles=list(roles))


MEMBER = ("member", "reader")
ADMIN = ("admin", "manager", "member", "reader")


@pytest.fixture(autouse=True)
def fresh_enforcer():
    policy.reset()
    yield
    policy.reset()


def test_member_may_create_a_server_in_its_project():
    policy.authorize(ctx(*MEMBER), "os_compute_api:servers:create")


def test_reader_may_look_but_not_create():
    reader = ctx("reader")
    policy.authorize(reader, "os_compute_api:servers:show")
    with pytest.raises(exception.Forbidden) as caught:
        policy.authorize(reader, "os_compute_api:servers:create")
    assert caught.value.code == 403
    assert caught.value.message == \
        "Policy doesn't allow os_compute_api:servers:create to be performed."


def test_another_projects_server_is_out_of_reach():
    target = {"project_id": OTHER, "user_id": "u-alt"}
    for action in ("os_compute_api:servers:show", "os_compute_api:servers:delete",
                   "os_compute_api:servers:resize", "compute:servers:resize:cross_cell"):
        assert not policy.check(ctx(*MEMBER), action, target)
    with pytest.raises(exception.Forbidden):
        policy.authorize(ctx(*MEMBER), "os_compute_api:servers:delete", target)


def test_admin_may_act_on_any_project():
    target = {"project_id": OTHER, "user_id": "u-alt"}
    admin = ctx(*ADMIN, project="p-admin", user="u-admin")
    for action in ("os_compute_api:servers:delete", "os_compute_api:os-migrate-server:migrate",
                   "os_compute_api:servers:detail:get_all_tenants",
                   "os_compute_api:os-hypervisors:list", "os_compute_api:os-keypairs:show"):
        policy.authorize(admin, action, target)


def test_admin_only_rules_refuse_members_and_managers():
    for roles in (MEMBER, ("manager", "member", "reader")):
        for action in ("os_compute_api:os-migrate-server:migrate",
                       "os_compute_api:os-flavor-manage:create",
                       "os_compute_api:os-extended-server-attributes",
                       "os_compute_api:servers:show:host_status",
                       "os_compute_api:os-migrations:index"):
            assert not policy.check(ctx(*roles), action)


def test_rules_open_to_anyone():
    nobody = ctx()
    assert policy.check(nobody, "os_compute_api:limits")
    assert policy.check(nobody, "os_compute_api:os-flavor-extra-specs:index",
                        {"project_id": OTHER})
    assert not policy.check(nobody, "os_compute_api:limits:other_project_limit")


def test_keypairs_belong_to_their_user():
    member = ctx(*MEMBER, user="u-demo")
    assert policy.check(member, "os_compute_api:os-keypairs:show", {"user_id": "u-demo"})
    assert not policy.check(member, "os_compute_api:os-keypairs:show", {"user_id": "u-alt"})


def test_every_default_rule_is_documented_and_registered():
    names = [rule.name for rule in policy.list_rules()]
    assert len(names) == len(set(names))
    assert {"admin_api", "project_member_or_admin", "os_compute_api:servers:index",
            "os_compute_api:os-instance-actions:events:details"} <= set(names)
    enforcer = policy.get_enforcer()
    assert set(names) <= set(enforcer.rules)


def test_unknown_rule_fails_loudly():
    from oslo_policy.policy import PolicyNotRegistered

    with pytest.raises(PolicyNotRegistered):
        policy.authorize(ctx(*ADMIN), "os_compute_api:servers:no-such-thing")


def test_policy_file_overrides_a_default(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:servers:create": "rule:admin_api"\n'
                           '"os_compute_api:os-migrate-server:migrate": '
                           '"rule:project_member_or_admin"\n')
    CONF.set_override("policy_file", str(policy_file), group="oslo_policy")
    try:
        policy.reset()
        assert not policy.check(ctx(*MEMBER), "os_compute_api:servers:create")
        assert policy.check(ctx(*MEMBER), "os_compute_api:os-migrate-server:migrate")
        assert policy.check(ctx(*MEMBER), "os_compute_api:servers:delete")  # untouched
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")


def test_credentials_carry_what_rules_match_on():
    creds = policy.credentials(ctx(*ADMIN))
    assert creds == {"user_id": "u-demo", "project_id": PROJECT, "roles": list(ADMIN),
                     "is_admin": True}
