"""Whether a server's volumes and ports can follow it to a target host.

Asked twice with the same code: by a move plan, which only reports, and by
a move right after its target is chosen, which refuses (before the guest
stops) for exactly the reasons the plan would have listed. The volume and
network services answer for their own resources; this module only decides
what the answers mean for the move.
"""

from __future__ import annotations

import logging
from typing import Any

from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)

KEEP = "keep"
MIGRATE = "migrate"
READDRESS = "readdress"
BLOCKED = "blocked"


def _admin(ctx: RequestContext) -> RequestContext:
    # the services' move methods are for the admin and service roles; the
    # conductor and the plan act for the user as Nova does with its own credentials
    return ctx if ctx.is_admin else RequestContext.admin()


def volumes(ctx: RequestContext, volume_ids: list[str], target_cell: str) -> list[dict]:
    """Each attached volume's fate: kept where it is, migrated, or blocking the move."""
    if not volume_ids:
        return []
    return [services.volume.plan_move(_admin(ctx), volume_id, target_cell)
            for volume_id in volume_ids]


def ports(ctx: RequestContext, port_ids: list[str], target_host: str,
          readdress: bool) -> list[dict]:
    """Each port's fate on ``target_host``; a port that needs re-addressing blocks the
    move unless re-addressing was asked for (the request or ``[network]
    readdress_on_move``)."""
    if not port_ids:
        return []
    found = services.network.check_ports_for_host(_admin(ctx), port_ids, target_host)
    for entry in found:
        if entry["action"] == READDRESS and not readdress:
            entry["action"] = BLOCKED
            entry["reason"] = (
                f"port {entry['port_id']} is on a network segment that the target cell "
                "does not reach; the move may give it an address of that cell "
                "(request field transcell:readdress_ports, or [network] "
                "readdress_on_move)")
    return found


def readdress_wanted(requested: bool | None) -> bool:
    return CONF.network.readdress_on_move if requested is None else bool(requested)


def blockers(volume_plan: list[dict], port_plan: list[dict]) -> list[str]:
    """Every reason the move cannot go ahead, worded for the operator."""
    reasons = []
    for entry in volume_plan:
        if entry["action"] == BLOCKED:
            reasons.append(entry.get("reason") or
                           f"volume {entry['volume_id']} cannot reach the target cell")
    for entry in port_plan:
        if entry["action"] == BLOCKED:
            reasons.append(entry.get("reason") or
                           f"port {entry['port_id']} cannot be bound in the target cell")
    return reasons


def check(ctx: RequestContext, volume_ids: list[str], port_ids: list[str],
          target_host: str, target_cell: str, readdress: bool) -> dict[str, Any]:
    volume_plan = volumes(ctx, volume_ids, target_cell)
    port_plan = ports(ctx, port_ids, target_host, readdress)
    return {"volumes": volume_plan, "ports": port_plan,
            "blockers": blockers(volume_plan, port_plan)}
