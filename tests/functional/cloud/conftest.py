"""A real ``transcell up`` in a subprocess, driven only through its public APIs."""

from __future__ import annotations

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud


@pytest.fixture(scope="session")
def cloud(tmp_path_factory) -> CloudProcess:
    """One two-cell cloud (2 hosts per cell) shared by the end-to-end tests."""
    state_dir = str(tmp_path_factory.mktemp("cloud"))
    proc = start_cloud(state_dir)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)
