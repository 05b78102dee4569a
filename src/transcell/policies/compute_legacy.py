"""Compute API policy defaults, under Nova's rule names: the network proxies,
a server's addresses by network, the extension list and the instance usage
audit log. Nova's secure-RBAC defaults: project readers read, the audit log is
an administrator's."""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
READER_OR_ADMIN = "rule:project_reader_or_admin"
MEMBER_OR_ADMIN = "rule:project_member_or_admin"

#: (name, check string, description, [(method, path), ...])
_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("os_compute_api:os-networks:list", READER_OR_ADMIN,
     "List networks (the proxy to the network service, until 2.36).",
     [("GET", "/os-networks")]),
    ("os_compute_api:os-networks:view", READER_OR_ADMIN,
     "Show one network (the proxy, until 2.36).", [("GET", "/os-networks/{network_id}")]),
    ("os_compute_api:os-tenant-networks:list", READER_OR_ADMIN,
     "List the project's networks (the proxy, until 2.36).",
     [("GET", "/os-tenant-networks")]),
    ("os_compute_api:os-tenant-networks:show", READER_OR_ADMIN,
     "Show one of the project's networks (the proxy, until 2.36).",
     [("GET", "/os-tenant-networks/{network_id}")]),
    ("os_compute_api:ips:show", READER_OR_ADMIN,
     "Show a server's addresses on one network.",
     [("GET", "/servers/{server_id}/ips/{network_label}")]),
    ("os_compute_api:extensions", "@",
     "List the API extensions (a fixed list, kept for old clients).",
     [("GET", "/extensions"), ("GET", "/extensions/{alias}")]),
    ("os_compute_api:os-security-groups:get", READER_OR_ADMIN,
     "List the project's security groups (the proxy, until 2.36).",
     [("GET", "/os-security-groups")]),
    ("os_compute_api:os-security-groups:show", READER_OR_ADMIN,
     "Show a security group (the proxy, until 2.36).",
     [("GET", "/os-security-groups/{security_group_id}")]),
    ("os_compute_api:os-security-groups:create", MEMBER_OR_ADMIN,
     "Create a security group (the proxy, until 2.36).", [("POST", "/os-security-groups")]),
    ("os_compute_api:os-security-groups:update", MEMBER_OR_ADMIN,
     "Update a security group (the proxy, until 2.36).",
     [("PUT", "/os-security-groups/{security_group_id}")]),
    ("os_compute_api:os-security-groups:delete", MEMBER_OR_ADMIN,
     "Delete a security group (the proxy, until 2.36).",
     [("DELETE", "/os-security-groups/{security_group_id}")]),
    ("os_compute_api:os-security-groups:rule:create", MEMBER_OR_ADMIN,
     "Add a rule to a security group (the proxy, until 2.36).",
     [("POST", "/os-security-group-rules")]),
    ("os_compute_api:os-security-groups:rule:delete", MEMBER_OR_ADMIN,
     "Delete a security group rule (the proxy, until 2.36).",
     [("DELETE", "/os-security-group-rules/{security_group_rule_id}")]),
    ("os_compute_api:os-security-groups:list", READER_OR_ADMIN,
     "List a server's security groups.",
     [("GET", "/servers/{server_id}/os-security-groups")]),
    ("os_compute_api:os-security-groups:add", MEMBER_OR_ADMIN,
     "Add a security group to a server's ports.",
     [("POST", "/servers/{server_id}/action (addSecurityGroup)")]),
    ("os_compute_api:os-security-groups:remove", MEMBER_OR_ADMIN,
     "Remove a security group from a server's ports.",
     [("POST", "/servers/{server_id}/action (removeSecurityGroup)")]),
    ("os_compute_api:os-volumes:list", READER_OR_ADMIN,
     "List the project's volumes (the proxy, until 2.36).", [("GET", "/os-volumes")]),
    ("os_compute_api:os-volumes:detail", READER_OR_ADMIN,
     "List the project's volumes in detail (the proxy, until 2.36).",
     [("GET", "/os-volumes/detail")]),
    ("os_compute_api:os-volumes:show", READER_OR_ADMIN,
     "Show a volume (the proxy, until 2.36).", [("GET", "/os-volumes/{volume_id}")]),
    ("os_compute_api:os-volumes:create", MEMBER_OR_ADMIN,
     "Create a volume (the proxy, until 2.36).", [("POST", "/os-volumes")]),
    ("os_compute_api:os-volumes:delete", MEMBER_OR_ADMIN,
     "Delete a volume (the proxy, until 2.36).", [("DELETE", "/os-volumes/{volume_id}")]),
    ("os_compute_api:os-volumes:snapshots:list", READER_OR_ADMIN,
     "List the project's volume snapshots (the proxy, until 2.36).",
     [("GET", "/os-snapshots")]),
    ("os_compute_api:os-volumes:snapshots:detail", READER_OR_ADMIN,
     "List the project's volume snapshots in detail (the proxy, until 2.36).",
     [("GET", "/os-snapshots/detail")]),
    ("os_compute_api:os-volumes:snapshots:show", READER_OR_ADMIN,
     "Show a volume snapshot (the proxy, until 2.36).",
     [("GET", "/os-snapshots/{snapshot_id}")]),
    ("os_compute_api:os-volumes:snapshots:create", MEMBER_OR_ADMIN,
     "Snapshot a volume (the proxy, until 2.36).", [("POST", "/os-snapshots")]),
    ("os_compute_api:os-volumes:snapshots:delete", MEMBER_OR_ADMIN,
     "Delete a volume snapshot (the proxy, until 2.36).",
     [("DELETE", "/os-snapshots/{snapshot_id}")]),
    ("os_compute_api:os-admin-actions:inject_network_info", ADMIN,
     "Inject the network configuration into a server (accepted; nothing to rewrite).",
     [("POST", "/servers/{server_id}/action (injectNetworkInfo)")]),
    ("os_compute_api:os-instance-usage-audit-log:list", ADMIN,
     "List the instance usage audit log.", [("GET", "/os-instance_usage_audit_log")]),
    ("os_compute_api:os-instance-usage-audit-log:show", ADMIN,
     "Show the instance usage audit log before a time.",
     [("GET", "/os-instance_usage_audit_log/{before_timestamp}")]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description, [{"method": m, "path": p} for m, p in operations],
        scope_types=["project"]) for name, check, description, operations in _RULES]
