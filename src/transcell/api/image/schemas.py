"""JSON schemas of images, for clients (glanceclient, OSC) that fetch them to validate input.

Built from the same enumerations the service validates against, so the
schema cannot drift from what the API accepts.
"""

from __future__ import annotations

import re
from typing import Any

import webob

from transcell import exception
from transcell.image import service
from transcell.wsgi.app import json_response

#: Longest value of an additional (free-form) property, as Glance's schema for them.
MAX_PROPERTY_VALUE = 255
#: Most additional properties one image may carry (Glance's ``image_property_quota``).
MAX_PROPERTIES = 128
#: Control characters; names and property keys may hold none of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Property values may break lines (descriptions do), nothing else.
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Fields whose text is a name or identifier, so it may hold no control character.
_NAMES = ("name", "owner")

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
_DATE = {"type": "string", "readOnly": True}


def _nullable_enum(choices: tuple[str, ...], description: str) -> dict[str, Any]:
    return {"type": ["null", "string"], "enum": [None, *choices], "description": description}


def image_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": _UUID,
               "description": "An identifier for the image"},
        "name": {"type": ["null", "string"], "maxLength": 255,
                 "description": "Descriptive name for the image"},
        "status": {"type": "string", "readOnly": True, "enum": list(service.STATUSES),
                   "description": "Status of the image"},
        "visibility": {"type": "string", "enum": list(service.VISIBILITIES),
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean",
                      "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
                      "description": "If true, image will not appear in default image list "
                                     "response."},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32,
                     "description": "md5 hash of image contents."},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64,
                         "description": "Algorithm to calculate the os_hash_value"},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128,
                          "description": "Hexdigest of the image contents using the "
                                         "algorithm specified by the os_hash_algo"},
        "owner": {"type": ["null", "string"], "maxLength": 255,
                  "description": "Owner of the image"},
        "size": {"type": ["null", "integer"], "readOnly": True,
                 "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                         "description": "Virtual size of image in bytes"},
        "min_disk": {"type": "integer", "minimum": 0,
                     "description": "Amount of disk space (in GB) required to boot image."},
        "min_ram": {"type": "integer", "minimum": 0,
                    "description": "Amount of ram (in MB) required to boot image."},
        "disk_format": _nullable_enum(service.DISK_FORMATS, "Format of the disk"),
        "container_format": _nullable_enum(service.CONTAINER_FORMATS,
                                           "Format of the container"),
        "created_at": dict(_DATE, description="Date and time of image registration"),
        "updated_at": dict(_DATE, description="Date and time of the last image "
                                              "modification"),
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "description": "List of strings related to the image"},
        "self": {"type": "string", "readOnly": True,
                 "description": "An image self url"},
        "file": {"type": "string", "readOnly": True,
                 "description": "An image file url"},
        "schema": {"type": "string", "readOnly": True,
                   "description": "An image schema url"},
    }
    return {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string", "maxLength": MAX_PROPERTY_VALUE},
        "links": [{"rel": "self", "href": "{self}"},
                  {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"},
                  {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": dict(_DATE, description="Date and time of image member creation"),
            "image_id": {"type": "string", "pattern": _UUID,
                         "description": "An identifier for the image"},
            "member_id": {"type": "string",
                          "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
            "updated_at": dict(_DATE, description="Date and time of last modification of "
                                                  "image member"),
            "schema": {"type": "string", "readOnly": True},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()},
                       "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


def member(req: webob.Request) -> webob.Response:
    return json_response(member_schema())


def members(req: webob.Request) -> webob.Response:
    return json_response(members_schema())


def image(req: webob.Request) -> webob.Response:
    return json_response(image_schema())


def images(req: webob.Request) -> webob.Response:
    return json_response(images_schema())


def extras_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The additional (free-form) properties among ``fields``."""
    return {key: value for key, value in fields.items()
            if key not in service.CORE and key not in service.READ_ONLY
            and key not in service.RESERVED}


def check_fields(fields: dict[str, Any], extra_count: int | None = None) -> None:
    """Refuse what Glance's image schema would, before the service stores anything.

    ``extra_count`` is how many additional properties the image would carry
    afterwards (default: those in ``fields``). Types and enumerations are the
    service's to check; this bounds the size and the characters of free text.
    """
    extras = extras_of(fields)
    for key in extras:
        if isinstance(key, str) and _CONTROL.search(key):
            raise exception.Invalid(f"Property name {key!r} contains a control character.")
    for key, value in extras.items():
        if isinstance(value, str) and len(value) > MAX_PROPERTY_VALUE:
            raise exception.Invalid(f"Property '{key}' is {len(value)} characters long; "
                                    f"the most is {MAX_PROPERTY_VALUE}.")
        if isinstance(value, str) and _VALUE_CONTROL.search(value):
            raise exception.Invalid(f"Property '{key}' contains a control character.")
    for key in _NAMES:
        value = fields.get(key)
        if isinstance(value, str) and _CONTROL.search(value):
            raise exception.Invalid(f"'{key}' contains a control character.")
    tags = fields.get("tags")
    # a tags value that is not a list is the service's to refuse, with its own words
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and _CONTROL.search(tag):
            raise exception.Invalid(f"Tag {tag!r} contains a control character.")
    count = len(extras) if extra_count is None else extra_count
    if count > MAX_PROPERTIES:
        raise exception.Invalid(f"An image can have at most {MAX_PROPERTIES} additional "
                                f"properties; this one would have {count}.")
