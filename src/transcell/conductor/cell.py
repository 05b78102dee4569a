"""The cell conductor: the one RPC endpoint a compute host may call.

Cells v2 without up-calls: nothing inside a cell sends a message to an
API-level service. A build that fails on its host is retried here, inside
the cell, on the alternates the scheduler chose when the build was planned
(they travel with the build), claiming each in Placement over HTTP. The cell
conductor reads and writes only its own cell's database and bus.
"""

from __future__ import annotations

import logging

from transcell import exception
from transcell.cell import Cell
from transcell.compute import instance as inst
from transcell.compute import vm_states as vm
from transcell.compute.rpcapi import ComputeAPI
from transcell.context import RequestContext
from transcell.registry import services

LOG = logging.getLogger(__name__)

TOPIC = "conductor"


class CellConductorManager:
    RPC_API_VERSION = "1.0"  # messages of major 1 up to this minor are accepted

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.compute = ComputeAPI(cell=cell)

    def reschedule(self, ctx: RequestContext, instance_uuid: str, alternates: list[dict],
                   failed_host: str, reason: str, request_spec: dict | None = None) -> None:
        """Try the next alternate of this cell; with none left the server is in ERROR.

        Alternates of another cell are skipped: the scheduler returns them from the
        chosen host's cell, and a build never leaves the cell its rows were made in.
        """
        server = inst.get(self.cell, instance_uuid)
        spec = request_spec or {}
        for index, alternate in enumerate(alternates):
            if alternate.get("cell_uuid") not in (None, self.cell.uuid):
                continue
            if not services.placement.claim(instance_uuid, alternate["allocation_request"],
                                            server["project_id"], server["user_id"]):
                continue
            try:
                inst.update(self.cell, instance_uuid, expected_task_state=None,
                            expected_vm_state=vm.BUILDING, host=alternate["host"],
                            node=alternate["nodename"], launched_on=alternate["host"],
                            task_state=vm.SCHEDULING)
            except (inst.UnexpectedTaskState, inst.UnexpectedVMState,
                    exception.InstanceNotFound):
                # a delete took the server meanwhile: it owns the allocation now
                LOG.info("Reschedule of %s stopped: the server changed state", instance_uuid)
                return
            LOG.info("Rescheduling %s from %s to %s: %s", instance_uuid, failed_host,
                     alternate["host"], reason)
            self.compute.build_and_run_instance(ctx, alternate["host"], instance_uuid, spec,
                                                alternates[index + 1:])
            return
        services.placement.delete_allocations(instance_uuid)
        try:
            inst.update(self.cell, instance_uuid, expected_task_state=None,
                        expected_vm_state=vm.BUILDING, vm_state=vm.ERROR, host=None,
                        node=None)
        except (inst.UnexpectedTaskState, inst.UnexpectedVMState,
                exception.InstanceNotFound):
            return
        inst.add_fault(self.cell, instance_uuid, exception.NoValidHost(
            reason=f"Exceeded maximum number of retries. Last failure on {failed_host}: "
                   f"{reason}"))


class CellConductorAPI:
    """How a compute host reaches its cell conductor: its own cell's bus only."""

    VERSION = "1.0"

    def __init__(self, bus):
        self.bus = bus

    def reschedule(self, ctx: RequestContext, instance_uuid: str, alternates: list[dict],
                   failed_host: str, reason: str, request_spec: dict) -> None:
        self.bus.cast(ctx, TOPIC, "reschedule", rpc_version=self.VERSION,
                      instance_uuid=instance_uuid,
                      alternates=alternates, failed_host=failed_host, reason=reason,
                      request_spec=request_spec)
