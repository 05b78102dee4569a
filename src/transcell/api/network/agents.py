"""``GET /v2.0/agents``: transcell's network service runs no Neutron agents.

Ports are wired by the compute hosts' drivers, not by L2, DHCP or L3 agent
processes, so the list is empty for every caller (as Neutron's is for a
caller its policy lets see no agent); an agent id is never found (404).
"""

from __future__ import annotations

import webob

from transcell.network.service import NetworkService
from transcell.wsgi.app import json_response


def index(service: NetworkService, req: webob.Request) -> webob.Response:
    return json_response({"agents": []})
