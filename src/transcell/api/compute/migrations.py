"""/os-migrations: every cell's migration records, one per migration.

A cross-cell move keeps a copy of its migration in both cells. The list shows
each migration once: hidden and deleted rows are skipped, and of two copies
the one in the cell the instance is mapped to wins, since that cell holds the
server and keeps its migration up to date.

From 2.59 the list pages by migration uuid (cell-local integer ids repeat
across cells, uuids do not) and its query parameters are closed: a typo is a
400 rather than a silently unfiltered list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import webob
from sqlalchemy import or_, select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, json_response

#: Live migrations in these states can be acted on, so they carry links (2.23+).
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")

#: Exact-match filters, by the microversion that introduced them.
_FILTERS = ("instance_uuid", "status", "migration_type", "source_compute")
_FILTERS_280 = ("user_id", "project_id")

#: Query parameters Nova's schema accepts from 2.59 (and what 2.66 and 2.80 add).
_QUERY_259 = ("hidden", "host", "instance_uuid", "source_compute", "status",
              "migration_type", "limit", "marker", "changes-since")
_QUERY_266 = _QUERY_259 + ("changes-before",)
_QUERY_280 = _QUERY_266 + _FILTERS_280


@dataclass(frozen=True)
class Found:
    cell: cells.Cell
    row: cm.Migration


def sort_key(item: Found) -> tuple:
    """Newest first by (created_at, id) as Nova sorts; the uuid breaks ties between
    cells, whose integer ids repeat, so a marker always names one position."""
    return (item.row.created_at, item.row.id, item.row.uuid)


def _query(params: dict[str, Any]):
    query = select(cm.Migration).where(cm.Migration.deleted == 0,
                                       cm.Migration.hidden.is_(False))
    for name in _FILTERS + _FILTERS_280:
        if params.get(name):
            query = query.where(getattr(cm.Migration, name) == params[name])
    if params.get("host"):
        query = query.where(or_(cm.Migration.source_compute == params["host"],
                                cm.Migration.dest_compute == params["host"]))
    if params.get("changes-since") is not None:
        query = query.where(cm.Migration.updated_at >= params["changes-since"])
    if params.get("changes-before") is not None:
        query = query.where(cm.Migration.updated_at <= params["changes-before"])
    return query


def _mapped_cells(instance_uuids: set[str]) -> dict[str, int | None]:
    if not instance_uuids:
        return {}
    with api_session() as s:
        rows = s.execute(select(am.InstanceMapping.instance_uuid, am.InstanceMapping.cell_id)
                         .where(am.InstanceMapping.instance_uuid.in_(instance_uuids))).all()
    return dict(rows)


def list_migrations(params: dict[str, Any]) -> list[Found]:
    """Visible migrations matching ``params`` from every cell, de-duplicated, newest first.

    ``params`` holds exact-match filters by column name, ``host`` (either end of
    the move) and ``changes-since`` / ``changes-before`` as datetimes.
    """
    query = _query(params)

    def read(cell: cells.Cell) -> list[cm.Migration]:
        with cell_session(cell) as s:
            return list(s.scalars(query))

    found = [Found(cell, row) for cell, rows in
             cells.scatter(cells.list_cells(include_cell0=False), read).items() for row in rows]
    by_uuid: dict[str, list[Found]] = {}
    for item in found:
        by_uuid.setdefault(item.row.uuid, []).append(item)
    copied = {items[0].row.instance_uuid for items in by_uuid.values() if len(items) > 1}
    home = _mapped_cells(copied)
    chosen = []
    for items in by_uuid.values():
        preferred = [i for i in items if i.cell.id == home.get(i.row.instance_uuid)]
        chosen.append((preferred or items)[0])
    chosen.sort(key=sort_key, reverse=True)
    return chosen


def _after_marker(found: list[Found], marker: str) -> list[Found]:
    """Migrations after the one whose uuid is ``marker``, in list order.

    The marker is looked up without the request's filters, as Nova looks it up,
    so a client paging a filtered list may pass any uuid it was shown.
    """
    anchor = next((i for i in list_migrations({}) if i.row.uuid == marker), None)
    if anchor is None:
        raise exception.Invalid(f"Marker {marker} could not be found.")
    mark = sort_key(anchor)
    return [i for i in found if sort_key(i) < mark]


def _view(req: webob.Request, item: Found) -> dict[str, Any]:
    version = api_version(req)
    row = item.row
    body: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "instance_uuid": row.instance_uuid,
        "source_node": row.source_node,
        "source_compute": row.source_compute,
        "dest_node": row.dest_node,
        "dest_compute": row.dest_compute,
        "dest_host": row.dest_host,
        "old_instance_type_id": row.old_instance_type_id,
        "new_instance_type_id": row.new_instance_type_id,
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
    }
    if version.matches("2.23"):
        body["migration_type"] = row.migration_type
        if row.migration_type == "live-migration" and row.status in LIVE_IN_PROGRESS:
            body["links"] = common.resource_links(
                req, f"servers/{row.instance_uuid}/migrations", row.id)
    if version.matches("2.59"):
        body["uuid"] = row.uuid
    if version.matches("2.80"):
        body["user_id"] = row.user_id
        body["project_id"] = row.project_id
    return body


def _legacy_index(req: webob.Request) -> webob.Response:
    """Below 2.59 unknown parameters are ignored and nothing pages."""
    params = {key: req.GET[key] for key in req.GET.keys()
              if key in _FILTERS or key == "host"}
    return json_response({"migrations": [_view(req, m) for m in list_migrations(params)]})


def index(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-migrations:index", {})
    version = api_version(req)
    if not version.matches("2.59"):
        return _legacy_index(req)
    allowed = (_QUERY_280 if version.matches("2.80") else
               _QUERY_266 if version.matches("2.66") else _QUERY_259)
    common.reject_unknown_query(req, allowed)
    filters = _FILTERS + ("host",) + (_FILTERS_280 if version.matches("2.80") else ())
    params: dict[str, Any] = {key: common.single_query(req, key) for key in filters}
    params["changes-since"], params["changes-before"] = common.changes_window(
        req, with_before=version.matches("2.66"))
    common.single_query(req, "limit")
    common.single_query(req, "marker")
    limit, marker = common.limit_and_marker(req)
    # Hidden copies are never shown, so asking for hidden ones finds none.
    hidden = common.single_query(req, "hidden")
    found = [] if hidden is not None and common.is_true(hidden) else list_migrations(params)
    if marker is not None:
        found = _after_marker(found, marker)
    items = [_view(req, m) for m in found[:limit]]
    body: dict[str, Any] = {"migrations": items}
    links = common.collection_links(req, items, "os-migrations", "uuid")
    if links:
        body["migrations_links"] = links
    return json_response(body)
