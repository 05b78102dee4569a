"""Fixtures of the compute API functional tests: a fresh two-cell cloud per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import compute_api_fixtures as fx
import pytest

from transcell import policy
from transcell.conf import CONF
from transcell.registry import services


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_templates(tmp_path_factory.mktemp("compute-api-templates"))


@pytest.fixture
def cloud(tmp_path: Path, db_templates: Path) -> Iterator[fx.Cloud]:
    CONF.set_override("state_dir", str(tmp_path))
    CONF.set_override("connection", f"sqlite:///{tmp_path / 'api.sqlite'}",
                      group="api_database")
    policy.reset()
    placement = services.placement
    services.placement = None
    built = fx.build_cloud(tmp_path, db_templates)
    try:
        yield built
    finally:
        fx.dispose(built)
        services.placement = placement
        CONF.clear_override("connection", group="api_database")
        CONF.clear_override("state_dir")
        policy.reset()
