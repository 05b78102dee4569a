"""The routed network follows ``--cells N`` and survives a restart unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

NET = "/network/v2.0"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Iterator[str]:
    yield str(tmp_path_factory.mktemp("routed-cells"))


def _routed(cloud: CloudProcess) -> tuple[dict, list[dict], list[dict]]:
    (net,) = cloud.request("GET", f"{NET}/networks?name=routed").json()["networks"]
    segments = cloud.request("GET", f"{NET}/segments?network_id={net['id']}").json()[
        "segments"]
    subnets = cloud.request("GET", f"{NET}/subnets?network_id={net['id']}").json()[
        "subnets"]
    return net, segments, subnets


def test_three_cells_three_segments_and_a_restart_changes_nothing(state_dir):
    flags = ("--cells", "3", "--hosts-per-cell", "1")
    proc = start_cloud(state_dir, flags)
    try:
        cloud = CloudProcess(state_dir, proc.port)
        net, segments, subnets = _routed(cloud)
        assert sorted(s["transcell:cells"][0] for s in segments) == ["cell1", "cell2",
                                                                      "cell3"]
        by_segment = {sub["segment_id"]: sub["cidr"] for sub in subnets}
        cidrs = {s["name"]: by_segment[s["id"]] for s in segments}
        assert cidrs == {"cell1": "10.10.1.0/24", "cell2": "10.10.2.0/24",
                         "cell3": "10.10.3.0/24"}
        port = cloud.request("POST", f"{NET}/ports", json={"port": {
            "network_id": net["id"], "binding:host_id": "cell3-host1"}}).json()["port"]
        assert port["fixed_ips"][0]["ip_address"].startswith("10.10.3.")
    finally:
        stop_cloud(proc, purge=False)
    proc = start_cloud(state_dir, flags, port=proc.port)
    try:
        again = _routed(CloudProcess(state_dir, proc.port))
        assert again[0]["id"] == net["id"]
        assert sorted(s["id"] for s in again[1]) == sorted(s["id"] for s in segments)
        assert sorted(s["id"] for s in again[2]) == sorted(s["id"] for s in subnets)
    finally:
        stop_cloud(proc)
