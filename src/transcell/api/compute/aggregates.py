"""/os-aggregates: host aggregates, as Nova's admin API has them.

Bodies, status codes and messages follow Nova (create, delete and the actions
answer 200, as Nova does for backwards compatibility); 2.41 adds each
aggregate's ``uuid``; 2.81 adds ``POST /os-aggregates/{id}/images``, which
has the aggregate's compute hosts fetch images into their caches (202).
Aggregates are looked up by their integer id at every microversion. The one
deliberate difference is the availability zone, which here can only be the
hosts' cell (see ``transcell.aggregates``).

Every request is validated (body, then policy, then id) before anything is
written, so a refused request leaves the aggregate as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import webob

from transcell import aggregates, exception, policy
from transcell.aggregates import Aggregate
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

UUID_VERSION = "2.41"
IMAGES_VERSION = "2.81"
RULE = "os_compute_api:os-aggregates:%s"
#: Largest id an integer column holds on every engine; larger ones cannot exist.
_MAX_ID = 2**31 - 1

_AZ_RULE = "printable characters except :. Can not start or end with whitespace."

_ZONE = {"type": ["string", "null"], "minLength": 1, "maxLength": 255, "format": "printable"}
_LOOSE_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "format": "printable"}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
_METADATA = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9_.: -]{1,255}$": {"type": ["string", "null"], "maxLength": 255},
    },
    "additionalProperties": False,
}


def _wrapped(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: inner}, "required": [key],
            "additionalProperties": False}


CREATE_SCHEMA = _wrapped("aggregate", {
    "type": "object",
    "properties": {"name": common.NAME, "availability_zone": _ZONE},
    "required": ["name"],
    "additionalProperties": False,
})
UPDATE_SCHEMA = _wrapped("aggregate", {
    "type": "object",
    "properties": {"name": _LOOSE_NAME, "availability_zone": _ZONE},
    "additionalProperties": False,
    "anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}],
})
ADD_HOST_SCHEMA = _wrapped("add_host", {
    "type": "object", "properties": {"host": _HOST}, "required": ["host"],
    "additionalProperties": False})
REMOVE_HOST_SCHEMA = _wrapped("remove_host", {
    "type": "object", "properties": {"host": _HOST}, "required": ["host"],
    "additionalProperties": False})
SET_METADATA_SCHEMA = _wrapped("set_metadata", {
    "type": "object", "properties": {"metadata": _METADATA}, "required": ["metadata"],
    "additionalProperties": False})
IMAGES_SCHEMA = _wrapped("cache", {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}},
              "required": ["id"], "additionalProperties": False},
})


# -- helpers -------------------------------------------------------------------

def _time(value: dt.datetime | None) -> str | None:
    """Nova shows aggregate timestamps as naive ISO 8601 with microseconds, no zone."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _view(req: webob.Request, agg: Aggregate, members: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "availability_zone": agg.availability_zone,
        "created_at": _time(agg.created_at),
        "deleted": False,
        "deleted_at": None,
        "id": agg.id,
        "name": agg.name,
        "updated_at": _time(agg.updated_at),
    }
    if members:
        body["hosts"] = list(agg.hosts)
        body["metadata"] = dict(agg.metadata)
    if api_version(req).matches(UUID_VERSION):
        body["uuid"] = agg.uuid
    return body


def _one(req: webob.Request, agg: Aggregate) -> webob.Response:
    return json_response({"aggregate": _view(req, agg)})


def _id(value: str) -> int:
    """The path's aggregate id: 400 unless an integer, 404 when no row could have it."""
    try:
        number = int(value)
    except ValueError:
        raise exception.Invalid("Invalid input received: id must be an integer") from None
    if not 0 < number <= _MAX_ID:
        raise aggregates.AggregateNotFound(aggregate_id=value)
    return number


def _zone(value: str | None) -> str | None:
    """An availability zone name as Nova accepts it: printable, no colon, trimmed."""
    if value is None:
        return None
    if ":" in value or not common.valid_name(value):
        raise exception.ValidationError("An invalid 'name' value was provided. The name "
                                        f"must be: {_AZ_RULE}")
    return value


def _authorize(req: webob.Request, action: str) -> None:
    policy.authorize(context_of(req), RULE % action, {})


# -- the collection and one aggregate --------------------------------------------

def index(req: webob.Request) -> webob.Response:
    _authorize(req, "index")
    return json_response({"aggregates": [_view(req, a) for a in aggregates.list_all()]})


def create(req: webob.Request) -> webob.Response:
    body = read_json(req)
    common.validate(CREATE_SCHEMA, body)
    _authorize(req, "create")
    wanted = body["aggregate"]
    zone = _zone(wanted.get("availability_zone"))
    agg = aggregates.create(wanted["name"].strip(), zone or None)
    # Nova's create answers without hosts and metadata.
    return json_response({"aggregate": _view(req, agg, members=False)})


def show(req: webob.Request, aggregate_id: str) -> webob.Response:
    _authorize(req, "show")
    return _one(req, aggregates.get(_id(aggregate_id)))


def update(req: webob.Request, aggregate_id: str) -> webob.Response:
    body = read_json(req)
    common.validate(UPDATE_SCHEMA, body)
    _authorize(req, "update")
    number = _id(aggregate_id)
    wanted = body["aggregate"]
    changes: dict[str, Any] = {}
    if "name" in wanted:
        name = wanted["name"].strip()
        if not name or not common.valid_name(name):
            raise exception.ValidationError("An invalid 'name' value was provided. The name "
                                            "must be: printable characters. Can not start or "
                                            "end with whitespace.")
        changes["name"] = name
    if "availability_zone" in wanted:
        changes["availability_zone"] = _zone(wanted["availability_zone"])
    return _one(req, aggregates.update(number, **changes))


def delete(req: webob.Request, aggregate_id: str) -> webob.Response:
    _authorize(req, "delete")
    aggregates.delete(_id(aggregate_id))
    return empty_response(200)


# -- actions ---------------------------------------------------------------------

def _add_host(req: webob.Request, aggregate_id: str, body: dict) -> webob.Response:
    common.validate(ADD_HOST_SCHEMA, body)
    _authorize(req, "add_host")
    return _one(req, aggregates.add_host(_id(aggregate_id), body["add_host"]["host"]))


def _remove_host(req: webob.Request, aggregate_id: str, body: dict) -> webob.Response:
    common.validate(REMOVE_HOST_SCHEMA, body)
    _authorize(req, "remove_host")
    return _one(req, aggregates.remove_host(_id(aggregate_id), body["remove_host"]["host"]))


def _set_metadata(req: webob.Request, aggregate_id: str, body: dict) -> webob.Response:
    common.validate(SET_METADATA_SCHEMA, body)
    _authorize(req, "set_metadata")
    number = _id(aggregate_id)
    metadata = body["set_metadata"]["metadata"]
    if aggregates.AZ_KEY in metadata and metadata[aggregates.AZ_KEY] is not None:
        _zone(metadata[aggregates.AZ_KEY])
    return _one(req, aggregates.set_metadata(number, metadata))


ACTIONS: dict[str, Callable[[webob.Request, str, dict], webob.Response]] = {
    "add_host": _add_host,
    "remove_host": _remove_host,
    "set_metadata": _set_metadata,
}


def action(req: webob.Request, aggregate_id: str) -> webob.Response:
    body = read_json(req)
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid("The action body must be an object with exactly one key, "
                                "the action name.")
    name = next(iter(body))
    handler = ACTIONS.get(name)
    if handler is None:
        raise exception.Invalid(f"There is no such action: {name}")
    return handler(req, aggregate_id, body)


# -- the image cache (2.81) --------------------------------------------------------

def images(req: webob.Request, aggregate_id: str) -> webob.Response:
    """Have every compute host of the aggregate fetch these images; 202 before they do.

    As in Nova: the body, the policy and the id are checked first, then
    repeated images (400), then the aggregate (404), then that every image
    exists (400); only then is any host asked.
    """
    common.require_version(req, IMAGES_VERSION)
    body = read_json(req)
    common.validate(IMAGES_SCHEMA, body)
    ctx = context_of(req)
    policy.authorize(ctx, "compute:aggregates:images", {})
    number = _id(aggregate_id)
    image_ids = [entry["id"] for entry in body["cache"]]
    if len(set(image_ids)) != len(image_ids):
        raise exception.Invalid("Duplicate images in request")
    aggregates.cache_images(ctx, number, image_ids)
    return empty_response(202)
