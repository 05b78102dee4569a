"""A running cloud (2 cells x 2 hosts) per test module: volumes are tested end to end."""

from __future__ import annotations

import pytest
import volapi
from cloudclients import stop_cloud


@pytest.fixture(scope="module")
def vcloud(tmp_path_factory):
    proc, cloud = volapi.start(tmp_path_factory, "volume")
    yield cloud
    stop_cloud(proc)
