"""Who may do what, with Nova's rule names and defaults.

Rules are oslo.policy defaults declared in code, so an operator's policy file
written for Nova (``[oslo_policy] policy_file``) carries over: it only needs
to name the rules it changes. The personas follow Keystone's default roles
(reader < member < manager < admin), which the identity service expands into
every token, so a rule asking for ``role:reader`` also admits a member.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy as oslo_policy

from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.policies import compute_actions as compute_action_policies
from transcell.policies import compute_admin as compute_admin_policies
from transcell.policies import compute_images as compute_image_policies
from transcell.policies import compute_legacy as compute_legacy_policies
from transcell.policies import compute_servers as compute_server_policies
from transcell.policies import compute_shelve as compute_shelve_policies
from transcell.policies import image as image_policies
from transcell.policies import network as network_policies
from transcell.policies import volume as volume_policies

policy_opts.set_defaults(CONF)

ADMIN = "rule:admin_api"
MEMBER_OR_ADMIN = "rule:project_member_or_admin"
READER_OR_ADMIN = "rule:project_reader_or_admin"
ANYONE = "@"
OWNER_OR_ADMIN = "(rule:admin_api) or user_id:%(user_id)s"

SERVERS = "/servers"
SERVER = "/servers/{server_id}"
ACTION = "/servers/{server_id}/action"
FLAVOR = "/flavors/{flavor_id}"
EXTRA_SPECS = "/flavors/{flavor_id}/os-extra_specs"
EXTRA_SPEC = "/flavors/{flavor_id}/os-extra_specs/{flavor_extra_spec_key}"
KEYPAIRS = "/os-keypairs"
KEYPAIR = "/os-keypairs/{keypair_name}"
ACTIONS = "/servers/{server_id}/os-instance-actions"
ACTION_DETAIL = "/servers/{server_id}/os-instance-actions/{request_id}"
AGGREGATES = "/os-aggregates"
AGGREGATE = "/os-aggregates/{aggregate_id}"
GRANT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"

_BASE_RULES = [
    ("context_is_admin", "role:admin", "The admin role, whatever the project."),
    ("admin_api", "role:admin", "An administrator of the cloud."),
    ("service_api", "role:service",
     "Another service acting for a user (compute hosts, the conductor); not for people."),
    ("admin_or_service", "rule:admin_api or rule:service_api",
     "An administrator, or another service."),
    ("project_reader_api", "role:reader and project_id:%(project_id)s",
     "Anyone with at least read access to the target's project."),
    ("project_member_api", "role:member and project_id:%(project_id)s",
     "A member (or higher) of the target's project."),
    ("project_manager_api", "role:manager and project_id:%(project_id)s",
     "A manager (or admin) of the target's project."),
    ("project_reader_or_admin", "rule:project_reader_api or rule:admin_api",
     "A reader of the target's project, or an administrator."),
    ("project_member_or_admin", "rule:project_member_api or rule:admin_api",
     "A member of the target's project, or an administrator."),
    ("project_manager_or_admin", "rule:project_manager_api or rule:admin_api",
     "A manager of the target's project, or an administrator."),
]

#: (name, check string, description, [(method, path), ...])
_API_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    # servers
    ("os_compute_api:servers:index", READER_OR_ADMIN, "List servers.",
     [("GET", SERVERS)]),
    ("os_compute_api:servers:detail", READER_OR_ADMIN, "List servers with details.",
     [("GET", SERVERS + "/detail")]),
    ("os_compute_api:servers:index:get_all_tenants", ADMIN,
     "List servers of every project.", [("GET", SERVERS)]),
    ("os_compute_api:servers:detail:get_all_tenants", ADMIN,
     "List servers of every project with details.", [("GET", SERVERS + "/detail")]),
    ("os_compute_api:servers:allow_all_filters", ADMIN,
     "Filter server lists by any attribute, not only the public ones.",
     [("GET", SERVERS), ("GET", SERVERS + "/detail")]),
    ("os_compute_api:servers:show", READER_OR_ADMIN, "Show a server.", [("GET", SERVER)]),
    ("os_compute_api:servers:show:host_status", ADMIN,
     "Show the status of a server's host.",
     [("GET", SERVER), ("GET", SERVERS + "/detail")]),
    ("os_compute_api:servers:create", MEMBER_OR_ADMIN, "Create a server.",
     [("POST", SERVERS)]),
    ("os_compute_api:servers:create:trusted_certs", MEMBER_OR_ADMIN,
     "Ask for image signature certificate validation when creating a server (2.63).",
     [("POST", SERVERS)]),
    ("compute:servers:create:requested_destination", ADMIN,
     "Create a server on a chosen compute host and/or hypervisor (host and "
     "hypervisor_hostname, 2.74).", [("POST", SERVERS)]),
    ("os_compute_api:servers:update", MEMBER_OR_ADMIN, "Update a server.",
     [("PUT", SERVER)]),
    ("os_compute_api:servers:delete", MEMBER_OR_ADMIN, "Delete a server.",
     [("DELETE", SERVER)]),
    ("os_compute_api:servers:start", MEMBER_OR_ADMIN, "Start a server (os-start).",
     [("POST", ACTION)]),
    ("os_compute_api:servers:stop", MEMBER_OR_ADMIN, "Stop a server (os-stop).",
     [("POST", ACTION)]),
    ("os_compute_api:os-extended-server-attributes", ADMIN,
     "Show the OS-EXT-SRV-ATTR fields of a server (host, instance name, ...).",
     [("GET", SERVER), ("GET", SERVERS + "/detail")]),
    # moves
    ("os_compute_api:servers:resize", MEMBER_OR_ADMIN, "Resize a server.",
     [("POST", ACTION)]),
    ("compute:servers:resize:cross_cell", MEMBER_OR_ADMIN,
     "Let a resize move the server to another cell.", [("POST", ACTION)]),
    ("os_compute_api:servers:confirm_resize", MEMBER_OR_ADMIN,
     "Confirm a resize or cold migration.", [("POST", ACTION)]),
    ("os_compute_api:servers:revert_resize", MEMBER_OR_ADMIN,
     "Revert a resize or cold migration.", [("POST", ACTION)]),
    ("os_compute_api:os-migrate-server:migrate", ADMIN, "Cold migrate a server.",
     [("POST", ACTION)]),
    ("os_compute_api:os-migrate-server:migrate:host", ADMIN,
     "Cold migrate a server to a chosen host.", [("POST", ACTION)]),
    ("os_compute_api:os-migrations:index", ADMIN, "List migrations.",
     [("GET", "/os-migrations")]),
    ("compute:servers:move:readdress_ports", MEMBER_OR_ADMIN,
     "Let a resize or migration give the server's ports addresses of the target cell "
     "when their network segment does not reach it (transcell:readdress_ports).",
     [("POST", ACTION)]),
    ("os_compute_api:os-transcell-move-plans", ADMIN,
     "Plan a move of one server or of every server of a cell without changing anything.",
     [("POST", "/os-transcell-move-plans")]),
    ("os_compute_api:os-transcell-drains", ADMIN,
     "Drain a cell (move every server off it), list and show drains, pause and resume "
     "them.",
     [("POST", "/os-transcell-drains"), ("GET", "/os-transcell-drains"),
      ("GET", "/os-transcell-drains/{drain_id}"),
      ("POST", "/os-transcell-drains/{drain_id}/action")]),
    # flavors
    ("os_compute_api:os-flavor-manage:create", ADMIN, "Create a flavor.",
     [("POST", "/flavors")]),
    ("os_compute_api:os-flavor-manage:update", ADMIN, "Update a flavor's description.",
     [("PUT", FLAVOR)]),
    ("os_compute_api:os-flavor-manage:delete", ADMIN, "Delete a flavor.",
     [("DELETE", FLAVOR)]),
    ("os_compute_api:os-flavor-extra-specs:index", ANYONE, "List a flavor's extra specs.",
     [("GET", EXTRA_SPECS)]),
    ("os_compute_api:os-flavor-extra-specs:show", ANYONE, "Show a flavor extra spec.",
     [("GET", EXTRA_SPEC)]),
    ("os_compute_api:os-flavor-extra-specs:create", ADMIN, "Create flavor extra specs.",
     [("POST", EXTRA_SPECS)]),
    ("os_compute_api:os-flavor-extra-specs:update", ADMIN, "Update a flavor extra spec.",
     [("PUT", EXTRA_SPEC)]),
    ("os_compute_api:os-flavor-extra-specs:delete", ADMIN, "Delete a flavor extra spec.",
     [("DELETE", EXTRA_SPEC)]),
    ("os_compute_api:os-flavor-access", ADMIN,
     "List and change which projects may use a private flavor.",
     [("GET", FLAVOR + "/os-flavor-access"), ("POST", FLAVOR + "/action")]),
    # keypairs
    ("os_compute_api:os-keypairs:index", OWNER_OR_ADMIN, "List keypairs.",
     [("GET", KEYPAIRS)]),
    ("os_compute_api:os-keypairs:show", OWNER_OR_ADMIN, "Show a keypair.",
     [("GET", KEYPAIR)]),
    ("os_compute_api:os-keypairs:create", OWNER_OR_ADMIN, "Create or import a keypair.",
     [("POST", KEYPAIRS)]),
    ("os_compute_api:os-keypairs:delete", OWNER_OR_ADMIN, "Delete a keypair.",
     [("DELETE", KEYPAIR)]),
    # infrastructure
    ("os_compute_api:os-hypervisors:list", ADMIN, "List hypervisors.",
     [("GET", "/os-hypervisors")]),
    ("os_compute_api:os-hypervisors:detail", ADMIN, "List hypervisors with details.",
     [("GET", "/os-hypervisors/detail")]),
    ("os_compute_api:os-hypervisors:show", ADMIN, "Show a hypervisor.",
     [("GET", "/os-hypervisors/{hypervisor_id}")]),
    ("os_compute_api:os-hypervisors:statistics", ADMIN, "Show hypervisor totals.",
     [("GET", "/os-hypervisors/statistics")]),
    ("os_compute_api:os-services:list", ADMIN, "List compute services.",
     [("GET", "/os-services")]),
    ("os_compute_api:os-services:update", ADMIN, "Enable, disable or force down a service.",
     [("PUT", "/os-services/{service_id}")]),
    ("os_compute_api:os-services:delete", ADMIN, "Delete a compute service.",
     [("DELETE", "/os-services/{service_id}")]),
    ("os_compute_api:os-availability-zone:list", ANYONE, "List availability zones.",
     [("GET", "/os-availability-zone")]),
    ("os_compute_api:os-availability-zone:detail", ADMIN,
     "List availability zones with their hosts.", [("GET", "/os-availability-zone/detail")]),
    # host aggregates
    ("os_compute_api:os-aggregates:index", ADMIN, "List host aggregates.",
     [("GET", AGGREGATES)]),
    ("os_compute_api:os-aggregates:create", ADMIN, "Create a host aggregate.",
     [("POST", AGGREGATES)]),
    ("os_compute_api:os-aggregates:show", ADMIN, "Show a host aggregate.",
     [("GET", AGGREGATE)]),
    ("os_compute_api:os-aggregates:update", ADMIN,
     "Rename a host aggregate or set its availability zone.", [("PUT", AGGREGATE)]),
    ("os_compute_api:os-aggregates:delete", ADMIN, "Delete an empty host aggregate.",
     [("DELETE", AGGREGATE)]),
    ("os_compute_api:os-aggregates:add_host", ADMIN, "Add a host to an aggregate.",
     [("POST", AGGREGATE + "/action (add_host)")]),
    ("os_compute_api:os-aggregates:remove_host", ADMIN, "Remove a host from an aggregate.",
     [("POST", AGGREGATE + "/action (remove_host)")]),
    ("os_compute_api:os-aggregates:set_metadata", ADMIN,
     "Set or remove metadata of a host aggregate.",
     [("POST", AGGREGATE + "/action (set_metadata)")]),
    ("compute:aggregates:images", ADMIN,
     "Fetch images into the image cache of every compute host of an aggregate (2.81).",
     [("POST", AGGREGATE + "/images")]),
    ("os_compute_api:limits", ANYONE, "Show the caller's limits and usage.",
     [("GET", "/limits")]),
    ("os_compute_api:limits:other_project_limit", ADMIN,
     "Show another project's limits.", [("GET", "/limits")]),
    # instance actions
    ("os_compute_api:os-instance-actions:list", READER_OR_ADMIN,
     "List a server's actions.", [("GET", ACTIONS)]),
    ("os_compute_api:os-instance-actions:show", READER_OR_ADMIN,
     "Show a server action.", [("GET", ACTION_DETAIL)]),
    ("os_compute_api:os-instance-actions:events", ADMIN,
     "Show the events of a server action (below 2.51), with their traceback and, from "
     "2.62, their host.", [("GET", ACTION_DETAIL)]),
    ("os_compute_api:os-instance-actions:events:details", ADMIN,
     "Show the details of action events: why an event failed (2.84).",
     [("GET", ACTION_DETAIL)]),
    # server tags
    ("os_compute_api:os-server-tags:index", READER_OR_ADMIN, "List a server's tags.",
     [("GET", "/servers/{server_id}/tags")]),
    ("os_compute_api:os-server-tags:show", READER_OR_ADMIN, "Check one tag of a server.",
     [("GET", "/servers/{server_id}/tags/{tag}")]),
    ("os_compute_api:os-server-tags:update", MEMBER_OR_ADMIN, "Add one tag to a server.",
     [("PUT", "/servers/{server_id}/tags/{tag}")]),
    ("os_compute_api:os-server-tags:update_all", MEMBER_OR_ADMIN,
     "Replace all tags of a server.", [("PUT", "/servers/{server_id}/tags")]),
    ("os_compute_api:os-server-tags:delete", MEMBER_OR_ADMIN, "Remove one tag of a server.",
     [("DELETE", "/servers/{server_id}/tags/{tag}")]),
    ("os_compute_api:os-server-tags:delete_all", MEMBER_OR_ADMIN,
     "Remove all tags of a server.", [("DELETE", "/servers/{server_id}/tags")]),
    # volume attachments
    ("os_compute_api:os-volumes-attachments:index", READER_OR_ADMIN,
     "List the volumes attached to a server.",
     [("GET", "/servers/{server_id}/os-volume_attachments")]),
    ("os_compute_api:os-volumes-attachments:show", READER_OR_ADMIN,
     "Show one volume attached to a server.",
     [("GET", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    ("os_compute_api:os-volumes-attachments:create", MEMBER_OR_ADMIN,
     "Attach a volume to a server.",
     [("POST", "/servers/{server_id}/os-volume_attachments")]),
    ("os_compute_api:os-volumes-attachments:update", MEMBER_OR_ADMIN,
     "Change an attachment of a server's volume in place (delete_on_termination, 2.85).",
     [("PUT", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    ("os_compute_api:os-volumes-attachments:swap", "rule:admin_or_service",
     "Swap the volume of an attachment for another (what Cinder asks while it migrates).",
     [("PUT", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    ("os_compute_api:os-volumes-attachments:delete", MEMBER_OR_ADMIN,
     "Detach a volume from a server.",
     [("DELETE", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    # identity (Keystone's names and admin-only defaults; the API is deliberately small)
    ("identity:validate_token", "rule:admin_api or role:service or user_id:%(user_id)s",
     "Validate a token: administrators, services and the token's own user.",
     [("GET", "/v3/auth/tokens"), ("HEAD", "/v3/auth/tokens")]),
    ("identity:revoke_token", "rule:admin_api or role:service or user_id:%(user_id)s",
     "Revoke a token: administrators, services and the token's own user.",
     [("DELETE", "/v3/auth/tokens")]),
    ("identity:get_user", "rule:admin_api or user_id:%(user_id)s", "Show a user.",
     [("GET", "/v3/users/{user_id}")]),
    ("identity:list_users", ADMIN, "List every user (others see only themselves).",
     [("GET", "/v3/users")]),
    ("identity:list_user_projects", "rule:admin_api or user_id:%(user_id)s",
     "List the projects a user has a role on.", [("GET", "/v3/users/{user_id}/projects")]),
    ("identity:get_project", "rule:admin_api or project_id:%(project_id)s",
     "Show a project.", [("GET", "/v3/projects/{project_id}")]),
    ("identity:list_projects", ADMIN,
     "List every project (others see only their own).", [("GET", "/v3/projects")]),
    ("identity:list_roles", ANYONE, "List roles.", [("GET", "/v3/roles")]),
    ("identity:get_role", ANYONE, "Show a role.", [("GET", "/v3/roles/{role_id}")]),
    ("identity:create_project", ADMIN, "Create a project.", [("POST", "/v3/projects")]),
    ("identity:delete_project", ADMIN, "Delete a project and every grant on it.",
     [("DELETE", "/v3/projects/{project_id}")]),
    ("identity:create_user", ADMIN, "Create a user.", [("POST", "/v3/users")]),
    ("identity:delete_user", ADMIN, "Delete a user and its grants.",
     [("DELETE", "/v3/users/{user_id}")]),
    ("identity:create_role", ADMIN, "Create a role.", [("POST", "/v3/roles")]),
    ("identity:create_grant", ADMIN, "Grant a user a role on a project.",
     [("PUT", GRANT)]),
    ("identity:check_grant", ADMIN, "Check that a user holds a role on a project.",
     [("GET", GRANT), ("HEAD", GRANT)]),
    ("identity:revoke_grant", ADMIN, "Take a role on a project away from a user.",
     [("DELETE", GRANT)]),
    ("identity:list_grants", ADMIN, "List the roles a user holds on a project.",
     [("GET", "/v3/projects/{project_id}/users/{user_id}/roles")]),
    ("identity:list_role_assignments", ADMIN, "List role assignments.",
     [("GET", "/v3/role_assignments")]),
    ("identity:list_domains", ANYONE, "List and show domains.",
     [("GET", "/v3/domains"), ("GET", "/v3/domains/{domain_id}")]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    """Every default rule; also the hook for oslopolicy-sample-generator."""
    rules: list[oslo_policy.RuleDefault] = [
        oslo_policy.RuleDefault(name, check, description) for name, check, description
        in _BASE_RULES]
    for name, check, description, operations in _API_RULES:
        rules.append(oslo_policy.DocumentedRuleDefault(
            name, check, description,
            [{"method": method, "path": path} for method, path in operations],
            scope_types=["project"]))
    for module in (compute_action_policies, compute_image_policies, compute_shelve_policies,
                   compute_server_policies, compute_admin_policies, image_policies,
                   compute_legacy_policies):
        rules.extend(module.list_rules())
    rules.extend(network_policies.list_rules())
    rules.extend(volume_policies.list_rules())
    return rules


class _Enforcer(oslo_policy.Enforcer):
    """oslo.policy's enforcer, usable before a configuration file was parsed.

    oslo.policy looks the policy file up in the configuration directories,
    which only exist once the command line was parsed. Embedded use and tests
    may never parse one: then an absolute ``policy_file`` is still honoured,
    and relative names (and policy.d) simply count as absent.
    """

    def _get_policy_path(self, path: str) -> str:
        if os.path.isabs(path) and os.path.exists(path):
            return path
        try:
            return super()._get_policy_path(path)
        except cfg.NotInitializedError:
            raise cfg.ConfigFilesNotFoundError([path]) from None


_enforcer: oslo_policy.Enforcer | None = None
_enforcer_lock = threading.Lock()


def get_enforcer() -> oslo_policy.Enforcer:
    """The process-wide enforcer; also the hook oslopolicy-checker expects."""
    global _enforcer
    with _enforcer_lock:
        if _enforcer is None:
            enforcer = _Enforcer(CONF)
            enforcer.register_defaults(list_rules())
            enforcer.load_rules()
            _enforcer = enforcer
        return _enforcer


def reset() -> None:
    """Forget the enforcer so the next check rereads configuration and policy file."""
    global _enforcer
    with _enforcer_lock:
        if _enforcer is not None:
            _enforcer.clear()
        _enforcer = None


#: Keystone's default implied roles; tokens normally carry them already, but a
#: deployment whose Keystone lacks the inference rules must not lock members out.
IMPLIED_ROLES = {"admin": ("manager",), "manager": ("member",), "member": ("reader",)}


def _with_implied(roles: list[str]) -> list[str]:
    result = list(dict.fromkeys(roles))
    for role in result:  # grows while iterating: follows chains admin -> ... -> reader
        for implied in IMPLIED_ROLES.get(role, ()):
            if implied not in result:
                result.append(implied)
    return result


def credentials(ctx: RequestContext) -> dict[str, Any]:
    return {
        "user_id": ctx.user_id,
        "project_id": ctx.project_id,
        "roles": _with_implied(list(ctx.roles)),
        "is_admin": ctx.is_admin,
    }


def _target(ctx: RequestContext, target: Mapping[str, Any] | None) -> dict[str, Any]:
    if target is None:
        return {"project_id": ctx.project_id, "user_id": ctx.user_id}
    return dict(target)


def authorize(ctx: RequestContext, action: str,
              target: Mapping[str, Any] | None = None,
              exc: type[exception.Forbidden] = exception.Forbidden) -> None:
    """Raise Forbidden unless policy allows ``action`` on ``target``.

    ``target`` defaults to the caller's own project and user, which suits
    actions that create something rather than touch an existing object.
    Unknown rule names raise oslo.policy's PolicyNotRegistered: a typo in an
    API must fail loudly, not deny quietly. ``exc`` lets an API refuse in its
    own words (Glance's and Neutron's messages differ from Nova's).
    """
    get_enforcer().authorize(action, _target(ctx, target), credentials(ctx),
                             do_raise=True, exc=exc, action=action)


def check(ctx: RequestContext, action: str,
          target: Mapping[str, Any] | None = None) -> bool:
    """Whether policy allows ``action``: for deciding what to show, not to refuse."""
    return bool(get_enforcer().authorize(action, _target(ctx, target), credentials(ctx),
                                         do_raise=False))
