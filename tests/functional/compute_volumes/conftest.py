"""One real ``transcell up`` per test module of compute volumes (see each module's fixture)."""

from __future__ import annotations

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud


@pytest.fixture(scope="module")
def vcloud(tmp_path_factory) -> CloudProcess:
    state_dir = str(tmp_path_factory.mktemp("compute-volumes"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)
