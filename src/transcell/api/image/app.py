"""The Image API application: Glance's error body, and the service handlers reach."""

from __future__ import annotations

from http import HTTPStatus

import webob

from transcell.image.metadefs import MetadefService
from transcell.image.service import ImageService
from transcell.wsgi.app import Authenticator, JSONApp

_SERVICE_KEY = "transcell.image_service"


def glance_error(code: int, message: str) -> dict:
    """Glance's flat envelope; openstacksdk shows the top-level ``message``."""
    try:
        title = HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return {"message": message, "code": f"{code} {title}", "title": title}


def service_of(req: webob.Request) -> ImageService:
    return req.environ[_SERVICE_KEY]


class ImageApp(JSONApp):
    public_templates = frozenset({"/", "/versions", "/v2"})

    def __init__(self, table, authenticate: Authenticator | None, service: ImageService,
                 metadefs: MetadefService):
        super().__init__(table, authenticate, glance_error)
        self.service = service
        self.metadefs = metadefs

    def prepare(self, req: webob.Request) -> None:
        from transcell.api.image import metadefs
        req.environ[_SERVICE_KEY] = self.service
        req.environ[metadefs._SERVICE_KEY] = self.metadefs


def make_app(service: ImageService, authenticate: Authenticator | None,
             metadefs: MetadefService | None = None) -> ImageApp:
    """The Glance v2 WSGI app; ``authenticate(req)`` turns a request into a RequestContext.

    The metadata definitions catalog lives in the image service's database
    (``[image] database_connection``) unless a catalog is handed in.
    """
    from transcell import conf
    from transcell.api.image.routes import ROUTES
    if metadefs is None:
        metadefs = MetadefService(conf.image_database_url())
    return ImageApp(ROUTES, authenticate, service, metadefs)
