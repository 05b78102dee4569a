"""Versioned notifications, emitted on the bus as Nova's consumers expect them.

Services cast to topic ``notifications``; whoever serves it (the embedded
cloud keeps a JSON-lines log in the state directory) receives them. A
notification never blocks or fails the work it reports on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any

from transcell.context import RequestContext
from transcell.db.types import isotime, utcnow

LOG = logging.getLogger(__name__)

TOPIC = "notifications"
VERSION = "1.0"  # what notify() sends; NotificationLog must accept it


def notify(ctx: RequestContext, event_type: str, payload: dict[str, Any],
           publisher: str = "nova-conductor", priority: str = "INFO") -> None:
    from transcell.conf import CONF
    from transcell.rpc.bus import get_bus
    message = {
        "event_type": event_type,
        "priority": priority,
        "publisher_id": f"{publisher}:{socket.gethostname()}",
        "timestamp": isotime(utcnow()),
        "request_id": ctx.request_id,
        "payload": {
            "nova_object.name": "InstanceActionPayload",
            "nova_object.namespace": "nova",
            "nova_object.version": "1.0",
            "nova_object.data": payload,
        },
    }
    try:
        get_bus(CONF.rpc.transport_url).cast(ctx, TOPIC, "record", rpc_version=VERSION,
                                             message=message)
    except Exception:
        LOG.exception("could not send notification %s", event_type)


def instance_payload(server: dict[str, Any], **extra: Any) -> dict[str, Any]:
    flavor = server.get("flavor") or {}
    return {"uuid": server["uuid"], "host": server.get("host"),
            "node": server.get("node"), "state": server.get("vm_state"),
            "task_state": server.get("task_state"), "power_state": server.get("power_state"),
            "tenant_id": server.get("project_id"), "user_id": server.get("user_id"),
            "availability_zone": server.get("availability_zone"),
            "flavor": {"flavorid": flavor.get("flavorid"), "name": flavor.get("name")},
            **extra}


class NotificationLog:
    """The ``notifications`` endpoint of the embedded cloud: one JSON object per line."""

    RPC_API_VERSION = "1.0"  # messages of major 1 up to this minor are accepted

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)

    def record(self, ctx: RequestContext, message: dict[str, Any]) -> None:
        line = json.dumps(message, sort_keys=True) + "\n"
        with self._lock, open(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                      0o600), "a", encoding="utf-8") as fh:
            fh.write(line)
