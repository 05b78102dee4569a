"""Compute API policy defaults, under Nova's rule names:

Quotas, flavor access, hypervisor extras, usage, os-hosts, the image proxy, and
the calls other services make (external events, assisted volume snapshots).
The image proxy has no rules of its own, as in Nova: the image service it
calls enforces its own policy with the caller's token.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
READER_OR_ADMIN = "rule:project_reader_or_admin"
ANYONE = "@"
ADMIN_OR_SERVICE = "rule:admin_or_service"

QUOTA_SET = "/os-quota-sets/{tenant_id}"
QUOTA_CLASS = "/os-quota-class-sets/{id}"
HYPERVISOR = "/os-hypervisors/{hypervisor_id}"
PATTERN = "/os-hypervisors/{hypervisor_hostname_pattern}"
USAGE = "/os-simple-tenant-usage"

#: (name, check string, description, [(method, path), ...])
_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("os_compute_api:os-quota-sets:show", READER_OR_ADMIN,
     "Show a project's (or one of its users') quotas.", [("GET", QUOTA_SET)]),
    ("os_compute_api:os-quota-sets:detail", READER_OR_ADMIN,
     "Show a project's quotas with what it uses.", [("GET", QUOTA_SET + "/detail")]),
    ("os_compute_api:os-quota-sets:defaults", ANYONE,
     "Show the default quotas.", [("GET", QUOTA_SET + "/defaults")]),
    ("os_compute_api:os-quota-sets:update", ADMIN,
     "Change a project's (or one of its users') quotas.", [("PUT", QUOTA_SET)]),
    ("os_compute_api:os-quota-sets:delete", ADMIN,
     "Put a project's (or one of its users') quotas back to the defaults.",
     [("DELETE", QUOTA_SET)]),
    ("os_compute_api:os-quota-class-sets:show", ADMIN,
     "Show a quota class.", [("GET", QUOTA_CLASS)]),
    ("os_compute_api:os-quota-class-sets:update", ADMIN,
     "Change a quota class (class default: the cloud's default quotas).",
     [("PUT", QUOTA_CLASS)]),
    ("os_compute_api:os-flavor-access:add_tenant_access", ADMIN,
     "Let a project use a private flavor.", [("POST", "/flavors/{flavor_id}/action")]),
    ("os_compute_api:os-flavor-access:remove_tenant_access", ADMIN,
     "Take a private flavor away from a project.",
     [("POST", "/flavors/{flavor_id}/action")]),
    ("os_compute_api:os-hypervisors:uptime", ADMIN,
     "Show a hypervisor's uptime.", [("GET", HYPERVISOR + "/uptime")]),
    ("os_compute_api:os-hypervisors:search", ADMIN,
     "Find hypervisors by host name.", [("GET", PATTERN + "/search")]),
    ("os_compute_api:os-hypervisors:servers", ADMIN,
     "List the servers of hypervisors found by host name.",
     [("GET", PATTERN + "/servers")]),
    ("os_compute_api:os-simple-tenant-usage:show", READER_OR_ADMIN,
     "Show a project's usage over a period.", [("GET", USAGE + "/{tenant_id}")]),
    ("os_compute_api:os-simple-tenant-usage:list", ADMIN,
     "List every project's usage over a period.", [("GET", USAGE)]),
    ("os_compute_api:os-hosts:list", ADMIN, "List hosts (before 2.43).",
     [("GET", "/os-hosts")]),
    ("os_compute_api:os-hosts:show", ADMIN, "Show a host's resources (before 2.43).",
     [("GET", "/os-hosts/{host_name}")]),
    ("os_compute_api:os-hosts:update", ADMIN,
     "Enable or disable a host (before 2.43).", [("PUT", "/os-hosts/{host_name}")]),
    ("os_compute_api:os-hosts:reboot", ADMIN, "Reboot a host (before 2.43).",
     [("GET", "/os-hosts/{host_name}/reboot")]),
    ("os_compute_api:os-hosts:shutdown", ADMIN, "Shut a host down (before 2.43).",
     [("GET", "/os-hosts/{host_name}/shutdown")]),
    ("os_compute_api:os-hosts:start", ADMIN, "Start a host (before 2.43).",
     [("GET", "/os-hosts/{host_name}/startup")]),
    # what the network and volume services tell compute, and nobody else
    ("os_compute_api:os-server-external-events:create", ADMIN_OR_SERVICE,
     "Tell servers' compute hosts of events (network-vif-plugged, volume-extended, ...).",
     [("POST", "/os-server-external-events")]),
    ("os_compute_api:os-assisted-volume-snapshots:create", ADMIN_OR_SERVICE,
     "Have the host of the server a volume is attached to snapshot the volume's file.",
     [("POST", "/os-assisted-volume-snapshots")]),
    ("os_compute_api:os-assisted-volume-snapshots:delete", ADMIN_OR_SERVICE,
     "Have the host of the server a volume is attached to delete a snapshot of it.",
     [("DELETE", "/os-assisted-volume-snapshots/{snapshot_id}")]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description, [{"method": m, "path": p} for m, p in operations],
        scope_types=["project"]) for name, check, description, operations in _RULES]
