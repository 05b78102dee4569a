"""Port bindings during a move: the port keeps its id and addresses, its host changes.

Each helper converges on the wanted state whatever a previous, interrupted
attempt left behind, so saga steps and compensations can call them again.
"""

from __future__ import annotations

import logging

from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)


def _admin(ctx: RequestContext) -> RequestContext:
    # Binding a port to a host is an admin operation in the network API; the
    # conductor acts for the user, as Nova's does with its service credentials.
    return RequestContext.admin() if not ctx.is_admin else ctx


def _bindings(ctx: RequestContext, port_id: str) -> dict[str, str]:
    return {b["host"]: b["status"] for b in services.network.list_bindings(_admin(ctx), port_id)}


def bind(ctx: RequestContext, ports: list[str], host: str) -> None:
    """An inactive binding for ``host`` on every port (kept if already there)."""
    for port_id in ports:
        if host not in _bindings(ctx, port_id):
            services.network.create_binding(_admin(ctx), port_id, host)


def activate(ctx: RequestContext, ports: list[str], host: str) -> None:
    """Make ``host``'s binding the active one on every port that has one."""
    for port_id in ports:
        status = _bindings(ctx, port_id).get(host)
        if status is not None and status != "ACTIVE":
            services.network.activate_binding(_admin(ctx), port_id, host)


def unbind(ctx: RequestContext, ports: list[str], host: str | None,
           fallback_host: str | None = None) -> None:
    """Drop ``host``'s binding; if it was the active one, ``fallback_host`` takes over first."""
    if not host:
        return
    for port_id in ports:
        found = _bindings(ctx, port_id)
        if host not in found:
            continue
        if found[host] == "ACTIVE" and fallback_host and fallback_host in found:
            services.network.activate_binding(_admin(ctx), port_id, fallback_host)
        services.network.delete_binding(_admin(ctx), port_id, host)


def readdress(ctx: RequestContext, plan: list[dict], host: str) -> list[dict]:
    """Give each port planned for re-addressing an address of ``host``'s cell, then an
    inactive binding there. Returns the plan with old and new addresses filled in;
    a port already re-addressed by an interrupted try keeps its first old address."""
    done = []
    for entry in plan:
        entry = dict(entry)
        if entry["action"] == "readdress":
            result = services.network.readdress_port(_admin(ctx), entry["port_id"], host)
            # the addresses seen when the move was planned are the true old ones: a
            # repeated call after a crash may report the new ones as old
            entry.setdefault("old_fixed_ips", entry.get("fixed_ips") or result["old_fixed_ips"])
            entry["new_fixed_ips"] = result["new_fixed_ips"]
            bind(ctx, [entry["port_id"]], host)
        done.append(entry)
    return done


def restore_addresses(ctx: RequestContext, plan: list[dict]) -> None:
    """Undo ``readdress``: each re-addressed port gets its old addresses back."""
    for entry in plan:
        if entry["action"] == "readdress" and entry.get("old_fixed_ips"):
            services.network.restore_port_addresses(_admin(ctx), entry["port_id"],
                                                    entry["old_fixed_ips"])


def kept(plan: list[dict], ports: list[str]) -> list[str]:
    """The ports that keep their addresses (all of them when there is no plan)."""
    moving = {e["port_id"] for e in plan if e["action"] == "readdress"}
    return [p for p in ports if p not in moving]
