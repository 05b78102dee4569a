"""Helpers every compute API resource shares: paging, links, booleans,
request validation worded as Nova words it, and finding one server.

Clients parse Nova's messages and follow Nova's links, so the wording and
the URL shapes here are part of the API, not decoration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import urllib.parse
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import webob
from sqlalchemy import select

from transcell import cell as cells
from transcell import exception, policy
from transcell.api.compute.app import api_version
from transcell.context import RequestContext
from transcell.db import cell_models as cm
from transcell.db.session import cell_session
from transcell.wsgi.app import application_url

#: The most items one page of any list holds, as Nova's ``[api] max_limit``.
MAX_LIMIT = 1000

_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


# -- microversions -----------------------------------------------------------

def require_version(req: webob.Request, min_version: str) -> None:
    """A route that does not exist yet at the request's microversion is a plain 404."""
    if not api_version(req).matches(min_version):
        raise exception.NotFound("The resource could not be found.")


# -- paging and links --------------------------------------------------------

def _integer(value: str, name: str, min_value: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise exception.Invalid(f"Invalid input received: {name} must be an integer") from None
    if min_value is not None and number < min_value:
        raise exception.Invalid(f"Invalid input received: {name} must be >= {min_value}")
    return number


def limit_and_marker(req: webob.Request) -> tuple[int, str | None]:
    """``limit`` (capped at MAX_LIMIT, default MAX_LIMIT) and ``marker`` from the query."""
    limit = MAX_LIMIT
    if "limit" in req.GET:
        limit = min(limit, _integer(req.GET["limit"], "limit", 0))
    marker = req.GET.get("marker")
    return limit, marker


def page_after(items: list[Any], key, marker: Any, limit: int) -> list[Any]:
    """Items after the one whose ``key(item) == marker``; 400 when there is no such item."""
    start = 0
    if marker is not None:
        for index, item in enumerate(items):
            if key(item) == marker:
                start = index + 1
                break
        else:
            raise exception.Invalid(f"marker [{marker}] not found")
    return items[start:start + limit]


_ROOT_KEY = "transcell.application_url"
#: Characters ``urllib.parse.quote`` never escapes.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def resource_links(req: webob.Request, collection: str, ident: Any) -> list[dict[str, str]]:
    """Nova's pair of links: versioned ``self`` and unversioned ``bookmark``.

    The API root is worked out once per request (a page of servers has thousands
    of links)."""
    base = req.environ.get(_ROOT_KEY)
    if base is None:
        base = req.environ[_ROOT_KEY] = application_url(req)
    text = str(ident)
    # uuids and ids need no quoting: skip ``quote`` (a page has thousands of links)
    quoted = text if _UNRESERVED.fullmatch(text) else urllib.parse.quote(text, safe="")
    return [{"rel": "self", "href": f"{base}/v2.1/{collection}/{quoted}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{quoted}"}]


def collection_links(req: webob.Request, items: list[Mapping[str, Any]], collection: str,
                     id_key: str = "id") -> list[dict[str, str]]:
    """A ``next`` link when the page is full: same query, marker = the last item."""
    if "limit" in req.GET:
        try:
            page = min(int(req.GET["limit"]), MAX_LIMIT)
        except ValueError:
            page = MAX_LIMIT
    else:
        page = MAX_LIMIT
    if not page or len(items) != page:
        return []
    params = [(k, v) for k, v in req.GET.items() if k != "marker"]
    params.append(("marker", str(items[-1][id_key])))
    href = f"{application_url(req)}/v2.1/{collection}?{urllib.parse.urlencode(params)}"
    return [{"rel": "next", "href": href}]


def host_id(project_id: str, host: str | None) -> str:
    """Nova's obfuscated host (``hostId``): equal for one project's servers on one host,
    unrelated across projects, so it tells co-location and nothing else."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def is_uuid_like(value: Any) -> bool:
    """A UUID in any of the spellings Python accepts (dashes optional, any case)."""
    try:
        text = str(value)
        return uuidlib.UUID(text).hex == text.replace("-", "").replace("urn:uuid:", "") \
            .strip("{}").lower()
    except (TypeError, ValueError, AttributeError):
        return False


# -- booleans ----------------------------------------------------------------

def parse_bool(value: Any) -> bool:
    """Strict boolean from a query string or body value; ValueError for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"Unrecognized value '{value}', acceptable values are: "
                     "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


def is_true(value: Any) -> bool:
    """Lenient truth of a flag: anything not recognised as true is false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def query_bool(req: webob.Request, name: str, default: bool = False) -> bool:
    """A strict boolean query parameter; 400 naming the parameter when it is not one."""
    if name not in req.GET:
        return default
    try:
        return parse_bool(req.GET[name])
    except ValueError as exc:
        raise exception.Invalid(f"Invalid input for query parameters {name}. Value: "
                                f"{req.GET[name]}. {exc}") from None


# -- request validation ------------------------------------------------------

BOOLEAN = {"type": ["boolean", "string"],
           "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                    "y", "t", False, "False", "FALSE", "false", "0", "OFF", "Off", "off",
                    "NO", "No", "no", "n", "f"]}

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "format": "name"}

_NAME_RULE = "printable characters. Can not start or end with whitespace."


def _printable(char: str) -> bool:
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def valid_name(value: Any) -> bool:
    """Printable characters, neither first nor last a space (Nova's ``name`` format)."""
    if not isinstance(value, str):
        return False
    if not value:
        return True
    if not all(_printable(c) for c in value):
        return False
    return unicodedata.category(value[0]) != "Zs" and unicodedata.category(value[-1]) != "Zs"


class InvalidName(exception.Invalid):
    msg_fmt = "An invalid 'name' value was provided. The name must be: %(reason)s"


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("name", raises=InvalidName)
def _check_name(instance: Any) -> bool:
    if valid_name(instance):
        return True
    raise InvalidName(reason=_NAME_RULE)


@_FORMATS.checks("printable")
def _check_printable(instance: Any) -> bool:
    """Descriptions: printable characters, spaces anywhere (Nova's description rule)."""
    return not isinstance(instance, str) or all(_printable(c) for c in instance)


def validate(schema: Mapping[str, Any], body: Any) -> None:
    """Check ``body`` against a Draft 4 schema; 400 with Nova's message on the first error."""
    validator = jsonschema.Draft4Validator(schema, format_checker=_FORMATS)
    try:
        validator.validate(body)
    except jsonschema.ValidationError as error:
        if isinstance(error.cause, InvalidName):
            raise exception.ValidationError(error.cause.message) from None
        path = list(error.path)
        if path:
            raise exception.ValidationError(
                f"Invalid input for field/attribute {path[-1]}. Value: {error.instance}. "
                f"{error.message}") from None
        raise exception.ValidationError(error.message) from None


def single_query(req: webob.Request, name: str) -> str | None:
    """A query parameter Nova's schemas allow once (``single_param``); 400 on repeats."""
    values = req.GET.getall(name)
    if len(values) > 1:
        raise exception.ValidationError(
            f"Invalid input for query parameters {name}. Value: {values}. {values} is too "
            "long")
    return values[0] if values else None


def parse_time(name: str, value: str) -> dt.datetime:
    """An ISO 8601 query value as naive UTC, the way timestamps are stored.

    A value without an offset is taken as UTC, as Nova takes it.
    """
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        # OverflowError: an offset that moves year 1 or 9999 out of range
        raise exception.ValidationError(
            f"Invalid input for query parameters {name}. Value: {value}. '{value}' is not a "
            "'date-time'") from None
    return parsed


def query_time(req: webob.Request, name: str) -> dt.datetime | None:
    """A single ISO 8601 query parameter (see ``parse_time``), or None when absent."""
    value = single_query(req, name)
    return None if value is None else parse_time(name, value)


def changes_window(req: webob.Request, with_before: bool
                   ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``changes-since`` and (from 2.66, when ``with_before``) ``changes-before``.

    Both bound ``updated_at`` inclusively; an empty window is the caller's
    mistake, so it is a 400 rather than an empty list.
    """
    since = query_time(req, "changes-since")
    before = query_time(req, "changes-before") if with_before else None
    if since is not None and before is not None and before < since:
        raise exception.Invalid("The value of changes-since must be less than or equal to "
                                "changes-before.")
    return since, before


def in_window(updated_at: dt.datetime | None, since: dt.datetime | None,
              before: dt.datetime | None) -> bool:
    """Whether a row changed inside the window; never-updated rows match no bound."""
    if since is None and before is None:
        return True
    if updated_at is None:
        return False
    return (since is None or updated_at >= since) and (before is None or updated_at <= before)


def reject_unknown_query(req: webob.Request, allowed: Iterable[str]) -> None:
    """For resources whose query parameters are closed at this microversion."""
    unknown = sorted({k for k in req.GET.keys() if k not in set(allowed)})
    if unknown:
        listed = ", ".join(f"'{k}'" for k in unknown)
        verb = "were" if len(unknown) > 1 else "was"
        raise exception.ValidationError(
            f"Additional properties are not allowed ({listed} {verb} unexpected)")


# -- policy --------------------------------------------------------------------

def authorize_or_fallback(ctx: RequestContext, action: str, fallback_rule: str,
                          target: Mapping[str, Any]) -> None:
    """Enforce ``action`` if policy declares it, else its documented default rule.

    The Forbidden message names ``action`` either way, as Nova's does.
    """
    if action in policy.get_enforcer().registered_rules:
        policy.authorize(ctx, action, target)
    elif not policy.check(ctx, fallback_rule, target):
        raise exception.Forbidden(action=action)


# -- one server ----------------------------------------------------------------

@dataclass(frozen=True)
class ServerRef:
    """A server found through its instance mapping: its cell and its row (detached)."""

    cell: cells.Cell
    instance: cm.Instance

    @property
    def uuid(self) -> str:
        return self.instance.uuid

    @property
    def project_id(self) -> str:
        return self.instance.project_id


def get_instance_or_404(ctx: RequestContext, server_id: str, read_deleted: bool = False
                        ) -> ServerRef:
    """The server's visible row in the cell its mapping names.

    Unknown ids, servers not yet in a cell, deleted servers (unless
    ``read_deleted``) and another project's servers (unless admin) are all
    the same 404, so a caller learns nothing about servers it cannot see.
    """
    query = select(cm.Instance).where(cm.Instance.uuid == server_id,
                                      cm.Instance.hidden.is_(False))
    if not read_deleted:
        query = query.where(cm.Instance.deleted == 0)

    def read(cell: cells.Cell) -> cm.Instance | None:
        with cell_session(cell) as s:
            return s.scalar(query.order_by(cm.Instance.deleted, cm.Instance.id.desc()).limit(1))

    mapping, row = cells.read_where_mapped(server_id, read)
    if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise exception.InstanceNotFound(instance_id=server_id)
    return ServerRef(mapping["cell"], row)
