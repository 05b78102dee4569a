"""One real Placement per test process, shared by every Placement functional test.

Placement's database layer is process-global, so the app is loaded once for
the session; tests stay independent by using fresh provider and consumer uuids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from transcell.placement import client as placement_client
from transcell.placement import embedded


@pytest.fixture(scope="session")
def placement_app(tmp_path_factory):
    url = embedded.loaded_url() or (
        f"sqlite:///{tmp_path_factory.mktemp('placement') / 'placement.sqlite'}")
    return embedded.load_app(url)


@pytest.fixture
def placement(placement_app) -> placement_client.PlacementClient:
    return placement_client.PlacementClient(placement_client.DirectTransport(placement_app))


INVENTORY = {
    "VCPU": {"total": 8, "allocation_ratio": 1.0},
    "MEMORY_MB": {"total": 4096, "allocation_ratio": 1.0},
    "DISK_GB": {"total": 100},
}


@pytest.fixture
def inventory() -> dict:
    return INVENTORY


@dataclass
class Host:
    uuid: str
    name: str
    aggregate: str
    trait: str


@pytest.fixture
def cells(placement) -> tuple[Host, Host]:
    """cell1-host1 (CUSTOM_HW_GEN1) and cell2-host1 (CUSTOM_HW_GEN2), one aggregate per cell."""
    suffix = uuid.uuid4().hex[:8]
    hosts = []
    for n in (1, 2):
        host = Host(str(uuid.uuid4()), f"cell{n}-host1-{suffix}", str(uuid.uuid4()),
                    f"CUSTOM_HW_GEN{n}")
        placement.ensure_resource_provider(host.uuid, host.name)
        placement.set_inventory(host.uuid, INVENTORY)
        placement.set_traits(host.uuid, [host.trait])
        placement.set_aggregates(host.uuid, [host.aggregate])
        hosts.append(host)
    return hosts[0], hosts[1]
