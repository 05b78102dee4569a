"""/os-transcell-drains: move every server off a cell, driven by an operator's tooling.

An admin extension (Nova has no such resource), in the style of the move
plans. ``POST`` records the drain (its settings and every server it will
move) before answering 202, so a conductor restarted at any moment continues
it; the conductor's drain runner does the moving. ``GET`` shows each
server's state, bytes and downtime, with totals and an ETA; the ``action``
resource pauses (no new moves start; those running finish) and resumes.
``transcell drain`` is its command line.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute import common
from transcell.db.types import isotime
from transcell.drain import model, runner
from transcell.drain.model import Drain
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

RULE = "os_compute_api:os-transcell-drains"

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}

CREATE_SCHEMA = {
    "type": "object",
    "properties": {
        "drain": {
            "type": "object",
            "properties": {
                "cell": _NAME,
                "to": _NAME,
                "concurrency": _LIMIT,
                "per_source_host": _LIMIT,
                "per_target_host": _LIMIT,
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                "bandwidth_mib_s": {"type": "number", "exclusiveMinimum": True,
                                    "minimum": 0, "maximum": 1048576},
            },
            "required": ["cell"],
            "additionalProperties": False,
        },
    },
    "required": ["drain"],
    "additionalProperties": False,
}

ACTION_SCHEMAS = {
    name: {"type": "object", "properties": {name: {"type": "null"}}, "required": [name],
           "additionalProperties": False}
    for name in ("pause", "resume")
}


def _cell(name: str, missing: type[exception.TranscellError]) -> cells.Cell:
    try:
        return cells.get_cell(name)
    except exception.NotFound:
        raise missing(f"Cell {name} could not be found.") from None


def create(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE, {"project_id": ctx.project_id})
    body = read_json(req)
    common.validate(CREATE_SCHEMA, body)
    wanted = body["drain"]
    source = _cell(wanted["cell"], exception.NotFound)
    if source.uuid == cells.cell0().uuid:
        raise exception.Invalid("cell0 holds no servers that run; it cannot be drained.")
    target = None
    if "to" in wanted:
        target = _cell(wanted["to"], exception.Invalid)
        if target.uuid in (source.uuid, cells.cell0().uuid):
            raise exception.Invalid(f"A drain of {source.name} cannot move servers to "
                                    f"{target.name}.")
        if not cells.hosts_in_cell(target):
            raise exception.Invalid(f"Cell {target.name} has no compute hosts.")
    settings = {key: wanted.get(key, default) for key, default in model.DEFAULTS.items()}
    servers = _servers_of(ctx, source)
    drain = Drain.create(source.uuid, target.uuid if target else None, settings, servers,
                         ctx.to_dict())
    return json_response({"drain": view(drain)}, status=202)


def _servers_of(ctx, cell: cells.Cell) -> dict[str, dict[str, Any]]:
    """Every server of the cell now, in the order they were mapped (the waves' order).

    The cell's rows are read in one query per 500 servers; only a server whose row
    is not where its mapping says (a move flipping it this instant) is read on its
    own, following the mapping as any read of one server does. Reading each server
    through ``get`` took two queries per server before the 202.
    """
    from sqlalchemy import select

    from transcell.compute.api import API
    from transcell.db import cell_models as cm
    from transcell.db.session import cell_session
    mapped = [m["uuid"] for m in cells.mappings_in_cell(cell)]
    rows: dict[str, dict[str, Any]] = {}
    columns = (cm.Instance.uuid, cm.Instance.display_name, cm.Instance.host,
               cm.Instance.root_gb)
    for start in range(0, len(mapped), 500):
        with cell_session(cell) as s:
            for row in s.execute(select(*columns).where(
                    cm.Instance.uuid.in_(mapped[start:start + 500]),
                    cm.Instance.deleted == 0, cm.Instance.hidden.is_(False))):
                rows[row.uuid] = dict(row._mapping)
    compute = API()
    found: dict[str, dict[str, Any]] = {}
    for uuid in mapped:
        server = rows.get(uuid)
        if server is None:
            try:
                _, server = compute.get(ctx, uuid)
            except exception.InstanceNotFound:
                continue
        found[server["uuid"]] = model.new_server_entry(server)
    return found


def index(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE, {"project_id": ctx.project_id})
    return json_response({"drains": [view(d, servers=False) for d in Drain.listed()]})


def show(req: webob.Request, drain_id: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE, {"project_id": ctx.project_id})
    return json_response({"drain": view(Drain.load(drain_id))})


def action(req: webob.Request, drain_id: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, RULE, {"project_id": ctx.project_id})
    body = read_json(req)
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ACTION_SCHEMAS:
        raise exception.Invalid("The action body must be {\"pause\": null} or "
                                "{\"resume\": null}.")
    name = next(iter(body))
    common.validate(ACTION_SCHEMAS[name], body)
    Drain.set_paused(drain_id, name == "pause")
    return empty_response(202)


def view(drain: Drain, servers: bool = True) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": drain.uuid, "cell": _name(drain.cell_uuid), "to": _name(drain.to_cell_uuid),
        "status": drain.status, **drain.settings,
        "created_at": isotime(drain.created_at), "updated_at": isotime(drain.updated_at),
        "finished_at": isotime(drain.finished_at), "progress": runner.summary(drain),
    }
    if servers:
        shown["servers"] = [
            {"id": sid, **{key: entry.get(key) for key in (
                "name", "state", "attempts", "source_host", "dest_host", "target_cell",
                "migration", "bytes", "disk_size", "downtime_seconds", "error", "errors")}}
            for sid, entry in drain.servers.items()]
    return shown


def _name(cell_uuid: str | None) -> str | None:
    if cell_uuid is None:
        return None
    try:
        return cells.get_cell(cell_uuid).name
    except exception.NotFound:
        return cell_uuid
