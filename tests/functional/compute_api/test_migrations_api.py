"""Migrations from every cell, each listed once, with the 2.1 and 2.23 shapes."""

from __future__ import annotations

import datetime as dt

from compute_api_fixtures import DEMO

from transcell.db.types import utcnow

KEYS_21 = {"id", "status", "instance_uuid", "source_node", "source_compute", "dest_node",
           "dest_compute", "dest_host", "old_instance_type_id", "new_instance_type_id",
           "created_at", "updated_at"}


def _arrange(cloud):
    """A server moved cell1 -> cell2 (migration copied into both cells), a hidden
    leftover in cell1, a deleted record, and an older same-cell migration."""
    now = utcnow()
    moved = cloud.add_instance(cloud.cell2)
    cloud.add_instance(cloud.cell1, uuid=moved, hidden=True, mapped=False)
    shared = "7d3c3a52-8f39-4c0c-9d44-6a3bfa0f7d11"
    cloud.add_migration(cloud.cell1, moved, uuid=shared, status="post-migrating",
                        created_at=now, cross_cell_move=True)
    cloud.add_migration(cloud.cell2, moved, uuid=shared, status="finished",
                        created_at=now, cross_cell_move=True)
    cloud.add_migration(cloud.cell1, moved, status="error", hidden=True, created_at=now)
    gone = cloud.add_migration(cloud.cell1, moved, status="confirmed", created_at=now)
    with_deleted(cloud, gone.id)
    local = cloud.add_instance(cloud.cell1, host="cell1-host2")
    cloud.add_migration(cloud.cell1, local, status="confirmed", migration_type="migration",
                        source_compute="cell1-host1", dest_compute="cell1-host2",
                        old_instance_type_id=1, new_instance_type_id=1,
                        created_at=now - dt.timedelta(hours=1))
    return moved, local


def with_deleted(cloud, migration_id: int) -> None:
    from transcell.db import cell_models as cm
    from transcell.db.session import cell_session
    with cell_session(cloud.cell1) as s:
        row = s.get(cm.Migration, migration_id)
        row.deleted = row.id


def test_each_migration_once_newest_first_with_21_keys(cloud):
    moved, local = _arrange(cloud)
    resp = cloud.get("/os-migrations")
    assert resp.status_int == 200
    migrations = resp.json["migrations"]
    assert [m["instance_uuid"] for m in migrations] == [moved, local]
    assert all(set(m) == KEYS_21 for m in migrations)
    # the copy in the cell the server is mapped to (cell2) wins
    assert migrations[0]["status"] == "finished"
    assert isinstance(migrations[0]["id"], int)
    assert migrations[0]["old_instance_type_id"] == 1
    assert migrations[0]["created_at"].endswith("Z")


def test_223_adds_migration_type_only(cloud):
    moved, local = _arrange(cloud)
    migrations = cloud.get("/os-migrations", version="2.23").json["migrations"]
    assert all(set(m) == KEYS_21 | {"migration_type"} for m in migrations)
    assert [m["migration_type"] for m in migrations] == ["resize", "migration"]


def test_filters(cloud):
    moved, local = _arrange(cloud)

    def uuids(query: str) -> list[str]:
        return [m["instance_uuid"] for m in cloud.get(f"/os-migrations?{query}")
                .json["migrations"]]

    assert uuids(f"instance_uuid={local}") == [local]
    assert uuids("status=finished") == [moved]
    assert uuids("migration_type=migration") == [local]
    assert uuids("host=cell1-host2") == [local]
    assert uuids("host=cell2-host1") == [moved]
    assert uuids("source_compute=cell1-host1") == [moved, local]
    assert uuids("status=error") == []


def test_only_admins_list_migrations(cloud):
    denied = cloud.get("/os-migrations", token=DEMO)
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-migrations:index to be performed."
