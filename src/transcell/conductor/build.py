"""Building a server: schedule, create it in the chosen cell, map it, start it.

The order matters for "nothing is lost": the row exists in its cell before
the mapping points there, and the mapping points there before any host works
on it. A server no host can take is created in cell0 in ERROR with a fault,
so the user sees why.
"""

from __future__ import annotations

import logging

from transcell import cell as cells
from transcell import exception, quota
from transcell import mapping as mappings
from transcell.compute import actions
from transcell.compute import bdm as bdms
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.move import copy
from transcell.registry import services
from transcell.scheduler.rpcapi import SchedulerAPI

LOG = logging.getLogger(__name__)

SCHEDULE_EVENT = "conductor_schedule_and_build_instances"


def create_instance_rows(cell: cells.Cell, instance: dict, flavor: dict, **columns) -> None:
    """Every row a new server owns, in one transaction of its cell."""
    uuid = instance["uuid"]
    with cell_session(cell) as s:
        s.add(cm.Instance(
            uuid=uuid, display_name=instance["display_name"],
            display_description=instance.get("display_description"),
            hostname=instance.get("hostname"), user_id=instance["user_id"],
            project_id=instance["project_id"], image_ref=instance.get("image_ref"),
            instance_type_id=flavor["id"], memory_mb=flavor["memory_mb"],
            vcpus=flavor["vcpus"], root_gb=flavor["root_gb"],
            ephemeral_gb=flavor["ephemeral_gb"], key_name=instance.get("key_name"),
            key_data=instance.get("key_data"), access_ip_v4=instance.get("access_ip_v4"),
            access_ip_v6=instance.get("access_ip_v6"),
            config_drive=instance.get("config_drive"),
            auto_disk_config=instance.get("auto_disk_config", False),
            reservation_id=instance.get("reservation_id"), root_device_name="/dev/vda",
            **columns))
        s.flush()
        s.add(cm.InstanceExtra(instance_uuid=uuid,
                               flavor={"cur": flavor, "old": None, "new": None},
                               keypairs=instance.get("keypairs") or [],
                               request_networks=_as_list(instance.get("requested_networks"))))
        for key, value in (instance.get("metadata") or {}).items():
            s.add(cm.InstanceMetadata(instance_uuid=uuid, key=key, value=value))
        for key, value in (instance.get("system_metadata") or {}).items():
            s.add(cm.InstanceSystemMetadata(instance_uuid=uuid, key=key, value=value))
        for tag in sorted(set(instance.get("tags") or [])):
            s.add(cm.Tag(resource_id=uuid, tag=tag))
        mappings = list(instance.get("bdms") or [])
        if not any(b.get("boot_index") == 0 for b in mappings):
            # booted from imageRef: the image is the boot disk, local to the host
            mappings.insert(0, {"source_type": "image", "destination_type": "local",
                                "image_id": instance.get("image_ref"), "boot_index": 0,
                                "delete_on_termination": True})
        bdms.add_build_mappings(s, uuid, mappings)


def _as_list(requested):
    if isinstance(requested, str):
        return [{"special": requested}]
    return requested


class BuildTask:
    def __init__(self) -> None:
        self.compute = ComputeAPI()

    def schedule_and_build(self, ctx: RequestContext, request_spec: dict,
                           instance: dict) -> dict:
        flavor = request_spec["flavor"]
        uuid = instance["uuid"]
        try:
            selections = self._scheduler().select_destinations(ctx, request_spec, uuid)
        except exception.NoValidHost as exc:
            self._bury_in_cell0(ctx, instance, flavor, exc)
            return {"uuid": uuid}
        chosen, alternates = selections[0], selections[1:]
        cell = cells.get_cell(chosen["cell_uuid"])
        try:
            create_instance_rows(cell, instance, flavor, vm_state=vm.BUILDING,
                                 task_state=vm.SCHEDULING, host=chosen["host"],
                                 node=chosen["nodename"], launched_on=chosen["host"],
                                 availability_zone=cell.name)
            actions.record_action(ctx, cell, uuid, actions.CREATE)
            actions.start_event(ctx, cell, uuid, SCHEDULE_EVENT)
            actions.finish_event(ctx, cell, uuid, SCHEDULE_EVENT)
            mappings.map_to(uuid, cell)
            self._recheck_quota(cell, uuid, instance["project_id"], flavor)
        except Exception:
            services.placement.delete_allocations(uuid)
            raise
        self.compute.build_and_run_instance(ctx, chosen["host"], uuid, request_spec,
                                            alternates)
        return {"uuid": uuid}

    def _bury_in_cell0(self, ctx: RequestContext, instance: dict, flavor: dict,
                       error: Exception) -> None:
        cell0 = cells.cell0()
        uuid = instance["uuid"]
        create_instance_rows(cell0, instance, flavor, vm_state=vm.ERROR, task_state=None)
        actions.record_action(ctx, cell0, uuid, actions.CREATE)
        actions.start_event(ctx, cell0, uuid, SCHEDULE_EVENT)
        actions.finish_event(ctx, cell0, uuid, SCHEDULE_EVENT, error)
        inst.add_fault(cell0, uuid, error)
        mappings.map_to(uuid, cell0)
        self._recheck_quota(cell0, uuid, instance["project_id"], flavor)

    @staticmethod
    def _recheck_quota(cell: cells.Cell, uuid: str, project_id: str, flavor: dict) -> None:
        """Count the project again now that this server's rows are on disk; over a
        limit, the server never existed: its rows, mapping and spec go, and the
        API answers 403 (the API's check before the build lets racing builds
        through; this one does not)."""
        try:
            quota.recheck(project_id, instances=1, cores=flavor["vcpus"],
                          ram=flavor["memory_mb"])
        except exception.OverQuota:
            copy.hard_delete(cell, uuid, only_hidden=False)
            mappings.forget(uuid)
            raise

    @staticmethod
    def _scheduler() -> SchedulerAPI:
        from transcell.conf import CONF
        from transcell.rpc.bus import get_bus
        return SchedulerAPI(get_bus(CONF.rpc.transport_url))
