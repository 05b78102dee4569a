"""JSON schemas of the metadata definitions catalog: served to clients, and checked on input.

The schema a client fetches from ``/v2/schemas/metadefs/...`` is the one the
API validates request bodies against, so the two cannot drift. Fields a
client may echo back but not set (timestamps, ``schema``, ``self``) are
dropped before validation, as clients that PUT back what they read send them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import webob

from transcell import exception
from transcell.image.metadef_models import NAME_LENGTH
from transcell.image.metadefs import VISIBILITIES
from transcell.wsgi.app import json_response

READ_ONLY = ("created_at", "updated_at", "schema", "self")
#: Names travel in URL paths: no slash, no control character, not blank.
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]

_NAME = {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH}
_STAMP = {"type": "string", "readOnly": True, "format": "date-time"}
_STRINGS = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
_COUNT = {"type": "integer", "minimum": 0}


def _property_fields() -> dict[str, Any]:
    """What one property definition may say (Glance's property type)."""
    return {
        "name": dict(_NAME),
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": ["string", "null"], "enum": _TYPES},
        "required": {**_STRINGS, "minItems": 1},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": _COUNT,
        "minLength": _COUNT,
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object", "additionalProperties": False,
                  "properties": {"type": {"type": "string", "enum": _TYPES[:-1]},
                                 "enum": {"type": "array"}}},
        "maxItems": _COUNT,
        "minItems": _COUNT,
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _definition() -> dict[str, Any]:
    """A property as it sits inside a namespace or object, keyed by its name."""
    fields = _property_fields()
    del fields["name"]
    return {"type": "object", "properties": fields, "required": ["title", "type"],
            "additionalProperties": False}


def _definitions() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": _definition()}


def _association_fields() -> dict[str, Any]:
    return {"name": dict(_NAME),
            "prefix": {"type": "string", "maxLength": NAME_LENGTH},
            "properties_target": {"type": "string", "maxLength": NAME_LENGTH},
            "created_at": _STAMP, "updated_at": _STAMP}


def _object_fields() -> dict[str, Any]:
    return {"name": dict(_NAME), "description": {"type": "string"},
            "required": dict(_STRINGS), "properties": _definitions(),
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            "created_at": _STAMP, "updated_at": _STAMP}


def _tag_fields() -> dict[str, Any]:
    return {"name": dict(_NAME), "created_at": _STAMP, "updated_at": _STAMP}


def _item(name: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"name": name, "type": "object", "properties": fields, "required": required,
            "additionalProperties": False}


def _collection(name: str, key: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": "object",
            "properties": {key: items, "schema": {"type": "string"},
                           "first": {"type": "string"}, "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def association() -> dict[str, Any]:
    return _item("resource_type_association", _association_fields(), ["name"])


def associations() -> dict[str, Any]:
    return _collection("resource_type_associations", "resource_type_associations",
                       {"type": "array", "items": association()})


def object_() -> dict[str, Any]:
    return _item("object", _object_fields(), ["name"])


def objects() -> dict[str, Any]:
    return _collection("objects", "objects", {"type": "array", "items": object_()})


def property_() -> dict[str, Any]:
    return _item("property", _property_fields(), ["name", "title", "type"])


def properties() -> dict[str, Any]:
    return _collection("properties", "properties", _definitions())


def tag() -> dict[str, Any]:
    return _item("tag", _tag_fields(), ["name"])


def tags() -> dict[str, Any]:
    return _collection("tags", "tags", {"type": "array", "items": tag()})


def namespace() -> dict[str, Any]:
    fields = {
        "namespace": dict(_NAME),
        "display_name": {"type": "string", "maxLength": NAME_LENGTH},
        "description": {"type": "string", "maxLength": 500},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean"},
        "owner": {"type": "string", "maxLength": 255},
        "created_at": _STAMP, "updated_at": _STAMP,
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "resource_type_associations": {"type": "array", "items": association()},
        "properties": _definitions(),
        "objects": {"type": "array", "items": object_()},
        "tags": {"type": "array", "items": tag()},
    }
    return _item("namespace", fields, ["namespace"])


def namespaces() -> dict[str, Any]:
    return _collection("namespaces", "namespaces", {"type": "array", "items": namespace()})


SCHEMAS = {"namespace": namespace, "namespaces": namespaces, "object": object_,
           "objects": objects, "property": property_, "properties": properties,
           "tag": tag, "tags": tags, "resource_type": association,
           "resource_types": associations}


def _drop_read_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in READ_ONLY}
    return value


def _check_names(body: dict[str, Any]) -> None:
    """Every name the body introduces must be addressable in a URL."""
    names: list[Any] = [body.get("namespace"), body.get("name")]
    for key in ("objects", "tags", "resource_type_associations"):
        names += [item.get("name") for item in body.get(key) or [] if isinstance(item, dict)]
    names += list(body.get("properties") or {}) if key_is_definitions(body) else []
    for obj in body.get("objects") or []:
        names += list(obj.get("properties") or {})
    for name in names:
        if isinstance(name, str) and (not name.strip() or _BAD_NAME.search(name)):
            raise exception.Invalid(f"Invalid name {name!r}: a name may hold no slash or "
                                    "control character and may not be blank.")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def key_is_definitions(body: dict[str, Any]) -> bool:
    return isinstance(body.get("properties"), dict)


def validated(body: Any, kind: str) -> dict[str, Any]:
    """``body`` checked against the ``kind`` schema, read-only fields removed; 400 if not."""
    if not isinstance(body, dict):
        raise exception.Invalid("The request body must be a JSON object.")
    body = _drop_read_only(body)
    if kind in ("namespace", "object"):
        for key in ("objects", "tags", "resource_type_associations"):
            if isinstance(body.get(key), list):
                body[key] = [_drop_read_only(item) for item in body[key]]
    schema = SCHEMAS[kind]()
    try:
        jsonschema.Draft4Validator(schema).validate(body)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        message = exc.message if len(exc.message) <= 200 else exc.message[:200] + "..."
        raise exception.Invalid(f"Invalid {kind}{f' at {where}' if where else ''}: "
                                f"{message}") from None
    _check_names(body)
    if _has_nul(body):
        raise exception.Invalid(f"Invalid {kind}: text may not hold a NUL character.")
    return copy.deepcopy(body)


def show(req: webob.Request, kind: str) -> webob.Response:
    return json_response(SCHEMAS[kind]())


ROUTES = {
    f"/v2/schemas/metadefs/{kind}": {"GET": (lambda req, _k=kind: show(req, _k))}
    for kind in SCHEMAS
}
