"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import dbfixtures
import pytest


@pytest.fixture(scope="session", params=dbfixtures.backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """A database engine name: sqlite, postgresql or mariadb."""
    dbfixtures.require(request.param)
    return request.param


@pytest.fixture
def db_factory(backend: str, tmp_path) -> Iterator[dbfixtures.DatabaseFactory]:
    """Makes as many empty databases on ``backend`` as a test needs; drops them after."""
    factory = dbfixtures.DatabaseFactory(backend, tmp_path)
    yield factory
    factory.drop_all()


@pytest.fixture
def db_url(db_factory: dbfixtures.DatabaseFactory) -> str:
    """URL of one fresh, empty database on ``backend``."""
    return db_factory.create()
