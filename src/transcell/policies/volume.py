"""Block storage API (Cinder v3) policy defaults, under Cinder's own rule names.

Cinder's defaults: a project's readers see its volumes and attachments, its
members create, change, attach and delete them, and an administrator may do
all of it in any project. What says where a volume lives (the backend host,
the migration status) and what moves it (``os-migrate_volume``, ``os-reset_status``)
is for administrators. transcell's move steps (``os-transcell-moves``) are for
administrators and the ``service`` role the conductor and compute hosts carry.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
ADMIN_OR_SERVICE = "rule:admin_or_service"
READER = "rule:admin_api or (role:reader and project_id:%(project_id)s)"
MEMBER = "rule:admin_api or (role:member and project_id:%(project_id)s)"
ANYONE = "@"

VOLUMES = "/volumes"
VOLUME = "/volumes/{volume_id}"
ACTION = "/volumes/{volume_id}/action"
ATTACHMENTS = "/attachments"
ATTACHMENT = "/attachments/{attachment_id}"
MOVES = "/os-transcell-moves"
SNAPSHOTS = "/snapshots"
SNAPSHOT = "/snapshots/{snapshot_id}"

_Rule = tuple[str, str, str, list[tuple[str, str]]]

_RULES: list[_Rule] = [
    ("volume:create", MEMBER, "Create a volume.", [("POST", VOLUMES)]),
    ("volume:create_from_image", MEMBER, "Create a volume from an image.",
     [("POST", VOLUMES)]),
    ("volume:create:project_id", ADMIN_OR_SERVICE,
     "Create a volume owned by another project (transcell:project_id), as compute does "
     "for a server booted from an image onto a new volume.", [("POST", VOLUMES)]),
    ("volume:get", READER, "Show a volume.", [("GET", VOLUME)]),
    ("volume:get_all", READER, "List volumes, with or without details.",
     [("GET", VOLUMES), ("GET", VOLUMES + "/detail")]),
    ("volume:get_all_tenants", ADMIN, "List the volumes of every project (all_tenants).",
     [("GET", VOLUMES), ("GET", VOLUMES + "/detail")]),
    ("volume:update", MEMBER, "Update a volume's name, description or metadata.",
     [("PUT", VOLUME)]),
    ("volume:delete", MEMBER, "Delete a volume.", [("DELETE", VOLUME)]),
    ("volume:extend", MEMBER, "Grow a volume (os-extend).", [("POST", ACTION)]),
    ("volume:extend_attached_volume", MEMBER,
     "Grow a volume that is attached (os-extend, 3.42).", [("POST", ACTION)]),
    ("volume_extension:volume_actions:upload_image", MEMBER,
     "Upload a volume to the image service (os-volume_upload_image).",
     [("POST", ACTION)]),
    ("volume:update_readonly_flag", MEMBER,
     "Mark a volume read-only or read-write (os-update_readonly_flag).",
     [("POST", ACTION)]),
    ("volume_extension:volume_actions:set_bootable", MEMBER,
     "Mark a volume bootable or not (os-set_bootable).", [("POST", ACTION)]),
    *[(name, MEMBER, description, [("POST", ACTION)]) for name, description in (
        ("volume:reserve_volume", "Reserve a volume for attaching (os-reserve)."),
        ("volume:unreserve_volume", "Undo os-reserve (os-unreserve)."),
        ("volume:attach", "Record a volume attached (os-attach, before 3.27)."),
        ("volume:detach", "Record a volume detached (os-detach, before 3.27)."),
        ("volume:begin_detaching", "Mark an attached volume detaching."),
        ("volume:roll_detaching", "Undo os-begin_detaching."),
        ("volume_extension:volume_actions:initialize_connection",
         "Get a volume's connection info for a host (os-initialize_connection)."),
        ("volume_extension:volume_actions:terminate_connection",
         "Drop a host's connection to a volume (os-terminate_connection)."))],
    ("volume_extension:volume_admin_actions:reset_status", ADMIN,
     "Reset a volume's status, attach status or migration status (os-reset_status).",
     [("POST", ACTION)]),
    ("volume_extension:volume_admin_actions:force_delete", ADMIN,
     "Delete a volume whatever its status (os-force_delete).", [("POST", ACTION)]),
    ("volume_extension:volume_admin_actions:force_detach", ADMIN,
     "Drop a volume's attachment whatever its status (os-force_detach).",
     [("POST", ACTION)]),
    ("scheduler_extension:scheduler_stats:get_pools", ADMIN,
     "List the backends (pools) with their capacity and the cells they reach.",
     [("GET", "/scheduler-stats/get_pools")]),
    ("volume_extension:volume_admin_actions:migrate_volume", ADMIN,
     "Migrate a volume to another backend (os-migrate_volume).", [("POST", ACTION)]),
    ("volume_extension:volume_host_attribute", ADMIN,
     "See the backend a volume lives on (os-vol-host-attr:host).",
     [("GET", VOLUME), ("GET", VOLUMES + "/detail")]),
    ("volume_extension:volume_mig_status_attribute", ADMIN,
     "See a volume's migration status (os-vol-mig-status-attr:*, migration_status).",
     [("GET", VOLUME), ("GET", VOLUMES + "/detail")]),
    ("volume_extension:volume_tenant_attribute", READER,
     "See the project owning a volume (os-vol-tenant-attr:tenant_id).",
     [("GET", VOLUME), ("GET", VOLUMES + "/detail")]),
    ("volume:get_volume_metadata", READER, "Show a volume's metadata (all or one key).",
     [("GET", VOLUME + "/metadata"), ("GET", VOLUME + "/metadata/{key}")]),
    ("volume:create_volume_metadata", MEMBER, "Add to a volume's metadata.",
     [("POST", VOLUME + "/metadata")]),
    ("volume:update_volume_metadata", MEMBER, "Replace a volume's metadata or one key.",
     [("PUT", VOLUME + "/metadata"), ("PUT", VOLUME + "/metadata/{key}")]),
    ("volume:delete_volume_metadata", MEMBER, "Delete a key of a volume's metadata.",
     [("DELETE", VOLUME + "/metadata/{key}")]),
    ("volume:create_snapshot", MEMBER,
     "Take a snapshot of a volume (force: of an in-use one).", [("POST", SNAPSHOTS)]),
    ("volume:get_snapshot", READER, "Show a snapshot.", [("GET", SNAPSHOT)]),
    ("volume:get_all_snapshots", READER, "List snapshots, with or without details.",
     [("GET", SNAPSHOTS), ("GET", SNAPSHOTS + "/detail")]),
    ("volume:update_snapshot", MEMBER, "Rename or describe a snapshot.",
     [("PUT", SNAPSHOT)]),
    ("volume:delete_snapshot", MEMBER, "Delete a snapshot.", [("DELETE", SNAPSHOT)]),
    ("volume_extension:extended_snapshot_attributes", READER,
     "See a snapshot's project and progress (os-extended-snapshot-attributes:*).",
     [("GET", SNAPSHOT), ("GET", SNAPSHOTS + "/detail")]),
    ("volume_extension:availability_zone_list", ANYONE, "List availability zones.",
     [("GET", "/os-availability-zone")]),
    ("volume_extension:type_get", ANYONE, "Show a volume type.",
     [("GET", "/types/{type_id}")]),
    ("volume_extension:type_get_all", ANYONE, "List volume types.", [("GET", "/types")]),
    ("volume_extension:access_types_extra_specs", ADMIN,
     "See a volume type's extra specs (the backend it maps to).",
     [("GET", "/types"), ("GET", "/types/{type_id}")]),
    ("volume:attachment_create", MEMBER, "Create an attachment (3.27).",
     [("POST", ATTACHMENTS)]),
    ("volume:attachment_update", MEMBER, "Connect an attachment to a host (3.27).",
     [("PUT", ATTACHMENT)]),
    ("volume:attachment_complete", MEMBER, "Mark an attachment attached (3.44).",
     [("POST", ATTACHMENT + "/action")]),
    ("volume:attachment_delete", MEMBER, "Delete an attachment (3.27).",
     [("DELETE", ATTACHMENT)]),
    ("volume:attachment_get", READER, "List or show attachments (3.27).",
     [("GET", ATTACHMENTS), ("GET", ATTACHMENT)]),
    ("limits_extension:used_limits", ANYONE, "Show a project's limits and usage.",
     [("GET", "/limits")]),
    ("volume:transcell:moves", ADMIN_OR_SERVICE,
     "Plan, copy, switch, confirm and revert a volume's migration for a server's move, "
     "and read a volume's backend and the copies moves keep (os-transcell-moves).",
     [("GET", MOVES + "/copies"), ("POST", MOVES + "/volumes/{volume_id}/copy")]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(
        name, check, description,
        [{"method": method, "path": "/v3" + path} for method, path in operations],
        scope_types=["project"]) for name, check, description, operations in _RULES]
