"""A compute host's side of volumes: connect, disconnect, and build with them.

The host is the one that knows where it is, so it is the one that hands the
volume service its connector (``{"host": ...}``) and receives the connection
info, which names the volume's file; it records that info in the mapping and
gives it to its driver. Every step that fails is undone before the error
leaves the host: no connection, no attachment and no mapping stay behind
for an attach that did not happen.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from transcell import exception
from transcell.compute import actions, volumes
from transcell.compute import bdm as bdms
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)


class VolumeOperations:
    """Mixed into ComputeManager, which provides host, cell, driver and _lock."""

    host: str
    cell: Any
    driver: Any
    _lock: Any

    def volume_connector(self) -> dict[str, Any]:
        """What this host tells the volume service about itself when it connects."""
        return {"host": self.host, "initiator": f"iqn.2026-12.org.transcell:{self.host}",
                "ip": "127.0.0.1", "platform": "x86_64", "os_type": "linux",
                "multipath": False, "hostname": socket.gethostname()}

    # attach / detach --------------------------------------------------------
    def attach_volume(self, ctx: RequestContext, instance_uuid: str, bdm_uuid: str) -> None:
        """Connect a volume the API reserved: update the attachment with this host's
        connector, record the connection info, attach in the driver, complete."""
        with self._lock(instance_uuid), actions.event(
                ctx, self.cell, instance_uuid, "compute_attach_volume", self.host):
            mapping = bdms.get_by_uuid(self.cell, bdm_uuid)
            if mapping is None or not mapping["attachment_id"]:
                LOG.info("Attach of mapping %s to %s stopped: it is gone", bdm_uuid,
                         instance_uuid)
                return
            try:
                self._connect(ctx, instance_uuid, mapping)
            except BaseException:
                self._disconnect(ctx, instance_uuid, mapping, delete_volume=False)
                raise

    def _connect(self, ctx: RequestContext, instance_uuid: str, mapping: dict) -> dict:
        attachment = services.volume.attachment_update(
            ctx, mapping["attachment_id"],
            self.volume_connector() | {"mountpoint": mapping["device_name"]})
        info = attachment.get("connection_info")
        if not info:
            raise exception.TranscellError(
                f"The volume service gave no connection info for volume "
                f"{mapping['volume_id']} on host {self.host}.")
        if not bdms.set_fields(self.cell, mapping["uuid"],
                               expected={"attachment_id": mapping["attachment_id"]},
                               connection_info=info):
            raise exception.Conflict(f"Volume {mapping['volume_id']} was detached while "
                                     "being attached.")
        mapping["connection_info"] = info
        self.driver.attach_volume(instance_uuid, info,
                                  mapping["device_name"])
        services.volume.attachment_complete(ctx, mapping["attachment_id"])
        return info

    def detach_volume(self, ctx: RequestContext, instance_uuid: str, bdm_uuid: str) -> None:
        """Disconnect the volume, delete its attachment, drop the mapping; a second
        detach of the same mapping finds it gone and does nothing."""
        with self._lock(instance_uuid), actions.event(
                ctx, self.cell, instance_uuid, "compute_detach_volume", self.host):
            mapping = bdms.get_by_uuid(self.cell, bdm_uuid)
            if mapping is None:
                return
            self._disconnect(ctx, instance_uuid, mapping, delete_volume=False)

    def _resume_attaches(self, ctx: RequestContext, server: dict) -> None:
        """Finish attaches the API reserved whose message died with this process: a
        mapping with an attachment but no connection info on a server at rest."""
        if server["vm_state"] not in volumes.ATTACHABLE_STATES or server["task_state"]:
            return
        for mapping in bdms.volumes_of(self.cell, server["uuid"]):
            if mapping["attachment_id"] and mapping["connection_info"] is None:
                LOG.info("Finishing the attach of volume %s to %s after a restart",
                         mapping["volume_id"], server["uuid"])
                try:
                    self.attach_volume(ctx, server["uuid"], mapping["uuid"])
                except Exception:
                    LOG.exception("Could not finish the attach of volume %s",
                                  mapping["volume_id"])

    def _disconnect(self, ctx: RequestContext, instance_uuid: str, mapping: dict,
                    delete_volume: bool) -> None:
        try:
            self.driver.detach_volume(instance_uuid,
                                      mapping["volume_id"])
        except exception.InstanceNotFound:
            pass
        volumes.cleanup_volumes(ctx, [mapping | {"delete_on_termination": delete_volume}])
        bdms.destroy(self.cell, mapping["uuid"])

    # builds -----------------------------------------------------------------
    def _prep_block_devices(self, ctx: RequestContext, instance_uuid: str) -> dict[str, Any]:
        """Create the volumes a build asked for, connect every volume to this host.

        A volume is recorded in its mapping as soon as it exists, so an undo
        (``_release_block_devices``) finds and removes it whatever step failed.
        Returns the driver's ``block_device_info``.
        """
        info: dict[str, Any] = {"root_volume": None, "volumes": []}
        for mapping in bdms.volumes_of(self.cell, instance_uuid):
            if not mapping["volume_id"]:
                volume = services.volume.create(
                    ctx, size=mapping["volume_size"], name="",
                    image_id=mapping["image_id"] if mapping["source_type"] == "image" else None,
                    snapshot_id=mapping.get("snapshot_id")
                    if mapping["source_type"] == "snapshot" else None,
                    volume_type=mapping["volume_type"])
                mapping["volume_id"] = volume["id"]
                bdms.set_fields(self.cell, mapping["uuid"],
                                volume_id=volume["id"], volume_size=volume.get("size"))
            # the device the guest sees it as, which the volume service shows as "device"
            connector = self.volume_connector() | {"mountpoint": mapping["device_name"]}
            if mapping["attachment_id"]:
                attachment = services.volume.attachment_update(ctx, mapping["attachment_id"],
                                                               connector)
            else:
                attachment = services.volume.attachment_create(
                    ctx, mapping["volume_id"], instance_uuid, connector=connector)
            mapping["attachment_id"] = attachment["id"]
            mapping["connection_info"] = attachment.get("connection_info")
            bdms.set_fields(self.cell, mapping["uuid"],
                            attachment_id=attachment["id"],
                            connection_info=mapping["connection_info"])
            entry = {"volume_id": mapping["volume_id"], "device_name": mapping["device_name"],
                     "connection_info": mapping["connection_info"],
                     "attachment_id": attachment["id"]}
            if mapping["boot_index"] == 0:
                info["root_volume"] = entry
            info["volumes"].append(entry)
        return info

    def _complete_block_devices(self, ctx: RequestContext, info: dict[str, Any]) -> None:
        for entry in info["volumes"]:
            services.volume.attachment_complete(ctx, entry["attachment_id"])

    def _release_block_devices(self, ctx: RequestContext, instance_uuid: str,
                               for_retry: bool) -> None:
        """Undo ``_prep_block_devices`` after a failed build.

        Volumes the build created are deleted (a retry creates them again).
        An existing volume stays the server's: with ``for_retry`` it gets a
        fresh reserved attachment before the one of this host goes, so no
        other server can take it between the two.
        """
        for mapping in bdms.volumes_of(self.cell, instance_uuid):
            created = mapping["source_type"] in ("image", "blank", "snapshot")
            keep: str | None = None
            if for_retry and not created and mapping["volume_id"]:
                try:
                    keep = services.volume.attachment_create(ctx, mapping["volume_id"],
                                                             instance_uuid)["id"]
                except Exception:
                    LOG.exception("Could not keep volume %s reserved for %s",
                                  mapping["volume_id"], instance_uuid)
            old = mapping["attachment_id"]
            if old and old != keep:
                volumes.cleanup_volumes(ctx, [mapping | {"delete_on_termination": False}])
            if created and mapping["volume_id"]:
                volumes.cleanup_volumes(ctx, [mapping | {"attachment_id": None,
                                                         "delete_on_termination": True}])
            bdms.set_fields(self.cell, mapping["uuid"],
                            attachment_id=keep, connection_info=None,
                            **({"volume_id": None} if created else {}))

    def _delete_volumes(self, ctx: RequestContext, instance_uuid: str) -> None:
        """At delete: every attachment goes, volumes marked delete_on_termination too."""
        volumes.cleanup_volumes(
            ctx, bdms.volumes_of(self.cell, instance_uuid))
