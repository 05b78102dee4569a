"""/limits: a project's absolute limits and what it uses, counted in every cell.

Rate limits were dropped by Nova long ago: ``rate`` is always empty. Limits
that transcell does not enforce (metadata items, personality, server groups,
network resources) are shown with Nova's default values, because clients and
Tempest expect the keys.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import policy, quota
from transcell.api.compute.app import api_version
from transcell.wsgi.app import context_of, json_response

#: Limits not backed by configuration: Nova's defaults.
FIXED_LIMITS = {
    "maxServerMeta": 128,
    "maxImageMeta": 128,
    "maxPersonality": 5,
    "maxPersonalitySize": 10240,
    "maxServerGroups": 10,
    "maxServerGroupMembers": 10,
    "maxSecurityGroups": 10,
    "maxSecurityGroupRules": 20,
    "maxTotalFloatingIps": 10,
}

#: Dropped at 2.57, with the ``personality`` parameter they limited.
PERSONALITY_KEYS = ("maxPersonality", "maxPersonalitySize")

#: Dropped at 2.36: network resources are Neutron's business.
NETWORK_KEYS = ("maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps",
                "totalSecurityGroupsUsed", "totalFloatingIpsUsed")


def absolute_limits(project_id: str, version) -> dict[str, Any]:
    allowed = quota.limits(project_id)
    used = quota.usage(project_id)
    absolute: dict[str, Any] = dict(FIXED_LIMITS)
    absolute.update({
        "maxServerMeta": allowed["metadata_items"],
        "maxImageMeta": allowed["metadata_items"],
        "maxPersonality": allowed["injected_files"],
        "maxPersonalitySize": allowed["injected_file_content_bytes"],
        "maxServerGroups": allowed["server_groups"],
        "maxServerGroupMembers": allowed["server_group_members"],
        "maxSecurityGroups": allowed["security_groups"],
        "maxSecurityGroupRules": allowed["security_group_rules"],
        "maxTotalFloatingIps": allowed["floating_ips"],
        "maxTotalCores": allowed["cores"],
        "maxTotalInstances": allowed["instances"],
        "maxTotalRAMSize": allowed["ram"],
        "maxTotalKeypairs": allowed["key_pairs"],
        "totalCoresUsed": used["cores"],
        "totalInstancesUsed": used["instances"],
        "totalRAMUsed": used["ram"],
        "totalSecurityGroupsUsed": 0,
        "totalFloatingIpsUsed": 0,
        "totalServerGroupsUsed": quota.server_group_count(project_id),
    })
    if version.matches("2.36"):
        for key in NETWORK_KEYS:
            absolute.pop(key)
    if version.matches("2.39"):
        absolute.pop("maxImageMeta")
    if version.matches("2.57"):
        # file injection (personality) is gone from server create at 2.57
        for key in PERSONALITY_KEYS:
            absolute.pop(key)
    return absolute


def index(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:limits", {"project_id": ctx.project_id})
    project_id = ctx.project_id
    if "tenant_id" in req.GET:
        project_id = req.GET["tenant_id"]
        policy.authorize(ctx, "os_compute_api:limits:other_project_limit",
                         {"project_id": project_id})
    return json_response({"limits": {"rate": [],
                                     "absolute": absolute_limits(project_id, api_version(req))}})
