"""The JSON API application every transcell API is built from.

An API supplies its route table, how it authenticates a request, and how it
words an error; this class does the rest (matching, body parsing, request ids,
turning exceptions into the API's own error envelope).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import webob

from transcell import exception
from transcell.context import RequestContext, new_request_id
from transcell.wsgi import router

LOG = logging.getLogger(__name__)

ErrorFormatter = Callable[[int, str], dict[str, Any]]
Authenticator = Callable[[webob.Request], RequestContext]

JSON_TYPE = "application/json"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> webob.Response:
    resp = webob.Response(status=status, content_type=JSON_TYPE, charset="UTF-8")
    resp.body = json.dumps(body).encode()
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def empty_response(status: int = 204, headers: Mapping[str, str] | None = None
                   ) -> webob.Response:
    resp = webob.Response(status=status)
    resp.content_type = None
    resp.body = b""
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def read_json(req: webob.Request, required: bool = True) -> Any:
    """Parse the body, or say plainly why it cannot be parsed."""
    if not req.body:
        if required:
            raise exception.Invalid("The request body is empty; a JSON object is required.")
        return None
    try:
        return json.loads(req.body)
    except ValueError as exc:
        raise exception.Invalid(f"Malformed request body: {exc}") from exc


def application_url(req: webob.Request) -> str:
    """The absolute URL of the API root, as the client reached it."""
    return req.host_url + req.script_name


def query_params(req: webob.Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in req.GET.items():
        params.setdefault(key, []).append(value)
    return params


class JSONApp:
    """Route, authenticate, dispatch and render errors for one API."""

    #: paths (route templates) served without a token, e.g. version documents
    public_templates: frozenset[str] = frozenset()

    def __init__(self, table: Mapping[str, Mapping[str, Callable[..., webob.Response]]],
                 authenticate: Authenticator | None,
                 format_error: ErrorFormatter):
        self.routes = router.compile_routes(table)
        self.authenticate = authenticate
        self.format_error = format_error

    # Hooks an API may override (compute uses them for microversions).
    def prepare(self, req: webob.Request) -> None:
        """Runs before routing; raise to reject the request."""

    def finish(self, req: webob.Request, resp: webob.Response) -> None:
        """Runs on every response, errors included."""

    def error_response(self, code: int, message: str) -> webob.Response:
        return json_response(self.format_error(code, message), status=code)

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        request_id = req.headers.get("X-OpenStack-Request-Id") or new_request_id()
        if not request_id.startswith("req-"):
            request_id = new_request_id()
        req.environ["transcell.request_id"] = request_id
        resp = self._dispatch(req, request_id)
        resp.headers["x-openstack-request-id"] = request_id
        resp.headers["x-compute-request-id"] = request_id
        try:
            self.finish(req, resp)
        except Exception:  # pragma: no cover - a hook must never eat a response
            LOG.exception("response hook failed")
        return resp(environ, start_response)

    def _dispatch(self, req: webob.Request, request_id: str) -> webob.Response:
        try:
            self.prepare(req)
            handler, params = router.match(self.routes, req.path_info or "/", req.method)
            template = self._template_of(req)
            if self.authenticate is not None and template not in self.public_templates:
                ctx = self.authenticate(req)
                ctx.request_id = request_id
                req.environ["transcell.context"] = ctx
            return handler(req, **params)
        except router.NotFound:
            return self.error_response(404, "The resource could not be found.")
        except router.MethodNotAllowed as exc:
            resp = self.error_response(405, "The method specified is not allowed "
                                       "for this resource.")
            resp.headers["Allow"] = ", ".join(exc.allowed)
            return resp
        except exception.TranscellError as exc:
            if exc.code >= 500:
                LOG.error("%s %s failed: %s", req.method, req.path, exc)
            return self.error_response(exc.code, exc.message)
        except Exception:
            LOG.exception("Unexpected error serving %s %s", req.method, req.path)
            return self.error_response(500, "Unexpected API Error. The error has been "
                                       f"logged with request id {request_id}.")

    def _template_of(self, req: webob.Request) -> str | None:
        path = req.path_info or "/"
        for route in self.routes:
            if route.pattern.match(path):
                return route.template
        return None


def context_of(req: webob.Request) -> RequestContext:
    return req.environ["transcell.context"]
