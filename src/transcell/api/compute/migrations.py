"""/os-migrations: every cell's migration records, one per migration.

A cross-cell move keeps a copy of its migration in both cells. The list shows
each migration once: hidden and deleted rows are skipped, and of two copies
the one in the cell the instance is mapped to wins, since that cell holds the
server and keeps its migration up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import webob
from sqlalchemy import or_, select

from transcell import cell as cells
from transcell import policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.db import api_models as am
from transcell.db import cell_models as cm
from transcell.db.session import api_session, cell_session
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, json_response

#: Live migrations in these states can be acted on, so they carry links (2.23+).
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


@dataclass(frozen=True)
class Found:
    cell: cells.Cell
    row: cm.Migration


def _query(params: dict[str, str]):
    query = select(cm.Migration).where(cm.Migration.deleted == 0,
                                       cm.Migration.hidden.is_(False))
    for name in ("instance_uuid", "status", "migration_type", "source_compute"):
        if params.get(name):
            query = query.where(getattr(cm.Migration, name) == params[name])
    if params.get("host"):
        query = query.where(or_(cm.Migration.source_compute == params["host"],
                                cm.Migration.dest_compute == params["host"]))
    return query


def _mapped_cells(instance_uuids: set[str]) -> dict[str, int | None]:
    if not instance_uuids:
        return {}
    with api_session() as s:
        rows = s.execute(select(am.InstanceMapping.instance_uuid, am.InstanceMapping.cell_id)
                         .where(am.InstanceMapping.instance_uuid.in_(instance_uuids))).all()
    return dict(rows)


def list_migrations(params: dict[str, str]) -> list[Found]:
    """Visible migrations matching ``params`` from every cell, de-duplicated, newest first."""
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
    chosen.sort(key=lambda i: (i.row.created_at, i.row.id), reverse=True)
    return chosen


def _view(req: webob.Request, item: Found) -> dict[str, Any]:
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
    if api_version(req).matches("2.23"):
        body["migration_type"] = row.migration_type
        if row.migration_type == "live-migration" and row.status in LIVE_IN_PROGRESS:
            body["links"] = common.resource_links(
                req, f"servers/{row.instance_uuid}/migrations", row.id)
    return body


def index(req: webob.Request) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-migrations:index", {})
    params = {key: req.GET[key] for key in req.GET.keys()}
    return json_response({"migrations": [_view(req, m) for m in list_migrations(params)]})
