"""Which projects may use a private flavor: ``addTenantAccess``, ``removeTenantAccess``
and ``/flavors/{id}/os-flavor-access``.

The grants are rows of ``flavor_projects`` in the API database, the ones the
flavor listing and ``get_flavor`` already read, so a grant shows the flavor
to the project at once and a removal hides it again; servers already built
keep their copy of the flavor.
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import common
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.wsgi.app import context_of, json_response, read_json

_TENANT = {"type": "object",
           "properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255,
                                     "format": "printable"}},
           "required": ["tenant"], "additionalProperties": False}

ACTIONS = {
    "addTenantAccess": "os_compute_api:os-flavor-access:add_tenant_access",
    "removeTenantAccess": "os_compute_api:os-flavor-access:remove_tenant_access",
}

#: One body schema per action (each body names exactly one action).
ACTION_SCHEMAS = {name: {"type": "object", "properties": {name: _TENANT}, "required": [name],
                         "additionalProperties": False} for name in ACTIONS}


def _access_list(row: am.Flavor) -> list[dict[str, str]]:
    return [{"flavor_id": row.flavorid, "tenant_id": grant.project_id}
            for grant in sorted(row.projects, key=lambda g: g.id)]


def _flavor(s, flavor_id: str) -> am.Flavor:
    row = s.scalar(select(am.Flavor).where(am.Flavor.flavorid == flavor_id))
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavor_id)
    return row


def index(req: webob.Request, flavor_id: str) -> webob.Response:
    policy.authorize(context_of(req), "os_compute_api:os-flavor-access", {})
    with api_session() as s:
        row = _flavor(s, flavor_id)
        if row.is_public:
            raise exception.NotFound("Access list not available for public flavors.")
        return json_response({"flavor_access": _access_list(row)})


def action(req: webob.Request, flavor_id: str) -> webob.Response:
    body = read_json(req)
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ACTIONS:
        names = ", ".join(body) if isinstance(body, dict) else ""
        raise exception.Invalid(f"There is no such action: {names}")
    name, spec = next(iter(body.items()))
    common.validate(ACTION_SCHEMAS[name], body)
    policy.authorize(context_of(req), ACTIONS[name], {})
    project_id = spec["tenant"]
    with api_session() as s:
        row = _flavor(s, flavor_id)
        grant = next((g for g in row.projects if g.project_id == project_id), None)
        if name == "addTenantAccess":
            if row.is_public:
                raise exception.Conflict("Can not add access to a public flavor.")
            if grant is not None:
                raise exception.Conflict(f"Flavor access already exists for flavor "
                                         f"{flavor_id} and project {project_id} combination.")
            row.projects.append(am.FlavorProject(project_id=project_id))
        else:
            if grant is None:
                raise exception.NotFound(f"Flavor access not found for {flavor_id} / "
                                         f"{project_id} combination.")
            row.projects.remove(grant)
        s.flush()
        s.refresh(row)
        listed: list[dict[str, Any]] = _access_list(row)
    return json_response({"flavor_access": listed})
