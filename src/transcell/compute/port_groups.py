"""The security groups a server asked for at create, given to the ports its build makes.

Nova builds a server's ports with the groups the create request named (the
project's default group when it named none). The API checks the names and
records the groups, ``{"id", "name"}`` each, in the server's system metadata;
the host that builds the server applies them to the ports it created (a port
the user brought keeps its own groups) and writes their names on the server's
VIFs, where the server views read them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)

#: system metadata key of the groups the create request asked for (JSON)
REQUESTED_KEY = "requested_security_groups"


def requested(server: dict[str, Any]) -> list[dict[str, str]]:
    """The groups recorded for ``server`` at create; [] when it asked for none."""
    raw = (server.get("system_metadata") or {}).get(REQUESTED_KEY)
    if not raw:
        return []
    try:
        groups = json.loads(raw)
    except ValueError:
        LOG.warning("Server %s has unreadable requested security groups: %r",
                    server.get("uuid"), raw)
        return []
    return [g for g in groups if isinstance(g, dict) and g.get("id")]


def apply(ctx: RequestContext, server: dict[str, Any], vifs: list[dict]) -> list[dict]:
    """Give every port the build created the requested groups (only those), and note
    their names on its VIF; returns the VIFs. An error leaves the build to fail and
    its ports to be deleted by the build's own undo."""
    groups = requested(server)
    if not groups:
        return vifs
    ids = [g["id"] for g in groups]
    names = [g.get("name") or g["id"] for g in groups]
    for vif in vifs:
        if vif.get("preexisting"):
            continue
        services.network.security_group_call(ctx, "update_port", port_id=vif["id"],
                                             body={"security_groups": ids})
        vif["security_groups"] = names
    return vifs
