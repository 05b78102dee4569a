"""A compute host's side of what other services tell it: external events and
assisted volume snapshots (RPC 1.4).

Each event is first handed to the driver, which keeps a record of it (the fake
driver writes it next to the guest), and then acted on where it matters:

* ``power-update`` says the guest was powered on or off behind compute's back
  (Ironic does this): a stopped server that is now on becomes active, an active
  one that is now off becomes stopped; a server in the middle of a task, or
  already in the state the event names, is left alone, as Nova leaves it.
* ``volume-extended`` says a volume attached here grew: the mapping takes the
  size the volume service now reports.
* the ``network-*`` events and ``accelerator-request-bound`` only need to be
  known: transcell's network service plugs ports synchronously and there are no
  accelerators, so nothing waits for them. They are logged and recorded.

A cast has no one to answer to: an event that cannot be acted on is logged and
dropped, and never stops the events after it.
"""

from __future__ import annotations

import logging
from typing import Any

from transcell import exception
from transcell.compute import bdm as bdms
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.virt import power_state
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)


class EventOperations:
    """Mixed into ComputeManager, which provides host, cell, driver and _lock."""

    host: str
    cell: Any
    driver: Any
    _lock: Any

    def external_instance_event(self, ctx: RequestContext, instance_uuid: str,
                                events: list[dict[str, Any]]) -> None:
        for event in events:
            LOG.info("Event %s:%s (%s) for %s on %s", event["name"], event.get("tag"),
                     event.get("status"), instance_uuid, self.host)
            try:
                with self._lock(instance_uuid):
                    self._handle_event(ctx, instance_uuid, event)
            except Exception:
                LOG.exception("Event %s for %s was dropped", event["name"], instance_uuid)

    def _handle_event(self, ctx: RequestContext, instance_uuid: str,
                      event: dict[str, Any]) -> None:
        server = inst.find(self.cell, instance_uuid)
        if server is None or server["deleted"] or server["host"] != self.host:
            LOG.info("Event %s for %s dropped: the server is not on %s", event["name"],
                     instance_uuid, self.host)
            return
        if self.driver.instance_exists(instance_uuid):
            self.driver.record_external_event(instance_uuid, event)
        if event["name"] == "power-update":
            self._power_update(instance_uuid, server, event.get("tag"))
        elif event["name"] == "volume-extended":
            self._volume_extended(ctx, instance_uuid, event.get("tag"))

    def _power_update(self, instance_uuid: str, server: dict[str, Any],
                      tag: str | None) -> None:
        if server["task_state"] is not None:
            LOG.info("power-update %s for %s ignored: it is %s", tag, instance_uuid,
                     server["task_state"])
            return
        if tag == "POWER_ON" and server["vm_state"] == vm.STOPPED:
            was, now, state = vm.STOPPED, vm.ACTIVE, power_state.RUNNING
            self.driver.power_on(instance_uuid)
        elif tag == "POWER_OFF" and server["vm_state"] == vm.ACTIVE:
            was, now, state = vm.ACTIVE, vm.STOPPED, power_state.SHUTDOWN
            self.driver.power_off(instance_uuid)
        else:
            LOG.info("power-update %s for %s ignored: it is %s", tag, instance_uuid,
                     server["vm_state"])
            return
        try:
            inst.update(self.cell, instance_uuid, expected_task_state=None,
                        expected_vm_state=was, vm_state=now, power_state=state)
        except (exception.Conflict, exception.InstanceNotFound) as error:
            LOG.info("power-update %s for %s overtaken: %s", tag, instance_uuid, error)

    def _volume_extended(self, ctx: RequestContext, instance_uuid: str,
                         volume_id: str | None) -> None:
        try:
            mapping = bdms.get_by_volume(self.cell, instance_uuid, str(volume_id))
        except exception.NotFound:
            LOG.info("volume-extended for %s ignored: volume %s is not attached to it",
                     instance_uuid, volume_id)
            return
        size = services.volume.get(ctx, mapping["volume_id"]).get("size")
        if size is not None:
            bdms.set_fields(self.cell, mapping["uuid"],
                            expected={"volume_id": mapping["volume_id"]}, volume_size=size)

    # -- assisted volume snapshots ----------------------------------------------
    def volume_snapshot_create(self, ctx: RequestContext, instance_uuid: str,
                               volume_id: str, create_info: dict[str, Any]) -> None:
        """Hand the request to the driver. A driver that keeps volumes in qcow2
        chains would tell the volume service how the snapshot went; the volume
        service here has no snapshots to tell, so nothing more is sent."""
        try:
            with self._lock(instance_uuid):
                self.driver.volume_snapshot_create(instance_uuid, volume_id, create_info)
        except Exception:
            LOG.exception("Snapshot of volume %s of %s failed", volume_id, instance_uuid)

    def volume_snapshot_delete(self, ctx: RequestContext, instance_uuid: str,
                               volume_id: str, snapshot_id: str,
                               delete_info: dict[str, Any]) -> None:
        try:
            with self._lock(instance_uuid):
                self.driver.volume_snapshot_delete(instance_uuid, volume_id, snapshot_id,
                                                   delete_info)
        except Exception:
            LOG.exception("Deleting snapshot %s of volume %s of %s failed", snapshot_id,
                          volume_id, instance_uuid)
