"""Migrated databases for the DB-layer tests, one schema per database.

Each schema (api, cell, and any other directory under db/alembic) gets its own
database: the schemas share revision ids, so two of them in one database would
read each other's ``alembic_version``.
"""

from __future__ import annotations

import os

import dbfixtures
import pytest

from transcell.db import migration

SCRIPT_ROOT = os.path.join(migration.HERE, "alembic")


def migration_schemas() -> list[str]:
    """Every schema that has an alembic environment now, so a new one is tested as it lands."""
    return sorted(name for name in os.listdir(SCRIPT_ROOT)
                  if os.path.isfile(os.path.join(SCRIPT_ROOT, name, "env.py")))


@pytest.fixture(params=migration_schemas())
def schema(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def api_db(db_factory: dbfixtures.DatabaseFactory) -> str:
    url = db_factory.create()
    migration.sync(url, "api")
    return url


@pytest.fixture
def cell_db(db_factory: dbfixtures.DatabaseFactory) -> str:
    url = db_factory.create()
    migration.sync(url, "cell")
    return url
