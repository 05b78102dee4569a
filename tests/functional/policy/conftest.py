"""Fixtures of the policy tests: one cloud and one set of demo objects per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud
from policy_world import World, build_world


@pytest.fixture(scope="session")
def policy_cloud(tmp_path_factory) -> Iterator[CloudProcess]:
    state_dir = str(tmp_path_factory.mktemp("policy-cloud"))
    proc = start_cloud(state_dir, ("--hosts-per-cell", "1"))
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


@pytest.fixture(scope="session")
def world(policy_cloud: CloudProcess) -> World:
    return build_world(policy_cloud)
