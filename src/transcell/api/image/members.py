"""Image members over HTTP: Glance v2's sharing calls, bodies and status codes.

The image is looked up first (a caller who cannot see it gets 404, as in
Glance), then the call's policy rule is checked, then the service applies
Glance's ownership rules; see :mod:`transcell.image.members`.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell import exception
from transcell.api.image import access
from transcell.api.image.app import service_of
from transcell.image import members
from transcell.wsgi.app import context_of, empty_response, json_response, read_json


def _object(req: webob.Request, key: str) -> Any:
    """The one value a member call reads; other keys are ignored, as Glance ignores them
    (openstacksdk sends the whole member back when it changes the status)."""
    body = read_json(req)
    if not isinstance(body, dict) or key not in body:
        raise exception.Invalid(f"The request body must be a JSON object with '{key}'.")
    return body[key]


def index(req: webob.Request, image_id: str) -> webob.Response:
    access.authorize(req, "get_members", access.visible(req, image_id))
    found = members.index(service_of(req), context_of(req), image_id)
    return json_response({"members": found, "schema": "/v2/schemas/members"})


def create(req: webob.Request, image_id: str) -> webob.Response:
    access.authorize(req, "add_member", access.visible(req, image_id))
    member_id = _object(req, "member")
    return json_response(members.add(service_of(req), context_of(req), image_id, member_id))


def show(req: webob.Request, image_id: str, member_id: str) -> webob.Response:
    access.authorize(req, "get_member", access.visible(req, image_id))
    return json_response(members.show(service_of(req), context_of(req), image_id, member_id))


def update(req: webob.Request, image_id: str, member_id: str) -> webob.Response:
    record = access.visible(req, image_id)
    status = members.status_of(_object(req, "status"))
    access.authorize(req, "modify_member", record, member_id=member_id)
    return json_response(members.update(service_of(req), context_of(req), image_id,
                                        member_id, status))


def delete(req: webob.Request, image_id: str, member_id: str) -> webob.Response:
    access.authorize(req, "delete_member", access.visible(req, image_id))
    members.delete(service_of(req), context_of(req), image_id, member_id)
    return empty_response(204)


ROUTES = {
    "/v2/images/{image_id}/members": {"GET": index, "POST": create},
    "/v2/images/{image_id}/members/{member_id}": {"GET": show, "PUT": update,
                                                  "DELETE": delete},
}
