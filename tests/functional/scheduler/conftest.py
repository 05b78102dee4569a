"""Fixtures of the scheduler functional tests: real Placement, fresh cells per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import scheduler_fixtures as fx

from transcell.conf import CONF
from transcell.placement import client as placement_client
from transcell.placement import embedded
from transcell.registry import services


@pytest.fixture(scope="session")
def scheduler_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_templates(tmp_path_factory.mktemp("scheduler-templates"))


@pytest.fixture(scope="session")
def scheduler_placement_app(tmp_path_factory: pytest.TempPathFactory):
    url = embedded.loaded_url() or (
        f"sqlite:///{tmp_path_factory.mktemp('placement') / 'placement.sqlite'}")
    return embedded.load_app(url)


@pytest.fixture
def sched_cloud(tmp_path: Path, scheduler_templates: Path,
                scheduler_placement_app) -> Iterator[fx.Cloud]:
    CONF.set_override("state_dir", str(tmp_path))
    CONF.set_override("connection", f"sqlite:///{tmp_path / 'api.sqlite'}",
                      group="api_database")
    previous = services.placement
    client = placement_client.PlacementClient(
        placement_client.DirectTransport(scheduler_placement_app))
    services.placement = client
    cloud = fx.build(tmp_path, scheduler_templates, client)
    try:
        yield cloud
    finally:
        fx.dispose(cloud)
        services.placement = previous
        CONF.clear_override("cross_cell_move_weight_multiplier", group="scheduler")
        CONF.clear_override("connection", group="api_database")
        CONF.clear_override("state_dir")
