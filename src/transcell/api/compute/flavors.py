"""/flavors: list, show, create, describe and delete flavors (API database).

Flavors are global: they live in the API database and every cell uses them.
A server keeps a full copy of its flavor (``flavor_to_dict``), so deleting a
flavor never changes a running server, nor a resize revert.

Later microversions only add to the flavor body: ``description`` (2.55, the
one field an update may change), ``extra_specs`` for whom policy lets list
them (2.61), and ``swap`` as the integer it is rather than ``""`` (2.75).
"""

from __future__ import annotations

import copy
import uuid as uuidlib
from typing import Any

import webob
from sqlalchemy import exists, or_, select, true

from transcell import exception, policy
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.compute.flavor_defaults import ensure_default_flavors as ensure_default_flavors
from transcell.context import RequestContext
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import isotime
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

MAX_INT = 0x7FFFFFFF
SQL_SP_FLOAT_MAX = 3.40282e38

_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1,
             "maximum": MAX_INT}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0,
                 "maximum": MAX_INT}

#: 2.55: free text up to the TEXT column's 64 KiB, printable characters only.
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535,
               "format": "printable"}

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {
                "name": common.NAME,
                "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
                       "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
                "ram": _POSITIVE,
                "vcpus": _POSITIVE,
                "disk": _NON_NEGATIVE,
                "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
                "swap": _NON_NEGATIVE,
                "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                "minimum": 0, "exclusiveMinimum": True,
                                "maximum": SQL_SP_FLOAT_MAX},
                "os-flavor-access:is_public": common.BOOLEAN,
            },
            "required": ["name", "ram", "vcpus", "disk"],
            "additionalProperties": False,
        },
    },
    "required": ["flavor"],
    "additionalProperties": False,
}

CREATE_SCHEMA_255: dict[str, Any] = copy.deepcopy(CREATE_SCHEMA)
CREATE_SCHEMA_255["properties"]["flavor"]["properties"]["description"] = DESCRIPTION

UPDATE_SCHEMA_255: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {"description": DESCRIPTION},
            "required": ["description"],
            "additionalProperties": False,
        },
    },
    "required": ["flavor"],
    "additionalProperties": False,
}

DESCRIPTION_VERSION = "2.55"
EXTRA_SPECS_VERSION = "2.61"
INTEGER_SWAP_VERSION = "2.75"

#: Columns a list may be sorted by (Nova accepts any flavor column).
SORT_KEYS = {"flavorid": am.Flavor.flavorid, "name": am.Flavor.name,
             "memory_mb": am.Flavor.memory_mb, "vcpus": am.Flavor.vcpus,
             "root_gb": am.Flavor.root_gb, "ephemeral_gb": am.Flavor.ephemeral_gb,
             "swap": am.Flavor.swap, "rxtx_factor": am.Flavor.rxtx_factor,
             "is_public": am.Flavor.is_public, "disabled": am.Flavor.disabled,
             "id": am.Flavor.id, "created_at": am.Flavor.created_at,
             "updated_at": am.Flavor.updated_at, "description": am.Flavor.description}


# -- the copy a server keeps ---------------------------------------------------

def flavor_to_dict(row: am.Flavor) -> dict[str, Any]:
    """Every column of the flavor plus its extra specs, JSON-serialisable."""
    return {"id": row.id, "flavorid": row.flavorid, "name": row.name,
            "memory_mb": row.memory_mb, "vcpus": row.vcpus, "root_gb": row.root_gb,
            "ephemeral_gb": row.ephemeral_gb, "swap": row.swap,
            "rxtx_factor": row.rxtx_factor, "is_public": row.is_public,
            "disabled": row.disabled, "description": row.description,
            "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at),
            "extra_specs": {spec.key: spec.value for spec in row.extra_specs}}


def _visible_to(ctx: RequestContext):
    """Non-admins see public flavors and private ones shared with their project."""
    if ctx.is_admin:
        return true()
    return or_(am.Flavor.is_public.is_(True), _shared_with(ctx.project_id))


def _shared_with(project_id: str | None):
    return exists().where(am.FlavorProject.flavor_id == am.Flavor.id,
                          am.FlavorProject.project_id == project_id)


def get_flavor(ctx: RequestContext, flavorid: str) -> am.Flavor:
    """The flavor with this flavor id as ``ctx`` may see it (detached); 404 otherwise."""
    with api_session() as s:
        row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == str(flavorid),
                                               _visible_to(ctx)))
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavorid)
        return row


def find_flavor(ctx: RequestContext, flavorid: str) -> dict[str, Any]:
    """``flavor_to_dict`` of a flavor ``ctx`` may use; 404 FlavorNotFound otherwise."""
    return flavor_to_dict(get_flavor(ctx, flavorid))


# -- views ---------------------------------------------------------------------

def _brief(req: webob.Request, row: am.Flavor) -> dict[str, Any]:
    body = {"id": row.flavorid, "name": row.name,
            "links": common.resource_links(req, "flavors", row.flavorid)}
    if api_version(req).matches(DESCRIPTION_VERSION):
        body["description"] = row.description
    return body


def _shows_extra_specs(req: webob.Request) -> bool:
    """From 2.61 a full flavor carries its extra specs, if policy lets the caller list them."""
    return api_version(req).matches(EXTRA_SPECS_VERSION) and policy.check(
        context_of(req), "os_compute_api:os-flavor-extra-specs:index")


def _full(req: webob.Request, row: am.Flavor, extra_specs: bool | None = None
          ) -> dict[str, Any]:
    """The detailed body; ``extra_specs`` may be decided once for a whole list."""
    version = api_version(req)
    body: dict[str, Any] = {
        "id": row.flavorid,
        "name": row.name,
        "ram": row.memory_mb,
        "disk": row.root_gb,
        # Below 2.75 Nova shows no swap as "".
        "swap": row.swap if version.matches(INTEGER_SWAP_VERSION) else row.swap or "",
        "OS-FLV-EXT-DATA:ephemeral": row.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": row.disabled,
        "vcpus": row.vcpus,
        "os-flavor-access:is_public": row.is_public,
        "rxtx_factor": row.rxtx_factor,
        "links": common.resource_links(req, "flavors", row.flavorid),
    }
    if version.matches(DESCRIPTION_VERSION):
        body["description"] = row.description
    if _shows_extra_specs(req) if extra_specs is None else extra_specs:
        body["extra_specs"] = {spec.key: spec.value for spec in row.extra_specs}
    return body


# -- listing ---------------------------------------------------------------------

def _is_public_filter(ctx: RequestContext, req: webob.Request) -> bool | None:
    """True = public (plus shared), False = private only, None = all (admins only)."""
    if not ctx.is_admin:
        return True
    value = req.GET.get("is_public")
    if value is None:
        return True
    if value.strip().lower() == "none":
        return None
    try:
        return common.parse_bool(value)
    except ValueError:
        raise exception.Invalid(f"Invalid is_public filter [{value}]") from None


def _int_filter(req: webob.Request, name: str) -> int | None:
    if name not in req.GET:
        return None
    try:
        return int(req.GET[name])
    except ValueError:
        raise exception.Invalid(f"Invalid {name} filter [{req.GET[name]}]") from None


def _list(req: webob.Request) -> list[am.Flavor]:
    ctx = context_of(req)
    sort_key = req.GET.get("sort_key") or "flavorid"
    sort_dir = req.GET.get("sort_dir") or "asc"
    if sort_key not in SORT_KEYS:
        raise exception.Invalid(f"Sort key supplied is invalid: {sort_key}")
    if sort_dir not in ("asc", "desc"):
        raise exception.Invalid("Unknown sort direction, must be one of: asc, desc")
    limit, marker = common.limit_and_marker(req)
    is_public = _is_public_filter(ctx, req)
    min_ram = _int_filter(req, "minRam")
    min_disk = _int_filter(req, "minDisk")

    query = select(am.Flavor)
    if is_public is True:
        query = query.where(or_(am.Flavor.is_public.is_(True), _shared_with(ctx.project_id)))
    elif is_public is False:
        query = query.where(am.Flavor.is_public.is_(False))
    if not ctx.is_admin:
        query = query.where(am.Flavor.disabled.is_(False))
    if min_ram is not None:
        query = query.where(am.Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(am.Flavor.root_gb >= min_disk)
    column = SORT_KEYS[sort_key]
    order = [column.desc(), am.Flavor.id.desc()] if sort_dir == "desc" else [column, am.Flavor.id]
    with api_session() as s:
        rows = list(s.scalars(query.order_by(*order)))
        if marker is not None:
            anchor = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == marker,
                                                      _visible_to(ctx)))
            if anchor is None:
                raise exception.Invalid(f"marker [{marker}] not found")
            rows = _after(rows, anchor, sort_key, sort_dir)
    return rows[:limit]


def _after(rows: list[am.Flavor], anchor: am.Flavor, sort_key: str, sort_dir: str
           ) -> list[am.Flavor]:
    """Rows strictly after ``anchor`` in (sort_key, id) order, even if it was filtered out."""
    def key(row: am.Flavor) -> tuple:
        value = getattr(row, sort_key)
        return (value is not None, value if value is not None else 0, row.id)

    mark = key(anchor)
    if sort_dir == "desc":
        return [r for r in rows if key(r) < mark]
    return [r for r in rows if key(r) > mark]


def _listing(req: webob.Request, view) -> webob.Response:
    rows = _list(req)
    flavors = [view(req, row) for row in rows]
    body: dict[str, Any] = {"flavors": flavors}
    links = common.collection_links(req, flavors, "flavors")
    if links:
        body["flavors_links"] = links
    return json_response(body)


def index(req: webob.Request) -> webob.Response:
    return _listing(req, _brief)


def detail(req: webob.Request) -> webob.Response:
    extra_specs = _shows_extra_specs(req)
    return _listing(req, lambda r, row: _full(r, row, extra_specs))


def show(req: webob.Request, flavor_id: str) -> webob.Response:
    row = get_flavor(context_of(req), flavor_id)
    return json_response({"flavor": _full(req, row)})


# -- changes -----------------------------------------------------------------------

def _bounded_int(value: Any, name: str, minimum: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise exception.Invalid(f"Invalid input received: {name} must be an integer") from None
    if number < minimum:
        raise exception.Invalid(f"Invalid input received: {name} must be >= {minimum}")
    if number > MAX_INT:
        raise exception.Invalid(f"Invalid input received: {name} must be <= {MAX_INT}")
    return number


def _new_flavor(spec: dict[str, Any], description: str | None) -> am.Flavor:
    name = spec["name"]
    flavorid = spec.get("id")
    flavorid = str(uuidlib.uuid4()) if flavorid in (None, "") else str(flavorid)
    try:
        rxtx_factor = float(spec.get("rxtx_factor", 1.0))
        if not 0 < rxtx_factor <= SQL_SP_FLOAT_MAX:
            raise ValueError(rxtx_factor)
    except ValueError:
        raise exception.Invalid("Invalid input received: 'rxtx_factor' argument must be a "
                                f"float between 0 and {SQL_SP_FLOAT_MAX:g}") from None
    try:
        is_public = common.parse_bool(spec.get("os-flavor-access:is_public", True))
    except ValueError:
        raise exception.Invalid("Invalid input received: is_public must be a boolean") from None
    return am.Flavor(
        flavorid=flavorid, name=name,
        memory_mb=_bounded_int(spec["ram"], "ram", 1),
        vcpus=_bounded_int(spec["vcpus"], "vcpus", 1),
        root_gb=_bounded_int(spec["disk"], "disk", 0),
        ephemeral_gb=_bounded_int(spec.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral", 0),
        swap=_bounded_int(spec.get("swap", 0), "swap", 0),
        rxtx_factor=rxtx_factor, is_public=is_public, disabled=False, description=description)


def create(req: webob.Request) -> webob.Response:
    body = read_json(req)
    described = api_version(req).matches(DESCRIPTION_VERSION)
    common.validate(CREATE_SCHEMA_255 if described else CREATE_SCHEMA, body)
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:os-flavor-manage:create", {})
    flavor = _new_flavor(body["flavor"], body["flavor"].get("description"))
    with api_session() as s:
        if s.scalar(select(am.Flavor.id).where(am.Flavor.flavorid == flavor.flavorid)):
            raise exception.Conflict(f"Flavor with ID {flavor.flavorid} already exists.")
        if s.scalar(select(am.Flavor.id).where(am.Flavor.name == flavor.name)):
            raise exception.Conflict(f"Flavor with name {flavor.name} already exists.")
        s.add(flavor)
        s.flush()
        s.refresh(flavor)
    return json_response({"flavor": _full(req, flavor)})


def update(req: webob.Request, flavor_id: str) -> webob.Response:
    """2.55: a flavor's description is the one thing that may change after creation;
    everything else is copied into servers, so changing it would mislead."""
    common.require_version(req, DESCRIPTION_VERSION)
    body = read_json(req)
    common.validate(UPDATE_SCHEMA_255, body)
    policy.authorize(context_of(req), "os_compute_api:os-flavor-manage:update", {})
    with api_session() as s:
        row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == flavor_id))
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavor_id)
        row.description = body["flavor"]["description"]
        s.flush()
        s.refresh(row)
        return json_response({"flavor": _full(req, row)})


def delete(req: webob.Request, flavor_id: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:os-flavor-manage:delete", {})
    with api_session() as s:
        row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == flavor_id))
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavor_id)
        s.delete(row)
    return empty_response(202)

