"""Identity version discovery, served without a token.

keystoneauth discovers here before it authenticates: ``GET /`` (answered with
300 Multiple Choices, as Keystone does) and ``GET /v3``. Its ``self`` link is
where every later identity request goes, so it is built from the URL the
client actually used.
"""

from __future__ import annotations

from typing import Any

import webob

from transcell.wsgi.app import application_url, json_response

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]


def version_entry(req: webob.Request) -> dict[str, Any]:
    return {"id": VERSION_ID, "status": "stable", "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{application_url(req)}/v3/"}],
            "media-types": MEDIA_TYPES}


def list_versions(req: webob.Request) -> webob.Response:
    return json_response({"versions": {"values": [version_entry(req)]}}, status=300)


def show_version(req: webob.Request) -> webob.Response:
    return json_response({"version": version_entry(req)})
