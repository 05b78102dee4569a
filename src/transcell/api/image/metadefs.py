"""Glance's metadata definitions API (``/v2/metadefs``): bodies, status codes, policy.

A call on a namespace first finds it as the caller may see it (a private
namespace of another project is 404, so its name does not leak), then checks
the call's policy rule against it (Glance's defaults: readers read, only an
administrator writes; 403), then validates the body against the schema the
API serves (400), and only then changes anything.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import webob

from transcell import exception, policy
from transcell.api.image import metadefs_schemas as schemas
from transcell.image import metadef_models as models
from transcell.image.metadef_contents import TAG_SORT_KEYS, MetadefContents
from transcell.image.metadefs import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    SORT_KEYS,
    VISIBILITIES,
    MetadefService,
)
from transcell.policies.image import ImagePolicyNotAuthorized
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

_SERVICE_KEY = "transcell.metadef_service"
NAMESPACES = "/v2/metadefs/namespaces"


def service_of(req: webob.Request) -> MetadefService:
    return req.environ[_SERVICE_KEY]


def contents_of(req: webob.Request) -> MetadefContents:
    return MetadefContents(service_of(req))


def _authorize(req: webob.Request, rule: str, namespace: str | None = None) -> None:
    """Policy for ``rule`` on ``namespace`` as the caller sees it (404 if it cannot);
    with no namespace, on the caller's own project."""
    ctx = context_of(req)
    if namespace is None:
        target: dict[str, Any] = {"project_id": ctx.project_id or "",
                                  "owner": ctx.project_id or "", "visibility": "private"}
    else:
        target = service_of(req).namespace_target(ctx, namespace)
    policy.authorize(ctx, rule, target, exc=ImagePolicyNotAuthorized)


def _int(req: webob.Request, key: str, default: int | None) -> int | None:
    raw = req.GET.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise exception.Invalid(f"{key} must be an integer, got {raw!r}.") from None
    if value < 0:
        raise exception.Invalid(f"{key} must not be negative.")
    return min(value, MAX_LIMIT)


def _choice(req: webob.Request, key: str, choices: tuple[str, ...], default: Any) -> Any:
    value = req.GET.get(key, default)
    if value is not None and value not in choices:
        raise exception.Invalid(f"{key} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def _self(namespace: str) -> str:
    return f"{NAMESPACES}/{namespace}"


def _namespace_view(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "schema": "/v2/schemas/metadefs/namespace",
            "self": _self(view["namespace"])}


# -- namespaces ------------------------------------------------------------------------
def list_namespaces(req: webob.Request) -> webob.Response:
    _authorize(req, "get_metadef_namespaces")
    limit = _int(req, "limit", DEFAULT_LIMIT)
    sort_key = _choice(req, "sort_key", SORT_KEYS, "created_at")
    sort_dir = _choice(req, "sort_dir", ("asc", "desc"), "desc")
    visibility = _choice(req, "visibility", VISIBILITIES, None)
    types = [t.strip() for t in req.GET.get("resource_types", "").split(",") if t.strip()]
    found, more = service_of(req).list_namespaces(
        context_of(req), limit=limit, marker=req.GET.get("marker"), sort_key=sort_key,
        sort_dir=sort_dir, visibility=visibility, resource_types=types)
    body: dict[str, Any] = {"namespaces": [_namespace_view(v) for v in found],
                            "first": NAMESPACES, "schema": "/v2/schemas/metadefs/namespaces"}
    if more and found:
        query = [(k, v) for k, v in req.GET.items() if k not in ("marker", "limit")]
        query += [("marker", found[-1]["namespace"]), ("limit", str(limit))]
        body["next"] = f"{NAMESPACES}?{urlencode(query)}"
    return json_response(body)


def create_namespace(req: webob.Request) -> webob.Response:
    _authorize(req, "add_metadef_namespace")
    body = schemas.validated(read_json(req), "namespace")
    view = service_of(req).create_namespace(
        context_of(req), body, associations=body.get("resource_type_associations") or [],
        properties=body.get("properties"), objects=body.get("objects") or [],
        tags=[t["name"] for t in body.get("tags") or []])
    return json_response(_namespace_view(view), status=201)


def show_namespace(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "get_metadef_namespace", namespace)
    return json_response(_namespace_view(service_of(req).show_namespace(context_of(req),
                                                                        namespace)))


def update_namespace(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "modify_metadef_namespace", namespace)
    body = schemas.validated(read_json(req), "namespace")
    for key in ("resource_type_associations", "properties", "objects", "tags"):
        body.pop(key, None)  # changed through their own calls, as in Glance
    view = service_of(req).update_namespace(context_of(req), namespace, body)
    return json_response(_namespace_view(view))


def delete_namespace(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "delete_metadef_namespace", namespace)
    service_of(req).delete_namespace(context_of(req), namespace)
    return empty_response(204)


# -- objects --------------------------------------------------------------------------
def list_objects(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "get_metadef_objects", namespace)
    found = contents_of(req).list_objects(context_of(req), namespace)
    return json_response({"objects": found, "schema": "/v2/schemas/metadefs/objects"})


def create_object(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "add_metadef_object", namespace)
    body = schemas.validated(read_json(req), "object")
    return json_response(contents_of(req).create_object(context_of(req), namespace, body),
                         status=201)


def delete_objects(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "delete_metadef_namespace", namespace)
    contents_of(req).delete_all(context_of(req), namespace, models.MetadefObject, "Objects")
    return empty_response(204)


def show_object(req: webob.Request, namespace: str, object_name: str) -> webob.Response:
    _authorize(req, "get_metadef_object", namespace)
    return json_response(contents_of(req).show_object(context_of(req), namespace,
                                                      object_name))


def update_object(req: webob.Request, namespace: str, object_name: str) -> webob.Response:
    _authorize(req, "modify_metadef_object", namespace)
    body = schemas.validated(read_json(req), "object")
    return json_response(contents_of(req).update_object(context_of(req), namespace,
                                                        object_name, body))


def delete_object(req: webob.Request, namespace: str, object_name: str) -> webob.Response:
    _authorize(req, "delete_metadef_object", namespace)
    contents_of(req).delete_object(context_of(req), namespace, object_name)
    return empty_response(204)


# -- properties -------------------------------------------------------------------------
def list_properties(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "get_metadef_properties", namespace)
    found = contents_of(req).list_properties(context_of(req), namespace)
    return json_response({"properties": found, "schema": "/v2/schemas/metadefs/properties"})


def create_property(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "add_metadef_property", namespace)
    body = schemas.validated(read_json(req), "property")
    return json_response(contents_of(req).create_property(context_of(req), namespace, body),
                         status=201)


def delete_properties(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "delete_metadef_namespace", namespace)
    contents_of(req).delete_all(context_of(req), namespace, models.MetadefProperty,
                                "Properties")
    return empty_response(204)


def _property_name(req: webob.Request, namespace: str, name: str) -> str:
    """``?resource_type=`` names a property by its prefixed name for that resource type
    (``hw_`` + ``cpu_cores``); the prefix is the association's, and is dropped."""
    rtype = req.GET.get("resource_type")
    if not rtype:
        return name
    for assoc in service_of(req).list_associations(context_of(req), namespace):
        prefix = assoc.get("prefix")
        if assoc["name"] == rtype and prefix and name.startswith(prefix):
            return name[len(prefix):]
    return name


def show_property(req: webob.Request, namespace: str, property_name: str) -> webob.Response:
    _authorize(req, "get_metadef_property", namespace)
    name = _property_name(req, namespace, property_name)
    return json_response(contents_of(req).show_property(context_of(req), namespace, name))


def update_property(req: webob.Request, namespace: str, property_name: str
                    ) -> webob.Response:
    _authorize(req, "modify_metadef_property", namespace)
    raw = read_json(req)
    if isinstance(raw, dict):
        raw.setdefault("name", property_name)
    body = schemas.validated(raw, "property")
    return json_response(contents_of(req).update_property(context_of(req), namespace,
                                                          property_name, body))


def delete_property(req: webob.Request, namespace: str, property_name: str
                    ) -> webob.Response:
    _authorize(req, "remove_metadef_property", namespace)
    contents_of(req).delete_property(context_of(req), namespace, property_name)
    return empty_response(204)


# -- tags ------------------------------------------------------------------------------------
def list_tags(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "get_metadef_tags", namespace)
    found = contents_of(req).list_tags(
        context_of(req), namespace, limit=_int(req, "limit", None),
        marker=req.GET.get("marker"),
        sort_key=_choice(req, "sort_key", TAG_SORT_KEYS, "created_at"),
        sort_dir=_choice(req, "sort_dir", ("asc", "desc"), "asc"))
    return json_response({"tags": found})


def create_tags(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "add_metadef_tags", namespace)
    body = read_json(req)
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise exception.Invalid("The request body must be a JSON object with a 'tags' list.")
    names = [schemas.validated(item, "tag")["name"] for item in body["tags"]]
    append = req.headers.get("X-Openstack-Append", "").strip().lower() in ("true", "1", "yes")
    created = contents_of(req).create_tags(context_of(req), namespace, names, append=append)
    return json_response({"tags": created}, status=201)


def delete_tags(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "delete_metadef_tags", namespace)
    contents_of(req).delete_tags(context_of(req), namespace)
    return empty_response(204)


def show_tag(req: webob.Request, namespace: str, tag_name: str) -> webob.Response:
    _authorize(req, "get_metadef_tag", namespace)
    return json_response(contents_of(req).show_tag(context_of(req), namespace, tag_name))


def create_tag(req: webob.Request, namespace: str, tag_name: str) -> webob.Response:
    _authorize(req, "add_metadef_tag", namespace)
    schemas.validated({"name": tag_name}, "tag")
    return json_response(contents_of(req).create_tag(context_of(req), namespace, tag_name),
                         status=201)


def update_tag(req: webob.Request, namespace: str, tag_name: str) -> webob.Response:
    _authorize(req, "modify_metadef_tag", namespace)
    body = schemas.validated(read_json(req), "tag")
    return json_response(contents_of(req).update_tag(context_of(req), namespace, tag_name,
                                                     body["name"]))


def delete_tag(req: webob.Request, namespace: str, tag_name: str) -> webob.Response:
    _authorize(req, "delete_metadef_tag", namespace)
    contents_of(req).delete_tag(context_of(req), namespace, tag_name)
    return empty_response(204)


# -- resource types ----------------------------------------------------------------------------
def list_resource_types(req: webob.Request) -> webob.Response:
    _authorize(req, "list_metadef_resource_types")
    return json_response({"resource_types": service_of(req).list_resource_types()})


def list_associations(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "get_metadef_resource_type", namespace)
    found = service_of(req).list_associations(context_of(req), namespace)
    return json_response({"resource_type_associations": found})


def create_association(req: webob.Request, namespace: str) -> webob.Response:
    _authorize(req, "add_metadef_resource_type_association", namespace)
    body = schemas.validated(read_json(req), "resource_type")
    return json_response(service_of(req).associate(context_of(req), namespace, body),
                         status=201)


def delete_association(req: webob.Request, namespace: str, resource_type: str
                       ) -> webob.Response:
    _authorize(req, "remove_metadef_resource_type_association", namespace)
    service_of(req).dissociate(context_of(req), namespace, resource_type)
    return empty_response(204)


_NS = NAMESPACES + "/{namespace}"
ROUTES = {
    NAMESPACES: {"GET": list_namespaces, "POST": create_namespace},
    _NS: {"GET": show_namespace, "PUT": update_namespace, "DELETE": delete_namespace},
    _NS + "/objects": {"GET": list_objects, "POST": create_object, "DELETE": delete_objects},
    _NS + "/objects/{object_name}": {"GET": show_object, "PUT": update_object,
                                     "DELETE": delete_object},
    _NS + "/properties": {"GET": list_properties, "POST": create_property,
                          "DELETE": delete_properties},
    _NS + "/properties/{property_name}": {"GET": show_property, "PUT": update_property,
                                          "DELETE": delete_property},
    _NS + "/tags": {"GET": list_tags, "POST": create_tags, "DELETE": delete_tags},
    _NS + "/tags/{tag_name}": {"GET": show_tag, "POST": create_tag, "PUT": update_tag,
                               "DELETE": delete_tag},
    _NS + "/resource_types": {"GET": list_associations, "POST": create_association},
    _NS + "/resource_types/{resource_type}": {"DELETE": delete_association},
    "/v2/metadefs/resource_types": {"GET": list_resource_types},
    **schemas.ROUTES,
}
