"""``services.volume`` when the volume service runs in this process.

Compute hosts and conductors call the same methods whether the service is
here or behind its HTTP API (``transcell.volume.http_client``). Results pass
through JSON on the way, so a caller sees exactly what it would over HTTP and
can never change the service's own objects.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from transcell.volume.service import VolumeService

#: the methods of the shared interface (see the design); nothing else is reachable
METHODS = ("get", "list", "create", "delete", "extend", "update", "attachment_create",
           "attachment_update", "attachment_complete", "attachment_delete",
           "attachment_get", "attachment_list", "backend_info", "plan_move", "move_copy",
           "move_switch", "move_confirm", "move_revert", "move_copies", "migrate",
           "upload_to_image", "update_metadata", "reserve", "unreserve", "attach", "detach",
           "begin_detaching", "roll_detaching", "initialize_connection",
           "reset_status", "create_snapshot", "get_snapshot", "list_snapshots",
           "delete_snapshot")


class VolumeClient:
    def __init__(self, service: VolumeService):
        self.service = service

    def __getattr__(self, name: str) -> Any:
        if name not in METHODS:
            raise AttributeError(name)
        method = getattr(self.service, name)

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return None if result is None else json.loads(json.dumps(result))
        return call
