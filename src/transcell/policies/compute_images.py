"""Compute API policy defaults, under Nova's rule names:

Snapshots, backups and rebuild. Nova's secure-RBAC defaults: a member of the
server's project (or an administrator) may image or rebuild it; readers may not,
since each of these writes an image or replaces the server's disk.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

MEMBER_OR_ADMIN = "rule:project_member_or_admin"
ACTION = "/servers/{server_id}/action"

#: (name, check string, description, [(method, path), ...])
_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("os_compute_api:servers:create_image", MEMBER_OR_ADMIN,
     "Create an image (snapshot) of a server.", [("POST", ACTION + " (createImage)")]),
    ("os_compute_api:servers:create_image:allow_volume_backed", MEMBER_OR_ADMIN,
     "Create an image of a volume-backed server.", [("POST", ACTION + " (createImage)")]),
    ("os_compute_api:os-create-backup", MEMBER_OR_ADMIN,
     "Create a rotated backup image of a server.", [("POST", ACTION + " (createBackup)")]),
    ("os_compute_api:servers:rebuild", MEMBER_OR_ADMIN,
     "Rebuild a server from an image.", [("POST", ACTION + " (rebuild)")]),
    ("os_compute_api:servers:rebuild:trusted_certs", MEMBER_OR_ADMIN,
     "Rebuild a server with trusted image certificates.", [("POST", ACTION + " (rebuild)")]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name=name, check_str=check, description=description,
        operations=[{"method": m, "path": p} for m, p in operations])
        for name, check, description, operations in _RULES]
