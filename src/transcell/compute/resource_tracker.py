"""A host's view of its own capacity, reported to its cell DB and to Placement.

The compute node uuid is the resource provider uuid, and the provider is a
member of its cell's aggregate (whose uuid is the cell uuid), so the
scheduler can confine or exclude a cell with ``member_of``.
"""

from __future__ import annotations

import threading
import uuid as uuidlib

from sqlalchemy import select

from transcell.cell import Cell
from transcell.compute import instance as inst
from transcell.compute.virt.driver import ComputeDriver
from transcell.conf import CONF
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.registry import services


class ResourceTracker:
    def __init__(self, host: str, cell: Cell, driver: ComputeDriver, traits: list[str]):
        self.host = host
        self.cell = cell
        self.driver = driver
        self.traits = traits
        self.node_uuid: str | None = None
        self.nodename = host
        self._lock = threading.Lock()

    def register(self, service_id: int | None) -> str:
        res = self.driver.get_available_resource()
        with cell_session(self.cell) as s:
            node = s.scalar(select(cm.ComputeNode).where(cm.ComputeNode.host == self.host,
                                                         cm.ComputeNode.deleted == 0))
            if node is None:
                node = cm.ComputeNode(uuid=str(uuidlib.uuid4()), host=self.host,
                                      hypervisor_hostname=self.nodename, vcpus=0,
                                      memory_mb=0, local_gb=0)
                s.add(node)
            node.vcpus = res["vcpus"]
            node.memory_mb = res["memory_mb"]
            node.local_gb = res["local_gb"]
            node.hypervisor_type = res.get("hypervisor_type", "fake")
            node.hypervisor_version = res.get("hypervisor_version", 1000)
            node.host_ip = "127.0.0.1"
            node.cpu_allocation_ratio = CONF.compute.cpu_allocation_ratio
            node.ram_allocation_ratio = CONF.compute.ram_allocation_ratio
            node.disk_allocation_ratio = CONF.compute.disk_allocation_ratio
            node.service_id = service_id
            s.flush()
            self.node_uuid = node.uuid
        placement = services.placement
        placement.ensure_resource_provider(self.node_uuid, self.nodename)
        placement.set_inventory(self.node_uuid, {
            "VCPU": _inventory(res["vcpus"], CONF.compute.cpu_allocation_ratio),
            "MEMORY_MB": _inventory(res["memory_mb"], CONF.compute.ram_allocation_ratio),
            "DISK_GB": _inventory(res["local_gb"], CONF.compute.disk_allocation_ratio),
        })
        placement.ensure_traits(self.traits)
        placement.set_traits(self.node_uuid, ["COMPUTE_NODE", *self.traits])
        placement.set_aggregates(self.node_uuid, [self.cell.uuid])
        self.update_usage()
        return self.node_uuid

    def update_usage(self) -> dict:
        """Recount what this host holds: every live row placed here, hidden included,
        because a hidden copy of a moving server still holds its resources."""
        with self._lock:
            rows = [r for r in inst.on_host(self.cell, self.host) if r["node"] == self.nodename]
            with cell_session(self.cell) as s:
                # a volume-backed server's root disk is on the volume service, not here
                volume_backed = set(s.scalars(select(cm.BlockDeviceMapping.instance_uuid).where(
                    cm.BlockDeviceMapping.instance_uuid.in_([r["uuid"] for r in rows]),
                    cm.BlockDeviceMapping.boot_index == 0,
                    cm.BlockDeviceMapping.destination_type == "volume",
                    cm.BlockDeviceMapping.deleted == 0))) if rows else set()
            used = {"vcpus_used": sum(r["vcpus"] for r in rows),
                    "memory_mb_used": sum(r["memory_mb"] for r in rows),
                    "local_gb_used": sum((0 if r["uuid"] in volume_backed else r["root_gb"])
                                         + r["ephemeral_gb"] for r in rows),
                    "running_vms": len(rows)}
            with cell_session(self.cell) as s:
                node = s.scalar(select(cm.ComputeNode).where(cm.ComputeNode.uuid ==
                                                             self.node_uuid))
                for key, value in used.items():
                    setattr(node, key, value)
            return used


def _inventory(total: int, ratio: float) -> dict:
    return {"total": total, "reserved": 0, "min_unit": 1, "max_unit": total, "step_size": 1,
            "allocation_ratio": ratio}
