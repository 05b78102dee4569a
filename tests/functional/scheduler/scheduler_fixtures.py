"""A two-cell cloud for the scheduler: cell and API databases on SQLite files, compute
hosts as rows, and each host a resource provider in the real (in-process) Placement,
in its cell's aggregate and with its cell's hardware trait, as the compute agents
register them.

Placement is shared by the whole test process, so every test makes fresh cells
(fresh aggregate uuids) and fresh providers; the scheduler only considers
providers that are compute nodes of the test's own cells.
"""

from __future__ import annotations

import shutil
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

from transcell import aggregates
from transcell.cell import CELL0_UUID, Cell
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db import migration
from transcell.db.session import api_session, cell_session, get_engine
from transcell.db.types import utcnow
from transcell.placement.client import PlacementClient

DB_NAMES = {"api": "api", "cell0": "cell", "cell1": "cell", "cell2": "cell"}
PROJECT = "demo-project"
USER = "demo"


def make_templates(directory: Path) -> Path:
    for name, schema in DB_NAMES.items():
        url = f"sqlite:///{directory / (name + '.sqlite')}"
        migration.sync(url, schema)
        get_engine(url).dispose()
    return directory


@dataclass
class Cloud:
    root: Path
    placement: PlacementClient
    cells: dict[str, Cell] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)  # host -> provider uuid

    def add_host(self, cell_name: str, host: str, memory_mb: int = 8192, vcpus: int = 8,
                 disk_gb: int = 100, up: bool = True) -> str:
        cell = self.cells[cell_name]
        node_uuid = str(uuidlib.uuid4())
        with api_session() as s:
            s.add(am.HostMapping(host=host, cell_id=cell.id))
        with cell_session(cell) as s:
            service = cm.Service(uuid=str(uuidlib.uuid4()), host=host, binary="nova-compute",
                                 topic="compute", last_seen_up=utcnow(), forced_down=not up)
            s.add(service)
            s.flush()
            s.add(cm.ComputeNode(uuid=node_uuid, host=host, hypervisor_hostname=host,
                                 vcpus=vcpus, memory_mb=memory_mb, local_gb=disk_gb,
                                 service_id=service.id))
        trait = f"CUSTOM_HW_GEN{cell_name.removeprefix('cell')}"
        self.placement.ensure_resource_provider(node_uuid, f"{host}-{node_uuid[:8]}")
        self.placement.set_inventory(node_uuid, {
            "VCPU": {"total": vcpus, "allocation_ratio": 1.0},
            "MEMORY_MB": {"total": memory_mb, "allocation_ratio": 1.0},
            "DISK_GB": {"total": disk_gb, "allocation_ratio": 1.0}})
        self.placement.ensure_traits([trait])
        self.placement.set_traits(node_uuid, ["COMPUTE_NODE", trait])
        self.placement.set_aggregates(node_uuid, [cell.uuid])
        self.providers[host] = node_uuid
        return node_uuid

    def aggregate(self, name: str, hosts: list[str], metadata: dict[str, str]) -> None:
        agg = aggregates.create(name)
        for host in hosts:
            aggregates.add_host(agg.id, host)
        aggregates.set_metadata(agg.id, metadata)


def build(root: Path, templates: Path, placement: PlacementClient) -> Cloud:
    cloud = Cloud(root, placement)
    for name in DB_NAMES:
        shutil.copy(templates / f"{name}.sqlite", root / f"{name}.sqlite")
    with api_session() as s:
        for name in ("cell0", "cell1", "cell2"):
            s.add(am.CellMapping(uuid=CELL0_UUID if name == "cell0" else str(uuidlib.uuid4()),
                                 name=name,
                                 database_connection=f"sqlite:///{root / (name + '.sqlite')}",
                                 transport_url=f"inproc://{name}"))
    with api_session() as s:
        for row in s.query(am.CellMapping).all():
            cloud.cells[row.name] = Cell.of(row)
    return cloud


def dispose(cloud: Cloud) -> None:
    get_engine(f"sqlite:///{cloud.root / 'api.sqlite'}").dispose()
    for cell in cloud.cells.values():
        get_engine(cell.database_connection).dispose()


def flavor(memory_mb: int = 1024, vcpus: int = 1, root_gb: int = 10,
           extra_specs: dict[str, str] | None = None) -> dict:
    return {"vcpus": vcpus, "memory_mb": memory_mb, "root_gb": root_gb, "ephemeral_gb": 0,
            "swap": 0, "extra_specs": extra_specs or {}}


def spec(flavor_: dict | None = None, **extra) -> dict:
    body = {"flavor": flavor_ or flavor(), "project_id": PROJECT, "user_id": USER}
    body.update(extra)
    return body
