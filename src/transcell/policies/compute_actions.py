"""Compute API policy defaults, under Nova's rule names:

Server actions that change a guest where it runs: reboot, pause, suspend, lock, rescue,
passwords, console output, diagnostics, state reset, soft delete.

Nova's defaults: the project's members act on their servers; an administrator resets a
server's state, reads its diagnostics, and unlocks a server locked by someone else
(a server locked by an administrator stays locked to its owner's members).
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

ADMIN = "rule:admin_api"
MEMBER_OR_ADMIN = "rule:project_member_or_admin"
READER_OR_ADMIN = "rule:project_reader_or_admin"

ACTION = "/servers/{server_id}/action"
SERVER = "/servers/{server_id}"
PASSWORD = "/servers/{server_id}/os-server-password"
DIAGNOSTICS = "/servers/{server_id}/diagnostics"

_RULES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("os_compute_api:servers:reboot", MEMBER_OR_ADMIN, "Reboot a server (reboot).",
     [("POST", ACTION)]),
    ("os_compute_api:os-pause-server:pause", MEMBER_OR_ADMIN, "Pause a server (pause).",
     [("POST", ACTION)]),
    ("os_compute_api:os-pause-server:unpause", MEMBER_OR_ADMIN,
     "Unpause a paused server (unpause).", [("POST", ACTION)]),
    ("os_compute_api:os-suspend-server:suspend", MEMBER_OR_ADMIN,
     "Suspend a server (suspend).", [("POST", ACTION)]),
    ("os_compute_api:os-suspend-server:resume", MEMBER_OR_ADMIN,
     "Resume a suspended server (resume).", [("POST", ACTION)]),
    ("os_compute_api:os-lock-server:lock", MEMBER_OR_ADMIN, "Lock a server (lock).",
     [("POST", ACTION)]),
    ("os_compute_api:os-lock-server:unlock", MEMBER_OR_ADMIN,
     "Unlock a server the caller's side locked (unlock).", [("POST", ACTION)]),
    ("os_compute_api:os-lock-server:unlock:unlock_override", ADMIN,
     "Unlock a server locked by the other side (an owner's lock by an administrator, or "
     "the other way round).", [("POST", ACTION)]),
    ("os_compute_api:os-admin-actions:reset_state", ADMIN,
     "Reset a server's state to active or error (os-resetState).", [("POST", ACTION)]),
    ("os_compute_api:os-deferred-delete:restore", MEMBER_OR_ADMIN,
     "Restore a soft-deleted server (restore).", [("POST", ACTION)]),
    ("os_compute_api:os-deferred-delete:force", MEMBER_OR_ADMIN,
     "Delete a server at once, soft-deleted or not (forceDelete).", [("POST", ACTION)]),
    ("os_compute_api:os-console-output", MEMBER_OR_ADMIN,
     "Read a server's console log (os-getConsoleOutput).", [("POST", ACTION)]),
    ("os_compute_api:os-admin-password", MEMBER_OR_ADMIN,
     "Change a server's administrator password (changePassword).", [("POST", ACTION)]),
    ("os_compute_api:os-server-password:show", READER_OR_ADMIN,
     "Show a server's encrypted password.", [("GET", PASSWORD)]),
    ("os_compute_api:os-server-password:clear", MEMBER_OR_ADMIN,
     "Clear a server's encrypted password.", [("DELETE", PASSWORD)]),
    ("os_compute_api:os-rescue", MEMBER_OR_ADMIN, "Rescue a server (rescue).",
     [("POST", ACTION)]),
    ("os_compute_api:os-unrescue", MEMBER_OR_ADMIN, "Unrescue a server (unrescue).",
     [("POST", ACTION)]),
    ("os_compute_api:os-server-diagnostics", ADMIN, "Show a server's diagnostics.",
     [("GET", DIAGNOSTICS)]),
]


def list_rules() -> list[oslo_policy.RuleDefault]:
    return [oslo_policy.DocumentedRuleDefault(name, check, description,
                                              [{"method": m, "path": p} for m, p in ops])
            for name, check, description, ops in _RULES]
