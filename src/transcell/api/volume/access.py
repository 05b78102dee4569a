"""Who may do what in the Block storage API: Cinder's rules, checked before the service acts.

The service already hides other projects' volumes from non-administrators
(404, as Cinder's project-scoped queries do); policy then decides what the
caller may do to what it sees (403), and which attributes of a body it may
read. A refused request changes nothing: every check runs before the call.
"""

from __future__ import annotations

from typing import Any

from transcell import policy
from transcell.context import RequestContext
from transcell.volume.exceptions import PolicyNotAuthorized

#: body attributes and the rule that lets a caller see them
GUARDED_FIELDS = {
    "os-vol-host-attr:host": "volume_extension:volume_host_attribute",
    "os-vol-mig-status-attr:migstat": "volume_extension:volume_mig_status_attribute",
    "os-vol-mig-status-attr:name_id": "volume_extension:volume_mig_status_attribute",
    "migration_status": "volume_extension:volume_mig_status_attribute",
    "os-vol-tenant-attr:tenant_id": "volume_extension:volume_tenant_attribute",
}
#: what the service keeps for its callers but Cinder's API never shows
INTERNAL_FIELDS = ("attach_status",)


def target(volume: dict[str, Any] | None, ctx: RequestContext) -> dict[str, Any]:
    if volume is None:
        return {"project_id": ctx.project_id, "user_id": ctx.user_id}
    return {"project_id": volume.get("os-vol-tenant-attr:tenant_id"),
            "user_id": volume.get("user_id")}


def authorize(ctx: RequestContext, action: str, volume: dict[str, Any] | None = None
              ) -> None:
    policy.authorize(ctx, action, target(volume, ctx), exc=PolicyNotAuthorized)


def allowed(ctx: RequestContext, action: str, volume: dict[str, Any] | None = None
            ) -> bool:
    return policy.check(ctx, action, target(volume, ctx))


def shown(ctx: RequestContext, volume: dict[str, Any]) -> dict[str, Any]:
    """The volume as this caller may see it."""
    body = {key: value for key, value in volume.items() if key not in INTERNAL_FIELDS}
    verdicts: dict[str, bool] = {}
    for field, rule in GUARDED_FIELDS.items():
        if rule not in verdicts:
            verdicts[rule] = allowed(ctx, rule, volume)
        if not verdicts[rule]:
            body.pop(field, None)
    return body
