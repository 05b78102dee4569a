"""Tempest's own cloud: two cells with one compute host each, so that a resize or
cold migration can only succeed by moving the server to the other cell."""

from __future__ import annotations

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

CELLS = 2
HOSTS_PER_CELL = 1


@pytest.fixture(scope="session")
def tempest_cloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("tempest-cloud"))
    proc = start_cloud(state_dir, ("--cells", str(CELLS),
                                   "--hosts-per-cell", str(HOSTS_PER_CELL)))
    cloud = CloudProcess(state_dir, proc.port)
    try:
        _check_topology(cloud)
        yield cloud
    finally:
        stop_cloud(proc)


def _check_topology(cloud: CloudProcess) -> None:
    """Each cell is an availability zone named after it; every one must have exactly
    one compute host, or "the move crossed cells" would not follow from "the host
    changed"."""
    resp = cloud.request("GET", "/compute/v2.1/os-availability-zone/detail")
    resp.raise_for_status()
    hosts_by_zone = {}
    for zone in resp.json()["availabilityZoneInfo"]:
        computes = [host for host, services in (zone.get("hosts") or {}).items()
                    if "nova-compute" in services]
        if computes:
            hosts_by_zone[zone["zoneName"]] = computes
    assert len(hosts_by_zone) == CELLS, hosts_by_zone
    assert all(len(hosts) == HOSTS_PER_CELL for hosts in hosts_by_zone.values()), \
        hosts_by_zone
