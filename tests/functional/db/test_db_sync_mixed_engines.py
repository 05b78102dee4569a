"""``transcell db sync`` from a config file on a mixed layout: the API DB, cell0, cell2,
the network DB and Placement's on PostgreSQL, cell1, the volume DB and the image DB on
MariaDB, each with its own user."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import provisioned
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from transcell.cell import CELL0_UUID
from transcell.db import api_models as am
from transcell.db import migration
from transcell.db.session import session_for
from transcell.deploy.databases import MARIADB, POSTGRESQL
from transcell.placement import schema as placement_schema

pytestmark = pytest.mark.backends

LAYOUT = {"api": POSTGRESQL, "cell0": POSTGRESQL, "cell1": MARIADB, "cell2": POSTGRESQL,
          "network": POSTGRESQL, "volume": MARIADB, "image": MARIADB, "placement": POSTGRESQL}


@pytest.fixture
def layout() -> Iterator[dict[str, provisioned.Provisioned]]:
    maker = provisioned.Provisioner()
    try:
        yield {role: maker.create(engine, role) for role, engine in LAYOUT.items()}
    finally:
        maker.drop_all()


def _register_cells(dbs: dict[str, provisioned.Provisioned]) -> dict[str, str]:
    """The cell mappings as the launcher writes them: each cell's URL with its own user."""
    api = dbs["api"].url
    migration.sync(api, "api")
    uuids = {"cell0": CELL0_UUID, "cell1": str(uuid.uuid4()), "cell2": str(uuid.uuid4())}
    with session_for(api) as s:
        for name, cell_uuid in uuids.items():
            s.add(am.CellMapping(uuid=cell_uuid, name=name,
                                 database_connection=dbs[name].url,
                                 transport_url=f"rabbit://{name}:x@127.0.0.1:5672/{name}"))
    return uuids


def _write_config(path: Path, state_dir: Path, dbs: dict[str, provisioned.Provisioned]) -> None:
    path.write_text(
        f"[DEFAULT]\nstate_dir = {state_dir}\n"
        f"[api_database]\nconnection = {dbs['api'].url}\n"
        f"[network]\ndatabase_connection = {dbs['network'].url}\n"
        f"[volume]\ndatabase_connection = {dbs['volume'].url}\n"
        f"[image]\ndatabase_connection = {dbs['image'].url}\n"
        # an external Placement whose database this deployment still migrates
        f"[placement]\nurl = http://127.0.0.1:8778\n"
        f"database_connection = {dbs['placement'].url}\n")


def _db_sync(config: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "transcell.cli.main", "db", "sync",
                           "--config-file", str(config)],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, f"db sync failed:\n{proc.stdout}\n{proc.stderr}"
    assert "newest schema" in proc.stdout


def _snapshot(url: str) -> dict[str, list[str]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        inspector = sa.inspect(engine)
        return {t: sorted(c["name"] for c in inspector.get_columns(t))
                for t in inspector.get_table_names()}
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


def test_db_sync_migrates_every_database_of_a_mixed_layout_twice(
        layout: dict[str, provisioned.Provisioned], tmp_path: Path) -> None:
    uuids = _register_cells(layout)
    state_dir = tmp_path / "state"
    config = tmp_path / "transcell.conf"
    _write_config(config, state_dir, layout)
    # only the API schema exists before the sync
    assert _snapshot(layout["cell1"].url) == {}

    _db_sync(config)

    expected = {"api": migration.head("api"), "cell0": migration.head("cell"),
                "cell1": migration.head("cell"), "cell2": migration.head("cell"),
                "network": migration.head("network"), "volume": migration.head("volume"),
                "image": migration.head("image"),
                "placement": placement_schema.head()}
    assert {role: _revision(db.url) for role, db in layout.items()} == expected
    assert "instances" in _snapshot(layout["cell1"].url)  # on MariaDB
    assert "resource_providers" in _snapshot(layout["placement"].url)
    first = {role: _snapshot(db.url) for role, db in layout.items()}
    # every database came from the config and the mappings: nothing fell back to SQLite,
    # and no cell was added beside the registered ones
    assert sorted(p.name for p in state_dir.rglob("*.sqlite*")) == []
    with session_for(layout["api"].url) as s:
        mapped = {c.name: (c.uuid, c.database_connection)
                  for c in s.scalars(sa.select(am.CellMapping))}
    assert mapped == {name: (uuids[name], layout[name].url) for name in uuids}

    _db_sync(config)

    assert {role: _snapshot(db.url) for role, db in layout.items()} == first
    assert {role: _revision(db.url) for role, db in layout.items()} == expected
