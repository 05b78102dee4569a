"""The JSON API application every transcell API is built from.

An API supplies its route table, how it authenticates a request, and how it
words an error; this class does the rest (matching, body parsing, request ids,
turning exceptions into the API's own error envelope).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import webob

from transcell import cell as cells
from transcell import exception
from transcell.context import RequestContext, new_request_id
from transcell.wsgi import router

LOG = logging.getLogger(__name__)

ErrorFormatter = Callable[[int, str], dict[str, Any]]
Authenticator = Callable[[webob.Request], RequestContext]

JSON_TYPE = "application/json"

#: What a client-supplied request id must look like to be echoed back.
_REQUEST_ID = re.compile(r"^req-[0-9a-fA-F-]{1,64}$")


#: Only the types ``json.dumps`` writes natively are written by orjson; anything else
#: (datetimes, dataclasses, subclasses of str or int) is an error there, and the body
#: is then written by ``json.dumps`` as before, which accepts or refuses it as it did.
_ORJSON_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def dump_json(body: Any) -> bytes:
    """A body as UTF-8 JSON: the same document ``json.dumps`` writes, written by
    orjson, which writes a page of a thousand servers about ten times faster (without
    the spaces after separators, and non-ASCII text as UTF-8 rather than escapes)."""
    try:
        return orjson.dumps(body, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        # integers past 64 bits, non-string keys orjson does not take, and the rest
        return json.dumps(body).encode()


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  *, fast: bool = False) -> webob.Response:
    """``fast`` writes the body with ``dump_json`` (large lists), else with
    ``json.dumps`` byte for byte as every response always has been."""
    resp = webob.Response(status=status, content_type=JSON_TYPE, charset="UTF-8")
    resp.body = dump_json(body) if fast else json.dumps(body).encode()
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


#: Deeper JSON than this is refused before it is parsed: no API body nests
#: more than a handful of levels, and a deep one only exhausts the parser's stack.
MAX_JSON_DEPTH = 64

#: One JSON string (escapes included) or one bracket, so strings are skipped whole.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _has_surrogate(data: Any) -> bool:
    """Whether any key or string holds a lone surrogate (\\ud800 escapes): such text
    cannot be stored, logged or sent back as UTF-8."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATES.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes) -> Any:
    """Decode a JSON document from untrusted bytes, or raise Invalid saying why.

    Strict UTF-8, bounded nesting, no lone surrogates: whatever passes can be
    stored and echoed back without a later encoding error.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise exception.Invalid("Malformed request body: the body is not valid "
                                "UTF-8 text.") from None
    if _nesting_exceeds(text, MAX_JSON_DEPTH):
        raise exception.Invalid(f"Malformed request body: JSON nested deeper than "
                                f"{MAX_JSON_DEPTH} levels.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise exception.Invalid(f"Malformed request body: JSON nested deeper than "
                                f"{MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:
        raise exception.Invalid(f"Malformed request body: {exc}") from None
    if _has_surrogate(data):
        raise exception.Invalid("Malformed request body: a string holds an unpaired "
                                "UTF-16 surrogate (\\ud800-\\udfff), which is not "
                                "a character.")
    return data


def read_json(req: webob.Request, required: bool = True) -> Any:
    """Parse the body, or say plainly why it cannot be parsed."""
    if not req.body:
        if required:
            raise exception.Invalid("The request body is empty; a JSON object is required.")
        return None
    return parse_json(req.body)


def undecodable_request(environ: Mapping[str, Any]) -> str | None:
    """Why the request's path or query cannot be read as UTF-8 text, or None.

    WSGI hands the path over as latin-1 code points of the raw bytes; a
    client may put any bytes there (``%ff``), and webob would fail decoding
    them deep inside a handler.
    """
    try:
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        environ.get("SCRIPT_NAME", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        return "The request path is not valid UTF-8 once percent-decoded."
    try:
        urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True,
                               encoding="utf-8", errors="strict")
    except UnicodeError:
        return "The query string is not valid UTF-8 once percent-decoded."
    except ValueError:
        return "The query string is malformed."
    return None


#: Where the serving process says its public endpoint is, when no option names one.
PUBLIC_ENDPOINT_KEY = "transcell.public_endpoint"


def public_endpoint(req: webob.Request) -> str:
    """The scheme, host and port links and catalogs name, never the client's Host header.

    In order: the ``[DEFAULT] public_endpoint`` option; what the serving process
    put in the environ (the embedded cloud's bind address); the address the
    WSGI server says it listens on.
    """
    from transcell.conf import CONF

    configured = getattr(CONF, "public_endpoint", None) or req.environ.get(
        PUBLIC_ENDPOINT_KEY)
    if configured:
        return str(configured).rstrip("/")
    scheme = req.environ.get("wsgi.url_scheme", "http")
    host = req.environ.get("SERVER_NAME", "localhost")
    port = str(req.environ.get("SERVER_PORT", ""))
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = {"http": "80", "https": "443"}.get(scheme)
    return f"{scheme}://{host}" if port in ("", default) else f"{scheme}://{host}:{port}"


def application_url(req: webob.Request) -> str:
    """The absolute URL of the API root, under the configured public endpoint."""
    return public_endpoint(req) + req.script_name


def public_url(req: webob.Request, query: bool = True) -> str:
    """The request's own URL rebuilt under the public endpoint (for ``self`` links)."""
    url = application_url(req) + urllib.parse.quote(req.path_info)
    if query and req.query_string:
        url += "?" + req.query_string
    return url


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
        if not _REQUEST_ID.match(request_id):
            request_id = new_request_id()
        req.environ["transcell.request_id"] = request_id
        try:
            resp = self._dispatch(req, request_id)
        except Exception:
            # _dispatch catches everything; this guards its own error path
            LOG.exception("Unexpected error serving a request")
            resp = self._internal_error(request_id)
        resp.headers["x-openstack-request-id"] = request_id
        resp.headers["x-compute-request-id"] = request_id
        try:
            self.finish(req, resp)
        except Exception:  # pragma: no cover - a hook must never eat a response
            LOG.exception("response hook failed")
        return resp(environ, start_response)

    def _internal_error(self, request_id: str, code: int = 500) -> webob.Response:
        """A 5xx that names the request id and nothing of what went wrong: an
        exception's text (a remote traceback's type, a path, a query) is for the log."""
        return self.error_response(code, "Unexpected API Error. The error has been "
                                   f"logged with request id {request_id}.")

    def _dispatch(self, req: webob.Request, request_id: str) -> webob.Response:
        problem = undecodable_request(req.environ)
        if problem is not None:
            return self.error_response(400, problem)
        try:
            self.prepare(req)
            handler, params = router.match(self.routes, req.path_info or "/", req.method)
            template = self._template_of(req)
            if self.authenticate is not None and template not in self.public_templates:
                ctx = self.authenticate(req)
                ctx.request_id = request_id
                req.environ["transcell.context"] = ctx
            # a request reads each cell and host mapping once (only bootstrap and host
            # discovery write them, never a request)
            with cells.remembered():
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
                if not getattr(exc, "client_safe", False):
                    return self._internal_error(request_id, exc.code)
            return self.error_response(exc.code, exc.message)
        except RecursionError:
            # input nested past what some parser below could take: the client's doing
            LOG.warning("%s %s: input nested too deeply", req.method, req.path)
            return self.error_response(400, "The request nests too deeply.")
        except UnicodeError:
            LOG.warning("%s %s: undecodable input", req.method, req.path, exc_info=True)
            return self.error_response(400, "The request holds text that is not valid "
                                       "UTF-8.")
        except Exception:
            LOG.exception("Unexpected error serving %s %s", req.method, req.path)
            return self._internal_error(request_id)

    def _template_of(self, req: webob.Request) -> str | None:
        path = req.path_info or "/"
        for route in self.routes:
            if route.pattern.match(path):
                return route.template
        return None


def context_of(req: webob.Request) -> RequestContext:
    return req.environ["transcell.context"]
