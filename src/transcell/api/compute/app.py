"""The compute API application: Nova's error envelope and microversion headers."""

from __future__ import annotations

import webob

from transcell.api.compute import microversion
from transcell.wsgi.app import JSONApp

_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

_UNVERSIONED = ("/", "/v2.1", "/v2.1/", "/v2", "/v2/")


def nova_fault(code: int, message: str) -> dict:
    """Nova's envelope: {"itemNotFound": {"code": 404, "message": "..."}}."""
    return {_FAULT_NAMES.get(code, "computeFault"): {"code": code, "message": message}}


def api_version(req: webob.Request) -> microversion.APIVersion:
    return req.environ.get("transcell.api_version", microversion.MIN)


class ComputeApp(JSONApp):
    public_templates = frozenset({"/", "/v2.1", "/v2"})

    def prepare(self, req: webob.Request) -> None:
        if req.path_info in _UNVERSIONED:
            return
        req.environ["transcell.api_version"] = microversion.MIN
        req.environ["transcell.api_version"] = microversion.negotiate(req.headers)

    def finish(self, req: webob.Request, resp: webob.Response) -> None:
        version = req.environ.get("transcell.api_version")
        if version is None:
            return
        resp.headers["OpenStack-API-Version"] = f"{microversion.SERVICE_TYPE} {version}"
        resp.headers[microversion.LEGACY_HEADER] = str(version)
        resp.headers["Vary"] = f"OpenStack-API-Version, {microversion.LEGACY_HEADER}"


def make_app(authenticate) -> ComputeApp:
    from transcell.api.compute.routes import ROUTES
    return ComputeApp(ROUTES, authenticate, nova_fault)
