"""A real ``transcell up`` (2 cells × 1 host) for the actions that change a guest
where it runs, with soft delete switched on so deletes can be restored and reclaimed."""

from __future__ import annotations

import os

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud
from powerhelpers import RECLAIM_SECONDS


@pytest.fixture(scope="session")
def pcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("power"))
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(f"[compute]\nreclaim_instance_interval = {RECLAIM_SECONDS}\n"
                 "[conductor]\nmove_check_interval = 1\n")
    proc = start_cloud(state_dir, extra=("--cells", "2", "--hosts-per-cell", "1"))
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)
