"""Placement's database schema, migrated with openstack-placement's own migrations.

``placement-manage db sync`` and Placement's sync on startup both run the
package's alembic environment, which takes its engine from Placement's
process-global database layer; configuring that layer here would pin the whole
process to one Placement database (see ``embedded``). So ``sync`` runs the very
same migration scripts on a connection of its own, leaving the global layer
untouched: ``transcell db sync`` can migrate Placement's database in the same
process that later serves Placement, or serves none at all.
"""

from __future__ import annotations

import os

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def _config() -> Config:
    from placement.db.sqlalchemy import migration as placement_migration

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(
        os.path.dirname(os.path.abspath(placement_migration.__file__)), "alembic"))
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _engine(url: str):
    from transcell.db.session import make_sqlite_file_private

    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        make_sqlite_file_private(url)
    # one short-lived connection: nothing of the migration stays open in the server
    return create_engine(url, poolclass=NullPool)


def sync(url: str) -> None:
    """Bring Placement's database at ``url`` to the newest schema the package knows."""
    cfg = _config()
    script = ScriptDirectory.from_config(cfg)

    def upgrade(revision, _context):
        return script._upgrade_revs("head", revision)

    engine = _engine(url)
    try:
        with engine.begin() as connection:
            with EnvironmentContext(cfg, script, fn=upgrade,
                                    destination_rev="head") as env:
                env.configure(connection=connection)
                with env.begin_transaction():
                    env.run_migrations()
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    return _script().get_current_head()
