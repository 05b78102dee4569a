"""Tags one at a time, deactivate/reactivate, an image's tasks, and the import discovery
document."""

from __future__ import annotations

import webob

from transcell.api.image import access
from transcell.api.image.app import service_of
from transcell.image import actions
from transcell.wsgi.app import context_of, empty_response, json_response


def add_tag(req: webob.Request, image_id: str, tag: str) -> webob.Response:
    access.authorize(req, "modify_image", access.visible(req, image_id))
    actions.add_tag(service_of(req), context_of(req), image_id, tag)
    return empty_response(204)


def delete_tag(req: webob.Request, image_id: str, tag: str) -> webob.Response:
    access.authorize(req, "modify_image", access.visible(req, image_id))
    actions.delete_tag(service_of(req), context_of(req), image_id, tag)
    return empty_response(204)


def deactivate(req: webob.Request, image_id: str) -> webob.Response:
    access.authorize(req, "deactivate", access.visible(req, image_id))
    actions.deactivate(service_of(req), context_of(req), image_id)
    return empty_response(204)


def reactivate(req: webob.Request, image_id: str) -> webob.Response:
    access.authorize(req, "reactivate", access.visible(req, image_id))
    actions.reactivate(service_of(req), context_of(req), image_id)
    return empty_response(204)


def tasks(req: webob.Request, image_id: str) -> webob.Response:
    """The tasks run on an image (Glance 2.12). Nothing here runs as a Glance task (no
    interoperable import, no async locations), so the list is always empty; clients such as
    Tempest poll it after a snapshot to wait for location tasks. Whoever may not see the
    image is told it is missing, as Glance's ``get_image`` check does."""
    access.visible(req, image_id)
    return json_response({"tasks": []})


def import_info(req: webob.Request) -> webob.Response:
    """Interoperable image import is not served: clients learn it from an empty list."""
    return json_response({"import-methods": {"description": "Import methods available.",
                                             "type": "array", "value": []}})


ROUTES = {
    "/v2/images/{image_id}/tags/{tag}": {"PUT": add_tag, "DELETE": delete_tag},
    "/v2/images/{image_id}/actions/deactivate": {"POST": deactivate},
    "/v2/images/{image_id}/actions/reactivate": {"POST": reactivate},
    "/v2/images/{image_id}/tasks": {"GET": tasks},
    "/v2/info/import": {"GET": import_info},
}
