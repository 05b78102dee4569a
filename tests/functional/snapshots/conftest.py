"""A real ``transcell up`` (2 cells × 2 hosts) for the snapshot, backup and rebuild tests,
with a policy file the tests may change while it runs (oslo.policy reloads it)."""

from __future__ import annotations

import os

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud


@pytest.fixture(scope="session")
def scloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("snapshots"))
    policy = os.path.join(state_dir, "policy.yaml")
    with open(policy, "w") as fh:
        fh.write("{}\n")
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[oslo_policy]\npolicy_file = {policy}\n")
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)
