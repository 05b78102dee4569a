"""Version documents, served without a token; keystoneauth follows their ``self`` links."""

from __future__ import annotations

import webob

from transcell.api.compute import microversion
from transcell.wsgi.app import application_url, json_response

_UPDATED = "2013-07-23T11:33:21Z"


def _v21(base: str) -> dict:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": microversion.MAX_VERSION,
        "min_version": microversion.MIN_VERSION,
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
    }


def index(req: webob.Request) -> webob.Response:
    base = application_url(req)
    v20 = {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
           "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}
    return json_response({"versions": [v20, _v21(base)]})


def _v20(base: str) -> dict:
    return {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
            "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}


def show_v20(req: webob.Request) -> webob.Response:
    """The v2.0 entry of the version list links here: its document must answer."""
    doc = _v20(application_url(req))
    doc["links"].append({"rel": "describedby", "type": "text/html",
                         "href": "https://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2"}]
    return json_response({"version": doc})


def show(req: webob.Request) -> webob.Response:
    base = application_url(req)
    doc = _v21(base)
    doc["links"].append({"rel": "describedby", "type": "text/html",
                         "href": "https://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return json_response({"version": doc})
