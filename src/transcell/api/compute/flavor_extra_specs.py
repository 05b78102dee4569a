"""/flavors/{id}/os-extra_specs: the key/value requirements a flavor carries.

Extra specs are how a flavor asks for hardware (``trait:CUSTOM_HW_GEN2=required``
sends a server to the cell of that generation), so they are read by anyone
who may see the flavor and written by administrators only. From 2.86 what
is written is checked first (``extra_spec_rules``): a misspelt key of a known
namespace or a value of the wrong kind is a 400 instead of a spec that is
silently ignored.
"""

from __future__ import annotations

from typing import Any

import webob
from sqlalchemy import select

from transcell import exception, policy
from transcell.api.compute import common, extra_spec_rules
from transcell.api.compute.app import api_version
from transcell.api.compute.flavors import get_flavor
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

_SPECS: dict[str, Any] = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "number"], "maxLength": 255},
    },
    "additionalProperties": False,
}

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"extra_specs": _SPECS},
    "required": ["extra_specs"],
    "additionalProperties": False,
}

UPDATE_SCHEMA: dict[str, Any] = dict(_SPECS, minProperties=1, maxProperties=1)

_RULE = "os_compute_api:os-flavor-extra-specs:"


def _not_found(flavor_id: str, key: str) -> exception.NotFound:
    return exception.NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")


def _as_text(specs: dict[str, Any]) -> dict[str, str]:
    """Numbers are accepted as values and stored as their text."""
    text = {}
    for key, value in specs.items():
        value = value if isinstance(value, str) else str(value)
        if len(value) > 255:
            raise exception.Invalid("Invalid input received: extra_specs value has more "
                                    "than 255 characters.")
        text[key] = value
    return text


#: From this microversion extra specs are validated when created or updated.
VALIDATED = "2.86"


def _checked(req: webob.Request, specs: dict[str, str]) -> dict[str, str]:
    if api_version(req).matches(VALIDATED):
        extra_spec_rules.validate_all(specs)
    return specs


def _store(flavor_id: int, specs: dict[str, str]) -> None:
    with api_session() as s:
        current = {row.key: row for row in s.scalars(
            select(am.FlavorExtraSpec).where(am.FlavorExtraSpec.flavor_id == flavor_id))}
        for key, value in specs.items():
            if key in current:
                current[key].value = value
            else:
                s.add(am.FlavorExtraSpec(flavor_id=flavor_id, key=key, value=value))


def index(req: webob.Request, flavor_id: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, _RULE + "index")
    flavor = get_flavor(ctx, flavor_id)
    return json_response({"extra_specs": {s.key: s.value for s in flavor.extra_specs}})


def create(req: webob.Request, flavor_id: str) -> webob.Response:
    body = read_json(req)
    common.validate(CREATE_SCHEMA, body)
    ctx = context_of(req)
    policy.authorize(ctx, _RULE + "create", {})
    specs = _checked(req, _as_text(body["extra_specs"]))
    flavor = get_flavor(ctx, flavor_id)
    _store(flavor.id, specs)
    return json_response(body)


def show(req: webob.Request, flavor_id: str, key: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, _RULE + "show")
    flavor = get_flavor(ctx, flavor_id)
    for spec in flavor.extra_specs:
        if spec.key == key:
            return json_response({key: spec.value})
    raise _not_found(flavor_id, key)


def update(req: webob.Request, flavor_id: str, key: str) -> webob.Response:
    body = read_json(req)
    common.validate(UPDATE_SCHEMA, body)
    ctx = context_of(req)
    policy.authorize(ctx, _RULE + "update", {})
    specs = _as_text(body)
    if key not in body:
        raise exception.Invalid("Request body and URI mismatch")
    _checked(req, specs)
    flavor = get_flavor(ctx, flavor_id)
    _store(flavor.id, specs)
    return json_response(body)


def delete(req: webob.Request, flavor_id: str, key: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, _RULE + "delete", {})
    flavor = get_flavor(ctx, flavor_id)
    with api_session() as s:
        row = s.scalar(select(am.FlavorExtraSpec).where(
            am.FlavorExtraSpec.flavor_id == flavor.id, am.FlavorExtraSpec.key == key))
        if row is None:
            raise _not_found(flavor_id, key)
        s.delete(row)
    # Nova answers 200 with no body here (not 202 nor 204).
    return empty_response(200)
