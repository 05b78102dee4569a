"""Image records: list, create, show, patch, delete."""

from __future__ import annotations

from urllib.parse import urlencode

import webob

from transcell import exception
from transcell.api.image import access, patch, schemas, views
from transcell.api.image.app import glance_error, service_of
from transcell.image.service import extra_properties
from transcell.wsgi.app import (
    application_url,
    context_of,
    empty_response,
    json_response,
    read_json,
)

#: Glance's page size when the client gives none, and the most it will return at once.
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


def _list_params(req: webob.Request) -> tuple[dict, dict]:
    """Split the query into service filters and paging/sorting options."""
    filters: dict = {}
    options: dict = {"limit": DEFAULT_LIMIT}
    for key, value in req.GET.items():
        if key == "tag":
            filters.setdefault("tag", []).append(value)
        elif key in ("sort_key", "sort_dir"):
            options.setdefault(key, []).append(value)
        elif key in ("limit", "marker"):
            options[key] = value
        elif key == "sort":
            if "_sort" in options:
                raise exception.Invalid("Give 'sort' once, as key[:dir],key[:dir].")
            options["_sort"] = value
        else:
            filters[key] = value
    if "_sort" in options:
        if "sort_key" in options or "sort_dir" in options:
            raise exception.Invalid("The 'sort' parameter cannot be combined with "
                                    "'sort_key' or 'sort_dir'.")
        # Glance's new syntax: each key with its own direction, descending if none given
        for part in options.pop("_sort").split(","):
            sort_key, _, sort_dir = part.partition(":")
            options.setdefault("sort_key", []).append(sort_key.strip())
            options.setdefault("sort_dir", []).append(sort_dir.strip() or "desc")
    try:
        options["limit"] = min(int(options["limit"]), MAX_LIMIT)
    except ValueError:
        raise exception.Invalid(f"limit must be an integer, got {options['limit']!r}.") from None
    return filters, options


def _collection_only(req: webob.Request) -> None:
    """``/v2/images/`` names an image with an empty id, which Glance reports missing."""
    if req.path_info.endswith("/"):
        raise exception.ImageNotFound(image_id="")


def no_image(req: webob.Request) -> webob.Response:
    """DELETE on the collection: an image with an empty id (404), else not allowed (405)."""
    _collection_only(req)
    resp = json_response(glance_error(405, "The method specified is not allowed for this "
                                      "resource."), status=405)
    resp.headers["Allow"] = "GET, POST"
    return resp


def index(req: webob.Request) -> webob.Response:
    _collection_only(req)
    access.authorize(req, "get_images")
    filters, options = _list_params(req)
    records = service_of(req).list(context_of(req), filters, **options)
    body = {"images": [views.image(r) for r in records], "first": "/v2/images",
            "schema": "/v2/schemas/images"}
    limit = options["limit"]
    if records and len(records) == limit:
        query = [(k, v) for k, v in req.GET.items() if k not in ("marker", "limit")]
        query += [("marker", records[-1]["id"]), ("limit", str(limit))]
        body["next"] = f"/v2/images?{urlencode(query)}"
    return json_response(body)


def create(req: webob.Request) -> webob.Response:
    _collection_only(req)
    body = read_json(req)
    if not isinstance(body, dict):
        raise exception.Invalid("The request body must be a JSON object of image properties.")
    # Glance (image API 2.5 on): an image created without a visibility is "shared",
    # private to its owner until the owner adds members
    body.setdefault("visibility", "shared")
    owner = body.get("owner")
    access.authorize(req, "add_image", owner=owner if isinstance(owner, str) else None)
    access.authorize_visibility(req, None, body.get("visibility"))
    schemas.check_fields(body)
    record = service_of(req).create(context_of(req), **body)
    location = f"{application_url(req)}/v2/images/{record['id']}"
    return json_response(views.image(record), status=201, headers={"Location": location})


def show(req: webob.Request, image_id: str) -> webob.Response:
    return json_response(views.image(access.visible(req, image_id)))


def update(req: webob.Request, image_id: str) -> webob.Response:
    media_type = (req.content_type or "").lower()
    if media_type not in patch.MEDIA_TYPES:
        raise exception.UnsupportedMediaType(
            f"Unsupported Content-Type {media_type or 'none'!r}; send the patch as "
            f"{patch.V21}.")
    service, ctx = service_of(req), context_of(req)
    record = access.visible(req, image_id)
    access.authorize(req, "modify_image", record)
    changes, remove = patch.changes_of(record, read_json(req), media_type)
    after = (set(extra_properties(record)) | set(schemas.extras_of(changes))) - set(remove)
    schemas.check_fields(changes, extra_count=len(after))
    if "visibility" in changes:
        access.authorize_visibility(req, record, changes["visibility"])
    record = service.update(ctx, image_id, changes, remove)
    return json_response(views.image(record))


def delete(req: webob.Request, image_id: str) -> webob.Response:
    access.authorize(req, "delete_image", access.visible(req, image_id))
    service_of(req).delete(context_of(req), image_id)
    return empty_response(204)
