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


# -- 2.59: uuids, paging by uuid, changes-since; 2.66 changes-before; 2.80 owners --------

def _timeline(cloud, count: int = 5):
    """``count`` migrations an hour apart, alternating cells, oldest first; their uuids
    newest first (the order the API lists them in)."""
    start = utcnow() - dt.timedelta(days=1)
    made = []
    for n in range(count):
        cell = cloud.cell1 if n % 2 else cloud.cell2
        server = cloud.add_instance(cell)
        when = start + dt.timedelta(hours=n)
        made.append(cloud.add_migration(cell, server, created_at=when, updated_at=when,
                                        user_id=f"user-{n}", project_id=f"project-{n % 2}"))
    return [m.uuid for m in reversed(made)]


def test_259_adds_uuid_and_keeps_live_migration_links(cloud):
    moved, local = _arrange(cloud)
    live = cloud.add_instance(cloud.cell1)
    cloud.add_migration(cloud.cell1, live, status="running", migration_type="live-migration",
                        created_at=utcnow() + dt.timedelta(minutes=1))
    migrations = cloud.get("/os-migrations", version="2.59").json["migrations"]
    assert [m["instance_uuid"] for m in migrations] == [live, moved, local]
    assert all(set(m) - {"links"} == KEYS_21 | {"migration_type", "uuid"}
               for m in migrations)
    assert migrations[1]["uuid"] == "7d3c3a52-8f39-4c0c-9d44-6a3bfa0f7d11"
    assert migrations[0]["links"][0]["href"].endswith(
        f"/v2.1/servers/{live}/migrations/{migrations[0]['id']}")
    assert "uuid" not in cloud.get("/os-migrations", version="2.58").json["migrations"][0]


def test_pages_by_uuid_with_next_links_until_a_short_page(cloud):
    expected = _timeline(cloud)
    first = cloud.get("/os-migrations?limit=2", version="2.59").json
    assert [m["uuid"] for m in first["migrations"]] == expected[:2]
    (link,) = first["migrations_links"]
    assert link["rel"] == "next"
    assert link["href"] == ("http://localhost/v2.1/os-migrations?limit=2&marker="
                            f"{expected[1]}")
    second = cloud.get(link["href"].removeprefix("http://localhost"), version="2.59").json
    assert [m["uuid"] for m in second["migrations"]] == expected[2:4]
    third = cloud.get(f"/os-migrations?limit=2&marker={expected[3]}", version="2.59").json
    assert [m["uuid"] for m in third["migrations"]] == expected[4:]
    assert "migrations_links" not in third
    everything = cloud.get("/os-migrations", version="2.59").json
    assert [m["uuid"] for m in everything["migrations"]] == expected
    assert "migrations_links" not in everything


def test_paging_across_cells_whose_ids_and_times_tie(cloud):
    """Both cells number their rows from 1: equal (created_at, id) pairs still page
    one migration at a time, each exactly once."""
    when = utcnow()
    for cell in (cloud.cell1, cloud.cell2):
        cloud.add_migration(cell, cloud.add_instance(cell), created_at=when)
    seen, marker = [], None
    for _ in range(4):  # bounded: a marker that fails to advance must fail, not hang
        query = "limit=1" + (f"&marker={marker}" if marker else "")
        page = cloud.get(f"/os-migrations?{query}", version="2.59").json
        seen += [m["uuid"] for m in page["migrations"]]
        if "migrations_links" not in page:
            break
        marker = seen[-1]
    assert len(seen) == 2 and len(set(seen)) == 2
    assert sorted(m["id"] for m in cloud.get("/os-migrations").json["migrations"]) == [1, 1]


def test_a_marker_outside_the_filter_still_pages_and_an_unknown_one_is_400(cloud):
    expected = _timeline(cloud)
    # expected[1] belongs to project-1; the project-0 list continues after it
    page = cloud.get(f"/os-migrations?project_id=project-0&marker={expected[1]}",
                     version="2.80").json["migrations"]
    assert [m["uuid"] for m in page] == [expected[2], expected[4]]
    missing = "00000000-0000-0000-0000-000000000000"
    bad = cloud.get(f"/os-migrations?marker={missing}", version="2.59")
    assert bad.status_int == 400
    assert bad.json == {"badRequest": {"code": 400,
                                       "message": f"Marker {missing} could not be found."}}


def test_query_is_closed_from_259(cloud):
    _timeline(cloud, 2)
    assert cloud.get("/os-migrations?colour=red", version="2.58").status_int == 200
    bad = cloud.get("/os-migrations?colour=red", version="2.59")
    assert bad.status_int == 400
    assert bad.json["badRequest"]["message"] == \
        "Additional properties are not allowed ('colour' was unexpected)"
    # each parameter arrives with the microversion that introduced it
    before = "changes-before=2999-01-01T00:00:00Z"
    assert cloud.get(f"/os-migrations?{before}", version="2.65").status_int == 400
    assert cloud.get(f"/os-migrations?{before}", version="2.66").status_int == 200
    assert cloud.get("/os-migrations?user_id=x", version="2.79").status_int == 400
    assert cloud.get("/os-migrations?user_id=x", version="2.80").status_int == 200
    for query in ("limit=abc", "limit=-1", "limit=1&limit=2", "changes-since=yesterday"):
        assert cloud.get(f"/os-migrations?{query}", version="2.59").status_int == 400, query
    assert cloud.get("/os-migrations?hidden=0", version="2.59").json["migrations"]
    assert cloud.get("/os-migrations?hidden=1", version="2.59").json["migrations"] == []


def test_changes_since_and_before_bound_updated_at_inclusively(cloud):
    expected = _timeline(cloud)
    rows = cloud.get("/os-migrations", version="2.66").json["migrations"]
    middle = rows[2]["updated_at"]
    since = cloud.get(f"/os-migrations?changes-since={middle}", version="2.59").json
    assert [m["uuid"] for m in since["migrations"]] == expected[:3]
    before = cloud.get(f"/os-migrations?changes-before={middle}", version="2.66").json
    assert [m["uuid"] for m in before["migrations"]] == expected[2:]
    both = cloud.get(f"/os-migrations?changes-since={middle}&changes-before={middle}",
                     version="2.66").json
    assert [m["uuid"] for m in both["migrations"]] == [expected[2]]
    # an offset is honoured: the same instant written in another zone
    shifted = dt.datetime.fromisoformat(middle.replace("Z", "+00:00")).astimezone(
        dt.timezone(dt.timedelta(hours=2))).isoformat().replace("+", "%2B")
    assert cloud.get(f"/os-migrations?changes-since={shifted}", version="2.59").json == since
    # the older migrations were never updated after ``middle``: changes-since ignores
    # them below 2.59, as Nova does
    assert len(cloud.get(f"/os-migrations?changes-since={middle}").json["migrations"]) == 5
    inverted = cloud.get(f"/os-migrations?changes-since={rows[0]['updated_at']}"
                         f"&changes-before={rows[4]['updated_at']}", version="2.66")
    assert inverted.status_int == 400
    assert inverted.json["badRequest"]["message"] == \
        "The value of changes-since must be less than or equal to changes-before."


def test_280_shows_and_filters_owners(cloud):
    expected = _timeline(cloud)
    old = cloud.get("/os-migrations", version="2.79").json["migrations"]
    assert all("user_id" not in m and "project_id" not in m for m in old)
    new = cloud.get("/os-migrations", version="2.80").json["migrations"]
    assert [(m["user_id"], m["project_id"]) for m in new] == [
        ("user-4", "project-0"), ("user-3", "project-1"), ("user-2", "project-0"),
        ("user-1", "project-1"), ("user-0", "project-0")]
    by_project = cloud.get("/os-migrations?project_id=project-1", version="2.80").json
    assert [m["uuid"] for m in by_project["migrations"]] == [expected[1], expected[3]]
    by_user = cloud.get("/os-migrations?user_id=user-2&project_id=project-0",
                        version="2.80").json
    assert [m["uuid"] for m in by_user["migrations"]] == [expected[2]]
