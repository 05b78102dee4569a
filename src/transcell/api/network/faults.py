"""Neutron's error envelope: {"NeutronError": {"type", "message", "detail"}}.

Handlers are wrapped so the exception's own name reaches the envelope's
``type`` (clients branch on it); errors raised before a handler runs (no
token, no such route) only have a status, which names an HTTP error instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import webob

from transcell import exception
from transcell.network.exceptions import HTTP_TYPES, neutron_type
from transcell.wsgi.app import json_response

LOG = logging.getLogger(__name__)


def envelope(error_type: str, message: str) -> dict[str, Any]:
    return {"NeutronError": {"type": error_type, "message": message, "detail": ""}}


def format_error(code: int, message: str) -> dict[str, Any]:
    return envelope(HTTP_TYPES.get(code, "NeutronException"), message)


def neutron_faults(handler: Callable[..., webob.Response]) -> Callable[..., webob.Response]:
    @functools.wraps(handler)
    def wrapper(req: webob.Request, **params: Any) -> webob.Response:
        try:
            return handler(req, **params)
        except exception.TranscellError as err:
            if err.code >= 500 and not getattr(err, "client_safe", False):
                LOG.error("%s %s failed: %s", req.method, req.path, err)
                # what failed inside is for the log, not for the client
                request_id = req.environ.get("transcell.request_id", "")
                return json_response(envelope(
                    HTTP_TYPES.get(err.code, "NeutronException"),
                    f"Unexpected API Error. The error has been logged with request id "
                    f"{request_id}."), status=err.code)
            return json_response(envelope(neutron_type(err), err.message), status=err.code)
    return wrapper
