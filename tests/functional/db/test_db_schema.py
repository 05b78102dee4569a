"""The migrations build exactly the schema the models describe, on every engine.

Runs for each schema directory under db/alembic (api, cell, and any added later)
on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from transcell.db import migration
from transcell.db.api_models import APIBase
from transcell.db.cell_models import CellBase
from transcell.db.session import get_engine

SCRIPT_ROOT = os.path.join(migration.HERE, "alembic")
MODELS = {"api": APIBase.metadata, "cell": CellBase.metadata}


@dataclass
class EnvComparison:
    """What a schema's alembic env targets, and how the database differs from it."""

    metadata: sa.MetaData
    diffs: list


def compare_with_env(url: str, schema: str) -> EnvComparison:
    """Run the schema's own env.py the way ``alembic check`` does, so the comparison
    uses the target metadata and options the migrations themselves are written
    against, then compare instead of migrating."""
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(SCRIPT_ROOT, schema))
    script = ScriptDirectory.from_config(cfg)
    found: list[EnvComparison] = []

    def compare(_rev, context: MigrationContext) -> list:
        metadata = context.opts["target_metadata"]
        found.append(EnvComparison(metadata, compare_metadata(context, metadata)))
        return []

    with get_engine(url).connect() as connection:
        cfg.attributes["connection"] = connection
        with EnvironmentContext(cfg, script, fn=compare):
            script.run_env()
    assert len(found) == 1, f"the {schema} env ran its migration function {len(found)} times"
    return found[0]


def schema_snapshot(url: str) -> dict[str, tuple]:
    """Tables with their columns, indexes and unique constraints, as the engine reports them."""
    inspector = sa.inspect(get_engine(url))
    return {
        table: (
            sorted(c["name"] for c in inspector.get_columns(table)),
            sorted(str(i["name"]) for i in inspector.get_indexes(table)),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in inspector.get_table_names()
    }


def missing_columns(url: str, metadata: sa.MetaData) -> list[str]:
    inspector = sa.inspect(get_engine(url))
    present = set(inspector.get_table_names())
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in present:
            missing.append(f"{table.name} (whole table)")
            continue
        in_db = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{col.name}" for col in table.columns if col.name not in in_db]
    return missing


def version_rows(url: str) -> list[str]:
    with get_engine(url).connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_sync_creates_every_table_and_is_idempotent(db_url: str, schema: str) -> None:
    migration.sync(db_url, schema)
    first = schema_snapshot(db_url)
    migration.sync(db_url, schema)

    assert schema_snapshot(db_url) == first
    metadata = compare_with_env(db_url, schema).metadata
    expected = set(metadata.tables) | {"alembic_version"}
    assert set(first) == expected
    head = migration.head(schema)
    assert head is not None
    assert migration.current(db_url) == head
    assert version_rows(db_url) == [head]


def test_migrations_match_models(db_url: str, schema: str) -> None:
    migration.sync(db_url, schema)

    result = compare_with_env(db_url, schema)

    if schema in MODELS:
        assert result.metadata is MODELS[schema], f"the {schema} env targets other models"
    # Nothing is filtered: the comparison (types included) is clean on SQLite,
    # PostgreSQL and MariaDB alike, so every reported difference is a real one.
    listing = "\n".join(map(repr, result.diffs))
    assert result.diffs == [], f"migrations and models disagree; add a migration:\n{listing}"


def test_every_model_column_exists_after_sync(db_url: str, schema: str) -> None:
    migration.sync(db_url, schema)
    metadata = compare_with_env(db_url, schema).metadata

    assert missing_columns(db_url, metadata) == []


def test_missing_column_is_reported(db_url: str) -> None:
    """The column check itself must be able to fail: drop a column behind its back."""
    migration.sync(db_url, "cell")
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.text("ALTER TABLE instance_faults DROP COLUMN host"))

    assert missing_columns(db_url, CellBase.metadata) == ["instance_faults.host"]
    assert any(diff[0] == "add_column" for diff in compare_with_env(db_url, "cell").diffs)
