"""Compute API policy defaults, under Nova's rule names:

Shelve, shelve-offload and unshelve. Members of a project shelve and unshelve its
servers; offloading a shelved server (freeing its host) and unshelving it onto a
chosen host are the administrator's, as in Nova.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
MEMBER_OR_ADMIN = "rule:project_member_or_admin"
ACTION = "/servers/{server_id}/action"

SHELVE = "os_compute_api:os-shelve:shelve"
SHELVE_OFFLOAD = "os_compute_api:os-shelve:shelve_offload"
UNSHELVE = "os_compute_api:os-shelve:unshelve"
UNSHELVE_TO_HOST = "os_compute_api:os-shelve:unshelve:unshelve_to_host"

_RULES = [
    (SHELVE, MEMBER_OR_ADMIN, "Shelve a server (shelve).", "shelve"),
    (SHELVE_OFFLOAD, ADMIN, "Offload a shelved server from its host (shelveOffload).",
     "shelveOffload"),
    (UNSHELVE, MEMBER_OR_ADMIN, "Unshelve a shelved or offloaded server (unshelve).",
     "unshelve"),
    (UNSHELVE_TO_HOST, ADMIN, "Unshelve an offloaded server onto a chosen host (2.91).",
     "unshelve"),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, f"{description} (action {action})", [{"method": "POST", "path": ACTION}],
        scope_types=["project"]) for name, check, description, action in _RULES]
