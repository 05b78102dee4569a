"""Cinder's error envelope: {"badRequest": {"code": 400, "message": "..."}}.

Handlers are wrapped so the exception's class name also goes out in the
``X-Transcell-Error-Type`` header: the HTTP client raises the same class the
service raised (an unreachable backend is not any 400), while the body stays
exactly Cinder's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import webob

from transcell import exception
from transcell.wsgi.app import json_response

LOG = logging.getLogger(__name__)

ERROR_TYPE_HEADER = "X-Transcell-Error-Type"

_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def cinder_fault(code: int, message: str) -> dict[str, Any]:
    return {_NAMES.get(code, "computeFault"): {"code": code, "message": message}}


def cinder_faults(handler: Callable[..., webob.Response]) -> Callable[..., webob.Response]:
    @functools.wraps(handler)
    def wrapper(req: webob.Request, **params: Any) -> webob.Response:
        try:
            return handler(req, **params)
        except exception.TranscellError as err:
            if err.code >= 500 and not getattr(err, "client_safe", False):
                LOG.error("%s %s failed: %s", req.method, req.path, err)
                request_id = req.environ.get("transcell.request_id", "")
                return json_response(cinder_fault(
                    err.code, f"Unexpected API Error. The error has been logged with "
                              f"request id {request_id}."), status=err.code)
            return json_response(cinder_fault(err.code, err.message), status=err.code,
                                 headers={ERROR_TYPE_HEADER: type(err).__name__})
    return wrapper
