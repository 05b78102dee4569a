"""One real ``transcell up`` shared by the edge tests: every API behind one port,
reached over HTTP exactly as a hostile client would reach it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud


@pytest.fixture(scope="session")
def edge_cloud(tmp_path_factory) -> Iterator[CloudProcess]:
    state_dir = str(tmp_path_factory.mktemp("edge-cloud"))
    proc = start_cloud(state_dir)
    try:
        yield CloudProcess(state_dir, proc.port)
    finally:
        stop_cloud(proc)
