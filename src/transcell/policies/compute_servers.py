"""Compute API policy defaults, under Nova's rule names:

Server metadata, multiple create and server groups. The defaults are Nova's
secure-RBAC ones, so an operator's Nova policy file carries over: readers of
a project see its servers' metadata and its server groups, members change
them, and only an administrator lists every project's groups.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
MEMBER = "rule:project_member_api"
MEMBER_OR_ADMIN = "rule:project_member_or_admin"
READER_OR_ADMIN = "rule:project_reader_or_admin"

METADATA = "/servers/{server_id}/metadata"
METADATA_KEY = "/servers/{server_id}/metadata/{key}"
GROUPS = "/os-server-groups"
GROUP = "/os-server-groups/{server_group_id}"

#: (name, check string, description, [(method, path), ...])
_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("os_compute_api:server-metadata:index", READER_OR_ADMIN,
     "List a server's metadata.", [("GET", METADATA)]),
    ("os_compute_api:server-metadata:show", READER_OR_ADMIN,
     "Show one metadata item of a server.", [("GET", METADATA_KEY)]),
    ("os_compute_api:server-metadata:create", MEMBER_OR_ADMIN,
     "Add or change metadata items of a server (merged with the others).",
     [("POST", METADATA)]),
    ("os_compute_api:server-metadata:update_all", MEMBER_OR_ADMIN,
     "Replace all metadata of a server.", [("PUT", METADATA)]),
    ("os_compute_api:server-metadata:update", MEMBER_OR_ADMIN,
     "Set one metadata item of a server.", [("PUT", METADATA_KEY)]),
    ("os_compute_api:server-metadata:delete", MEMBER_OR_ADMIN,
     "Delete one metadata item of a server.", [("DELETE", METADATA_KEY)]),
    ("os_compute_api:os-server-groups:index", READER_OR_ADMIN,
     "List the project's server groups.", [("GET", GROUPS)]),
    ("os_compute_api:os-server-groups:index:all_projects", ADMIN,
     "List the server groups of every project (all_projects).", [("GET", GROUPS)]),
    ("os_compute_api:os-server-groups:show", READER_OR_ADMIN,
     "Show a server group.", [("GET", GROUP)]),
    ("os_compute_api:os-server-groups:create", MEMBER,
     "Create a server group in the caller's project.", [("POST", GROUPS)]),
    ("os_compute_api:os-server-groups:delete", MEMBER_OR_ADMIN,
     "Delete a server group.", [("DELETE", GROUP)]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description, [{"method": m, "path": p} for m, p in operations],
        scope_types=["project"]) for name, check, description, operations in _RULES]
