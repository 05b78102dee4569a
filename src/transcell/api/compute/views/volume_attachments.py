"""Volume attachment bodies as Nova shapes them at each microversion.

Until 2.89 an attachment is known by its volume's id (``id``); from 2.89 by
``attachment_id`` (the volume service's) and ``bdm_uuid`` (the mapping's),
and ``id`` is gone. ``tag`` shows from 2.70, ``delete_on_termination`` from 2.79.
"""

from __future__ import annotations

from typing import Any

from transcell.api.compute.microversion import APIVersion


def attachment(version: APIVersion, bdm: dict[str, Any], *, created: bool = False
               ) -> dict[str, Any]:
    newest = version.matches("2.89") and not created
    body: dict[str, Any] = {} if newest else {"id": bdm["volume_id"]}
    body["volumeId"] = bdm["volume_id"]
    body["serverId"] = bdm["instance_uuid"]
    if bdm.get("device_name") or created:
        # an attach answers with the device even when none was chosen yet, as Nova's does
        body["device"] = bdm.get("device_name")
    if version.matches("2.70"):
        body["tag"] = bdm.get("tag")
    if version.matches("2.79"):
        body["delete_on_termination"] = bool(bdm.get("delete_on_termination"))
    if newest:
        body["attachment_id"] = bdm.get("attachment_id")
        body["bdm_uuid"] = bdm["uuid"]
    return body
