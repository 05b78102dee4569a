"""A real ``transcell up`` (2 cells × 2 hosts) for the move tests, apart from the
lifecycle tests' cloud, so hypervisor usage and listings count only moves."""

from __future__ import annotations

import os

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud


@pytest.fixture(scope="session")
def mcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("moves"))
    # A policy file the tests can change while the cloud runs (oslo.policy reloads it).
    policy = os.path.join(state_dir, "policy.yaml")
    with open(policy, "w") as fh:
        fh.write("{}\n")
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[oslo_policy]\npolicy_file = {policy}\n")
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)
