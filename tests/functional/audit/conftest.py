"""A real ``transcell up`` (2 cells x 2 hosts) of its own for the audit tests: they plant
damage and repair it, so no other test's cloud sees it."""

from __future__ import annotations

import os
import sys

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "moves"))


@pytest.fixture(scope="module")
def acloud(tmp_path_factory) -> CloudProcess:
    proc = start_cloud(str(tmp_path_factory.mktemp("audit")))
    yield CloudProcess(proc.state_dir, proc.port)
    stop_cloud(proc)
