"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from transcell.conf import CONF
from transcell.db import migration
from transcell.db.session import dispose_all


@pytest.fixture
def api_db(tmp_path):
    """An API database of the current schema in a SQLite file, as the configuration's."""
    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    migration.sync(url, "api")
    CONF.set_override("connection", url, group="api_database")
    CONF.set_override("state_dir", str(tmp_path))
    yield tmp_path
    CONF.clear_override("connection", group="api_database")
    CONF.clear_override("state_dir")
    dispose_all()
