"""One route table per API, matched in declaration order."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import webob

Handler = Callable[..., webob.Response]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]


def compile_routes(table: Mapping[str, Mapping[str, Handler]]) -> list[Route]:
    """Turn ``{"/servers/{server_id}": {"GET": show}}`` into matchers.

    Parameters match one path segment; a trailing slash is tolerated because
    keystoneauth and Tempest disagree about it.
    """
    routes = []
    for template, methods in table.items():
        regex = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template.rstrip("/"))
        routes.append(Route(template, re.compile(f"^{regex}/?$"), dict(methods)))
    return routes


class NotFound(Exception):
    pass


class MethodNotAllowed(Exception):
    def __init__(self, allowed: list[str]):
        super().__init__(", ".join(allowed))
        self.allowed = allowed


def match(routes: list[Route], path: str, method: str) -> tuple[Handler, dict[str, Any]]:
    for route in routes:
        found = route.pattern.match(path)
        if not found:
            continue
        handler = route.methods.get(method)
        if handler is None and method == "HEAD":
            handler = route.methods.get("GET")
        if handler is None:
            raise MethodNotAllowed(sorted(route.methods))
        return handler, found.groupdict()
    raise NotFound(path)
