"""Alembic schema migrations, one script directory per kind of database.

``sync(url, schema)`` brings any database (SQLite, PostgreSQL, MariaDB) to the
newest revision of its schema; it is what ``transcell db sync`` runs for the
API database, cell0 and every cell, and for the network, volume and image services'
own databases (schemas ``network``, ``volume`` and ``image``).
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from transcell.db.session import get_engine

HERE = os.path.dirname(os.path.abspath(__file__))


def _config(schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "alembic", schema))
    return cfg


def sync(url: str, schema: str) -> None:
    cfg = _config(schema)
    engine = get_engine(url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def current(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head(schema: str) -> str | None:
    return ScriptDirectory.from_config(_config(schema)).get_current_head()
