"""The compute API application: Nova's error envelope and microversion headers."""

from __future__ import annotations

import gc

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


#: Container allocations (net of frees) between two young-generation collections in a
#: process serving this API; Python's default is 700.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Collect the young generation less often than Python does by default.

    A page of a thousand servers allocates tens of thousands of short-lived
    dicts and lists (rows, bodies, links). At the default threshold they set
    off dozens of young collections per request, and the objects that survive
    them set off full ones, which walk every object the process holds: about
    40 ms of a 1,000-server page was collection, none of it finding garbage
    (the objects are freed by reference counting as the response is written).
    Only raised, never lowered, so a process that chose a larger value keeps it.
    """
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def make_app(authenticate) -> ComputeApp:
    """The compute API, for a process that serves it (which ``tune_gc`` prepares)."""
    from transcell.api.compute.routes import ROUTES
    tune_gc()
    return ComputeApp(ROUTES, authenticate, nova_fault)
