"""The version document, served without a token; clients follow its ``self`` links."""

from __future__ import annotations

import webob

from transcell.wsgi.app import application_url, json_response

CURRENT = (2, 9)


def index(req: webob.Request) -> webob.Response:
    """The root answers 300 Multiple Choices, as Glance's does; clients pick a version."""
    return _document(req, 300)


def listed(req: webob.Request) -> webob.Response:
    """``/versions`` asks for the list by name: Glance answers it 200."""
    return _document(req, 200)


def _document(req: webob.Request, status: int) -> webob.Response:
    href = f"{application_url(req)}/v2/"
    versions = []
    for minor in range(CURRENT[1], -1, -1):
        versions.append({"id": f"v2.{minor}",
                         "status": "CURRENT" if minor == CURRENT[1] else "SUPPORTED",
                         "links": [{"rel": "self", "href": href}]})
    return json_response({"versions": versions}, status=status)
